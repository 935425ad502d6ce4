package search

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"time"

	"hwnas/store"
)

// RankOptions configure SupernetRank.
type RankOptions struct {
	Study   string
	N       int // sub-networks compared (default 20)
	Seed    uint64
	Threads int
	// Epochs and Subset set the standalone training's budget (0: the
	// study's proxy budget, what an rl trial of the study records). A
	// longer one asks whether the supernet ranks sub-networks as a full
	// training would, the figure a winner's final training reaches.
	Epochs, Subset int
	Log            io.Writer
}

// RankRow is one sub-network: its supernet estimate and the accuracy it
// reaches trained on its own (RankResult's budget), both on the study's
// validation subset.
type RankRow struct {
	Decisions         Decisions `json:"decisions"`
	Estimate          float64   `json:"estimate"`
	Standalone        float64   `json:"standalone"`
	EstimateSeconds   float64   `json:"estimate_seconds"`
	StandaloneSeconds float64   `json:"standalone_seconds"`
}

// RankResult is SupernetRank's outcome.
type RankResult struct {
	Study string `json:"study"`
	Round int    `json:"round"`
	// StandaloneEpochs and StandaloneSubset are the standalone training's
	// budget (a subset of 0: all training images).
	StandaloneEpochs int       `json:"standalone_epochs"`
	StandaloneSubset int       `json:"standalone_subset"`
	Rows             []RankRow `json:"rows"`
	KendallTau       float64   `json:"kendall_tau"`
	// Top1Gap is the standalone accuracy of the best-estimated
	// sub-network minus the best standalone accuracy of all (≤ 0).
	Top1Gap float64 `json:"top1_gap"`
}

// SupernetRank measures how well an enas study's supernet ranks
// sub-networks: N valid points drawn uniformly (seeded), each estimated
// with the shared weights (as the search's trials are) and trained from
// scratch with the study's compression and its proxy budget (as rl's
// trials are, latency left out) or o's; Kendall's τ-b between the two
// accuracies.
func SupernetRank(ctx context.Context, db *store.DB, o RankOptions) (*RankResult, error) {
	if o.N <= 0 {
		o.N = 20
	}
	logw := o.Log
	if logw == nil {
		logw = io.Discard
	}
	ts, err := openTrainedSupernet(ctx, db, o.Study, o.Threads)
	if err != nil {
		return nil, err
	}
	defer ts.close()
	st, cfg, ctl, sn, in := ts.st, ts.cfg, ts.ctl, ts.sn, ts.in
	res := &RankResult{Study: st.Name, Round: ctl.Round, StandaloneEpochs: cfg.Epochs, StandaloneSubset: cfg.Subset}
	if o.Epochs > 0 {
		res.StandaloneEpochs = o.Epochs
	}
	if o.Subset > 0 {
		res.StandaloneSubset = o.Subset
	}
	rng := rand.New(rand.NewPCG(o.Seed, 0x72616e6b))
	for len(res.Rows) < o.N {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		d := uniform(rng, cfg.Space.Sizes())
		c, err := cfg.Space.Decode(d)
		if err != nil {
			return nil, err
		}
		cand, err := BuildCandidate(c)
		if err != nil {
			continue
		}
		sub, err := sn.Sub(c)
		if err != nil {
			return nil, err
		}
		spec := trialSpec(st, cfg, db.Path(), 1_000_000+len(res.Rows), c, cand)
		spec.Test, spec.SkipMeasure, spec.Threads = false, true, o.Threads
		if spec.Recipe, err = json.Marshal(cand.Layers); err != nil {
			return nil, err
		}
		row := RankRow{Decisions: d}
		t0 := time.Now()
		est, err := evaluateSubnet(ctx, sub, spec, in.calib, in.train, in.val, nil, nil)
		if err != nil {
			return nil, err
		}
		row.Estimate, row.EstimateSeconds = est.ValAccuracy, time.Since(t0).Seconds()
		t0 = time.Now()
		own := *spec
		own.Epochs, own.Subset = res.StandaloneEpochs, res.StandaloneSubset
		alone, err := EvaluateTrial(ctx, &own, false)
		if err != nil {
			return nil, fmt.Errorf("sub-network %d trained on its own: %w", len(res.Rows)+1, err)
		}
		row.Standalone, row.StandaloneSeconds = alone.ValAccuracy, time.Since(t0).Seconds()
		res.Rows = append(res.Rows, row)
		fmt.Fprintf(logw, "sub-network %d/%d: supernet %.2f%% (%.1fs), on its own %.2f%% (%.1fs)\n", len(res.Rows), o.N,
			100*row.Estimate, row.EstimateSeconds, 100*row.Standalone, row.StandaloneSeconds)
	}
	est := make([]float64, len(res.Rows))
	alone := make([]float64, len(res.Rows))
	bestEst, bestAlone := 0, 0.0
	for i, r := range res.Rows {
		est[i], alone[i] = r.Estimate, r.Standalone
		if r.Estimate > est[bestEst] {
			bestEst = i
		}
		bestAlone = math.Max(bestAlone, r.Standalone)
	}
	res.KendallTau = KendallTau(est, alone)
	res.Top1Gap = alone[bestEst] - bestAlone
	return res, nil
}

// KendallTau is Kendall's τ-b of two equally long samples:
// (C − D)/√((n₀ − T_x)(n₀ − T_y)) over the n₀ = n(n−1)/2 pairs, with C
// and D the concordant and discordant pairs and T_x, T_y the pairs tied
// in x and in y. It is NaN when either sample is constant.
func KendallTau(x, y []float64) float64 {
	var conc, disc, tx, ty float64
	for i := range x {
		for j := i + 1; j < len(x); j++ {
			dx, dy := x[i]-x[j], y[i]-y[j]
			switch {
			case dx == 0 && dy == 0:
				tx++
				ty++
			case dx == 0:
				tx++
			case dy == 0:
				ty++
			case (dx > 0) == (dy > 0):
				conc++
			default:
				disc++
			}
		}
	}
	n0 := float64(len(x)*(len(x)-1)) / 2
	return (conc - disc) / math.Sqrt((n0-tx)*(n0-ty))
}
