package search

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"sort"
	"time"

	"hwnas/accel"
	"hwnas/nas"
	"hwnas/nas/compress"
	"hwnas/store"
)

// ErrNoSupernet is wrapped by Specialize's error for a study that has no
// trained supernet (not an enas study, or one that never ran).
var ErrNoSupernet = errors.New("no trained supernet")

// SpecializeOptions configure Specialize.
type SpecializeOptions struct {
	Study   string
	Device  string // accel spec of the new device
	Threads int
	Batch   int // latency batch (default 1)
	// MaxLatency bounds the batch latency on the device; MaxBytes (0:
	// none) the compressed size.
	MaxLatency time.Duration
	MaxBytes   int64
	// Evaluations bound the candidates evaluated with the supernet's
	// weights (default 100) and Duration the search's time (default 10
	// minutes); Population is evolution's (default 16).
	Evaluations int
	Duration    time.Duration
	Population  int
	// FineTuneEpochs of standalone training of the winner from its
	// inherited weights on the study's proxy subset before it is
	// compressed (with one fine-tuning epoch) and recorded; 0 records the
	// inherited weights, compressed without fine-tuning.
	FineTuneEpochs int
	Seed           uint64
	// Rounds shortens the latency measurement (tests; zero: accel's
	// defaults); the study's reference model is measured beside each
	// candidate, as in the search.
	Rounds accel.RoundsOptions
	Log    io.Writer
}

// SpecializeResult is Specialize's outcome: the recorded trial and what
// the search saw.
type SpecializeResult struct {
	Study  string       `json:"study"`
	Trial  int          `json:"trial"`
	Name   string       `json:"name"`
	Device accel.Device `json:"device"`
	// Estimate is the winner's supernet estimate (validation accuracy of
	// its inherited, compressed weights); ValAccuracy and TestAccuracy
	// are those of the recorded model: the inherited weights compressed
	// again (InheritedVal) or the fine-tuned ones (FineTunedVal, when
	// fine-tuning was asked for), whichever is better on validation
	// (FineTuned says which).
	Estimate       float64   `json:"estimate"`
	InheritedVal   float64   `json:"inherited_val_accuracy"`
	FineTunedVal   float64   `json:"fine_tuned_val_accuracy,omitempty"`
	FineTuned      bool      `json:"fine_tuned"`
	ValAccuracy    float64   `json:"val_accuracy"`
	TestAccuracy   float64   `json:"test_accuracy"`
	LatencyNs      int64     `json:"latency_ns"`
	Bytes          int64     `json:"bytes"`
	WithinBounds   bool      `json:"within_bounds"`
	Decisions      Decisions `json:"decisions"`
	Evaluated      int       `json:"evaluated"`
	Feasible       int       `json:"feasible"`
	FineTuneEpochs int       `json:"fine_tune_epochs"`
	SearchSeconds  float64   `json:"search_seconds"`
	Seconds        float64   `json:"seconds"`
}

// specializeMarker is the decisions JSON of a specialised trial: a final
// trial (parseDecisions reads final_of, decisions and epochs; the
// strategy never sees it) of no search trial (final_of −1), for a device.
type specializeMarker struct {
	FinalOf        int       `json:"final_of"`
	Decisions      Decisions `json:"decisions"`
	Epochs         int       `json:"epochs"`
	SpecializedFor string    `json:"specialized_for"`
	MaxLatencyNs   int64     `json:"max_latency_ns"`
	MaxBytes       int64     `json:"max_bytes,omitempty"`
}

// Specialize picks a sub-network of an enas study's trained supernet for
// a device without retraining the supernet (Once-for-All): regularized
// evolution, starting from the search's most accurate distinct trials,
// over candidates evaluated with the shared weights (batch norm
// recalibrated, compression applied to the inherited weights), each
// measured on the device; a candidate over MaxLatency or MaxBytes scores
// below every one within them. The most accurate candidate within the
// bounds is fine-tuned for FineTuneEpochs from its inherited weights,
// compressed, evaluated (validation and test), measured again on the
// device and recorded as a trial of the study with its weights, so hwnas
// export and best treat it as any other.
func Specialize(ctx context.Context, db *store.DB, o SpecializeOptions) (*SpecializeResult, error) {
	start := time.Now()
	if o.MaxLatency <= 0 {
		return nil, errors.New("specialize: a latency bound is needed")
	}
	if o.Evaluations <= 0 {
		o.Evaluations = 100
	}
	if o.Duration <= 0 {
		o.Duration = 10 * time.Minute
	}
	if o.Population <= 0 {
		o.Population = 16
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
	be, err := accel.Open(o.Device, accel.Options{Threads: o.Threads})
	if err != nil {
		return nil, err
	}
	defer be.Close()
	res := &SpecializeResult{Study: st.Name, Device: be.Device(), FineTuneEpochs: o.FineTuneEpochs}
	fmt.Fprintf(logw, "specialize %s for %s (%s): latency ≤ %v", st.Name, res.Device.Name, res.Device.Fingerprint, o.MaxLatency)
	if o.MaxBytes > 0 {
		fmt.Fprintf(logw, ", ≤ %d bytes", o.MaxBytes)
	}
	fmt.Fprintf(logw, "; supernet of %d weights at round %d\n", sn.Weights.Size(), ctl.Round)

	hard := Reward{Mode: RewardHard, LatencyTarget: o.MaxLatency, MaxBytes: o.MaxBytes}
	evo := NewEvolution(cfg.Space.Sizes(), o.Population, max(2, o.Population/4))
	seen := map[string]float64{}
	var best Decisions
	bestAcc := -1.0
	spec := func(cand *Candidate, c Config, trial int) (*TrialSpec, error) {
		s := &TrialSpec{Config: c, Arch: cand.Arch, Seed: o.Seed*1000003 + uint64(trial), Threads: o.Threads,
			Batch: max(1, o.Batch), Measure: LatencySpec{Reference: cfg.reference(), Rounds: o.Rounds}}
		var err error
		s.Recipe, err = json.Marshal(cand.Layers)
		return s, err
	}
	seeds, err := searchedBest(ctx, db, st, o.Population)
	if err != nil {
		return nil, err
	}
	for k := 0; k < o.Evaluations && time.Since(start) < o.Duration; k++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var d Decisions
		if k < len(seeds) {
			d = seeds[k]
		} else if d, err = evo.Propose(rand.New(rand.NewPCG(o.Seed, uint64(k)))); err != nil {
			return nil, err
		}
		key := d.key()
		fit, ok := seen[key]
		if !ok {
			fit = -1
			c, derr := cfg.Space.Decode(d)
			var cand *Candidate
			if derr == nil {
				cand, derr = BuildCandidate(c)
			}
			var sub *Subnet
			if derr == nil {
				sub, derr = sn.Sub(c)
			}
			if derr == nil {
				s, err := spec(cand, c, k)
				if err != nil {
					return nil, err
				}
				r, err := evaluateSubnet(ctx, sub, s, in.calib, in.train, in.val, be, nil)
				if err != nil {
					return nil, err
				}
				res.Evaluated++
				lat := latencyOf(r)
				if lat <= o.MaxLatency && (o.MaxBytes <= 0 || r.Bytes <= o.MaxBytes) {
					fit = r.ValAccuracy
					res.Feasible++
					if r.ValAccuracy > bestAcc {
						best, bestAcc = append(Decisions(nil), d...), r.ValAccuracy
						fmt.Fprintf(logw, "evaluation %d: best so far: estimate %.2f%%, %v, %d bytes\n", k+1, 100*r.ValAccuracy, lat.Round(100*time.Nanosecond), r.Bytes)
					}
				} else if hr, err := hard.Compute(r.ValAccuracy, lat, r.Bytes); err == nil {
					fit = hr - 1 // below every candidate within the bounds
				}
			}
			seen[key] = fit
		}
		if err := evo.Observe(d, fit); err != nil {
			return nil, err
		}
		if (k+1)%10 == 0 {
			fmt.Fprintf(logw, "evaluation %d/%d: %d candidates evaluated, %d within the bounds, %.0fs\n", k+1, o.Evaluations, res.Evaluated, res.Feasible, time.Since(start).Seconds())
		}
	}
	res.SearchSeconds = time.Since(start).Seconds()
	if best == nil {
		return res, fmt.Errorf("specialize: none of %d candidates runs within %v on %s (%d bytes allowed); raise --max-latency or --max-bytes",
			res.Evaluated, o.MaxLatency, res.Device.Name, o.MaxBytes)
	}
	res.Decisions, res.Estimate = best, bestAcc
	if err := recordSpecialized(ctx, db, st, cfg, sn, in, be, o, res); err != nil {
		return res, err
	}
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}

// recordSpecialized fine-tunes the winner from its inherited weights,
// compresses, evaluates and measures it, and records it as a trial.
func recordSpecialized(ctx context.Context, db *store.DB, st store.Study, cfg StudyConfig, sn *Supernet, in *enasInputs,
	be accel.Backend, o SpecializeOptions, res *SpecializeResult) error {
	c, err := cfg.Space.Decode(res.Decisions)
	if err != nil {
		return err
	}
	sub, err := sn.Sub(c)
	if err != nil {
		return err
	}
	cand := sub.Candidate
	sub.Load()
	m := sub.Model
	if err := m.RecalibrateBN(in.calib.Images[:in.calib.N*in.calib.SampleSize()], in.calib.N, nas.EvalBatch); err != nil {
		return err
	}
	t0 := time.Now()
	// The inherited weights compressed as the estimate was (no fine-tuning,
	// batch norm recalibrated), then the fine-tuned ones: the better on
	// validation is recorded. The shared weights of a long-trained
	// supernet can be better than a brief fine-tune leaves them. Either
	// way the recorded figures are the recorded model's own (not an
	// estimate of another model's), so hwnas best lists it.
	cr, err := compress.Apply(ctx, m, CompressRecipe(cand.Layers, nil), in.train, in.val, compress.Config{NoFineTune: true,
		RecalibrateBN: in.calib.N, PruneRounds: 1, Threads: o.Threads, Train: nas.TrainConfig{Seed: o.Seed}})
	if err != nil {
		return fmt.Errorf("compressing: %w", err)
	}
	res.InheritedVal = cr.ValAccAfter
	if o.FineTuneEpochs > 0 {
		lr := cfg.LR / 5
		if _, err := nas.Train(ctx, m, in.train, nil, nas.TrainConfig{Epochs: o.FineTuneEpochs, Seed: o.Seed, Optimizer: cfg.Optimizer,
			LR: lr, BatchSize: cfg.BatchSize, Augment: in.aug, ConstantLR: true}, nil); err != nil {
			return fmt.Errorf("fine-tuning: %w", err)
		}
		tuned, err := compress.Apply(ctx, m, CompressRecipe(cand.Layers, nil), in.train, in.val, compress.Config{PruneRounds: 1, Threads: o.Threads,
			Train: nas.TrainConfig{Seed: o.Seed, Optimizer: cfg.Optimizer, LR: lr, BatchSize: cfg.BatchSize, Augment: in.aug}})
		if err != nil {
			return fmt.Errorf("compressing the fine-tuned weights: %w", err)
		}
		res.FineTunedVal = tuned.ValAccAfter
		if tuned.ValAccAfter > cr.ValAccAfter {
			cr, res.FineTuned = tuned, true
		}
	}
	tr := &TrialResult{ValAccuracy: cr.ValAccAfter, Params: cr.ParamsAfter, Bytes: int64(cr.Bytes), MACs: cr.Model.Graph.MACs(),
		Arch: cr.Model.Arch, TrainSeconds: time.Since(t0).Seconds()}
	if tr.TestAccuracy, err = compress.EvaluatePlan(cr.Model, in.test, sn.Kernels); err != nil {
		return fmt.Errorf("test: %w", err)
	}
	if tr.Weights, err = EncodeTrialWeights(cr); err != nil {
		return err
	}
	if err := measureCompressed(be, cr.Model, &TrialSpec{Batch: o.Batch, Threads: o.Threads, Measure: LatencySpec{Reference: cfg.reference(), Rounds: o.Rounds}}, in.val, tr); err != nil {
		return err
	}
	rew, err := Reward{Mode: RewardHard, LatencyTarget: o.MaxLatency, MaxBytes: o.MaxBytes}.Compute(tr.ValAccuracy, latencyOf(tr), tr.Bytes)
	if err != nil {
		return err
	}
	epochs := 0
	if res.FineTuned {
		epochs = o.FineTuneEpochs
	}
	marker, err := json.Marshal(specializeMarker{FinalOf: -1, Decisions: res.Decisions, Epochs: epochs,
		SpecializedFor: res.Device.Fingerprint, MaxLatencyNs: int64(o.MaxLatency), MaxBytes: o.MaxBytes})
	if err != nil {
		return err
	}
	recipe, err := json.Marshal(cand.Layers)
	if err != nil {
		return err
	}
	t, err := db.AddTrial(ctx, st.ID, store.TrialSpec{Decisions: marker, Arch: cand.Arch.JSON(), Recipe: recipe})
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	if err := db.StartTrial(ctx, t.ID, fmt.Sprintf("specialize %s pid:%d", host, os.Getpid())); err != nil {
		return err
	}
	m2 := store.Metrics{ValAccuracy: tr.ValAccuracy, TestAccuracy: tr.TestAccuracy, HasTest: true, Params: tr.Params,
		CompressedBytes: tr.Bytes, MACs: tr.MACs, TrainSeconds: tr.TrainSeconds, Reward: rew, Estimate: tr.Estimate}
	ls, err := storedLatencies(tr)
	if err != nil {
		return err
	}
	if err := db.FinishTrial(ctx, t.ID, m2, ls, tr.Weights); err != nil {
		return err
	}
	if err := mergeResultOps(ctx, db, tr); err != nil {
		return err
	}
	res.Trial, res.Name = t.Number, t.Name()
	res.ValAccuracy, res.TestAccuracy, res.Bytes, res.LatencyNs = tr.ValAccuracy, tr.TestAccuracy, tr.Bytes, int64(latencyOf(tr))
	res.WithinBounds = latencyOf(tr) <= o.MaxLatency && (o.MaxBytes <= 0 || tr.Bytes <= o.MaxBytes)
	return nil
}

// trainedSupernet is an enas study's supernet as its latest checkpoint
// left it, with the study's data, ready to evaluate sub-networks.
type trainedSupernet struct {
	st    store.Study
	cfg   StudyConfig
	ctl   *ENAS
	sn    *Supernet
	in    *enasInputs
	close func() error
}

// openTrainedSupernet loads an enas study's supernet weights from its
// latest checkpoint (nothing is trained), and its data; kernels run on
// threads. A study that is not enas, or has no checkpoint yet, is
// ErrNoSupernet.
func openTrainedSupernet(ctx context.Context, db *store.DB, study string, threads int) (*trainedSupernet, error) {
	st, err := db.GetStudy(ctx, study)
	if err != nil {
		return nil, err
	}
	var cfg StudyConfig
	if err := json.Unmarshal(st.Config, &cfg); err != nil || cfg.Space == nil {
		return nil, fmt.Errorf("study %q: its stored config is not a search config: %w", st.Name, ErrNoSupernet)
	}
	if cfg.Strategy != StrategyENAS {
		return nil, fmt.Errorf("study %q was searched with %s, not enas: %w", st.Name, cfg.Strategy, ErrNoSupernet)
	}
	ctl := &ENAS{RL: NewRL(cfg.Space.Sizes(), DefaultRLConfig(), cfg.Seed)}
	if _, err := loadCheckpoint(ctx, db, st, ctl); err != nil {
		return nil, err
	}
	if len(ctl.saved) == 0 {
		return nil, fmt.Errorf("study %q: %w yet (run hwnas search --strategy enas on it first)", st.Name, ErrNoSupernet)
	}
	sn, err := NewSupernet(cfg.Space, cfg.Seed)
	if err != nil {
		return nil, err
	}
	if err := ctl.attach(sn.Weights); err != nil {
		return nil, err
	}
	in, err := loadENASInputs(st, cfg)
	if err != nil {
		return nil, err
	}
	kern, closeKern, err := nas.DefaultKernels(threads)
	if err != nil {
		return nil, err
	}
	sn.Kernels = kern
	return &trainedSupernet{st: st, cfg: cfg, ctl: ctl, sn: sn, in: in, close: closeKern}, nil
}

// searchedBest returns the decisions of the study's n most accurate
// search trials (their supernet estimates, on the search's device),
// distinct: the population specialize starts from, re-measured on the new
// device, before evolution mutates it.
func searchedBest(ctx context.Context, db *store.DB, st store.Study, n int) ([]Decisions, error) {
	trials, err := db.ListTrials(ctx, st.ID, store.TrialFilter{Status: store.Done})
	if err != nil {
		return nil, err
	}
	sort.SliceStable(trials, func(i, j int) bool {
		return trials[i].Metrics != nil && (trials[j].Metrics == nil || trials[i].Metrics.ValAccuracy > trials[j].Metrics.ValAccuracy)
	})
	var out []Decisions
	seen := map[string]bool{}
	for _, t := range trials {
		d, fm, err := parseDecisions(t.Decisions)
		if err != nil || fm != nil || t.Metrics == nil || seen[d.key()] {
			continue
		}
		seen[d.key()] = true
		if out = append(out, d); len(out) == n {
			break
		}
	}
	return out, nil
}
