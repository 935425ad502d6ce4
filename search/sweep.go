package search

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"time"

	"hwnas/accel"
	"hwnas/nas/data"
	"hwnas/store"
)

// DefaultPredictorSweep is how many untrained networks of a study's space
// a search measures on its device before the first trial (see sweep).
const DefaultPredictorSweep = 32

// spaceDigest identifies a search space's sweep runs: the SHA-256 of its
// JSON form.
func spaceDigest(s *Space) (string, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return "", err
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:]), nil
}

// sweep teaches the device's per-op table the study's space before the
// first trial, as nn-Meter samples each kernel's configurations on a
// device before it predicts: PredictorSweep points drawn uniformly from
// the space (seeded by the study), each built untrained, compressed with
// its recipe without fine-tuning (the compressed structure — int8,
// sparse, factorised or narrower layers — does not depend on trained
// weights, as checkSkip relies on too) and measured on the study's device
// like a trial (interleaved rounds beside the reference and the probe).
// Their per-op times join the device's table and are kept as sweep runs,
// which the held-out report counts among what the table learnt. A device
// that already holds PredictorSweep runs of the space at the study's batch
// is not swept again; a study measured on another device, or by another
// runtime than hwnas's kernels alone, is not swept.
func (c *coordinator) sweep(ctx context.Context) error {
	cfg := c.cfg
	n := cfg.PredictorSweep
	if n <= 0 || cfg.MeasureDevice != "" {
		return nil
	}
	batch := max(1, cfg.Batch)
	digest, err := spaceDigest(cfg.Space)
	if err != nil {
		return err
	}
	have, err := c.o.DB.SweepRuns(ctx, c.st.DeviceFingerprint, batch, digest)
	if err != nil {
		return err
	}
	if len(have) >= n {
		return nil
	}
	d, err := data.Load(cfg.Data, cfg.DataOptions)
	if err != nil {
		return err
	}
	train, val := d.Train.Subset(256), d.Val.Subset(64)
	be, err := accel.Open(cfg.Device, accel.Options{Threads: cfg.Threads})
	if err != nil {
		return err
	}
	defer be.Close()
	if fp := be.Device().Fingerprint; fp != c.st.DeviceFingerprint {
		return nil // the study's device is not this machine's: its measurer sweeps nothing either
	}
	spec := &TrialSpec{Batch: batch, Threads: cfg.Threads, Measure: LatencySpec{Reference: cfg.reference(), Rounds: cfg.Rounds}}
	if err := loadHistory(ctx, c.o.DB, c.st.DeviceFingerprint, batch, &spec.Measure); err != nil {
		return err
	}
	t0 := time.Now()
	fmt.Fprintf(c.log, "study %s: predictor sweep: measuring %d untrained network(s) of the space on %s\n", c.st.Name, n-len(have), be.Device().Name)
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x7377_6565_7000_0000+uint64(len(have))))
	measured, tries := 0, 0
	for measured < n-len(have) && tries < 20*n {
		if err := ctx.Err(); err != nil {
			return nil // the search stops; what was swept stays
		}
		tries++
		pc, err := cfg.Space.Decode(uniform(rng, cfg.Space.Sizes()))
		if err != nil {
			return err
		}
		cand, err := BuildCandidate(pc)
		if err != nil {
			continue // an invalid point has no network to measure
		}
		res, err := sweepOne(ctx, be, cand, spec, train, val, cfg.Seed+uint64(tries))
		if err != nil {
			// The sweep only teaches the predictor: a network it cannot
			// compress or measure is left out, and the search goes on
			// (its trial, if the strategy proposes it, reports the error).
			fmt.Fprintf(c.log, "study %s: predictor sweep: %s left out: %v\n", c.st.Name, cand.Arch.Name, err)
			continue
		}
		l, ok := res.Row("")
		if !ok || len(res.PerOp) == 0 {
			continue
		}
		ops, err := json.Marshal(res.PerOp)
		if err != nil {
			return err
		}
		if err := c.o.DB.PutSweepRun(ctx, l.Device, batch, digest, l.Figure(), ops); err != nil {
			return err
		}
		if err := mergeOpTimes(ctx, c.o.DB, l.Device, res.PerOp); err != nil {
			return err
		}
		if spec.OpTable, err = opTable(ctx, c.o.DB, c.st.DeviceFingerprint); err != nil {
			return err
		}
		measured++
	}
	fmt.Fprintf(c.log, "study %s: predictor sweep: %d network(s) measured, the table knows %d op(s) (%.1fs)\n",
		c.st.Name, measured, len(spec.OpTable), time.Since(t0).Seconds())
	return nil
}

// sweepOne builds cand untrained (weights from seed), compresses it with
// its recipe without fine-tuning and measures it on be.
func sweepOne(ctx context.Context, be accel.Backend, cand *Candidate, spec *TrialSpec, train, val *data.Set, seed uint64) (*TrialResult, error) {
	cr, err := compressUntrained(ctx, cand.Arch, cand.Layers, seed, train, val, spec.Threads)
	if err != nil {
		return nil, fmt.Errorf("compressing: %w", err)
	}
	res := &TrialResult{}
	if err := measureCompressed(be, cr.Model, spec, val, res); err != nil {
		return nil, err
	}
	return res, nil
}

// sweepOps is a device's sweep runs at batch (every space's) as OpRuns
// the held-out report learns from without predicting them.
func sweepOps(ctx context.Context, db *store.DB, fingerprint string, batch int) ([]OpRun, error) {
	rows, err := db.SweepRuns(ctx, fingerprint, max(1, batch), "")
	if err != nil {
		return nil, err
	}
	return opRuns(rows, true), nil
}
