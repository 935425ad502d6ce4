package search

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"time"

	"hwnas/accel"
	"hwnas/nas"
	"hwnas/nas/compress"
	"hwnas/nas/data"
	"hwnas/store"
)

// StrategyENAS is the weight-sharing search (Pham et al., ENAS, 2018).
const StrategyENAS = "enas"

// ENASConfig sets the weight-sharing search's rounds; zero fields take
// the defaults noted.
type ENASConfig struct {
	// Steps of shared-weight training per round, each on one batch with
	// one sub-network sampled from the controller (default: one pass over
	// the proxy subset, at most 100).
	Steps int `json:"steps,omitempty"`
	// Samples are the candidates evaluated, recorded as trials and
	// observed by the controller per round (default 5).
	Samples int `json:"samples,omitempty"`
	// CalibImages of the training split recalibrate each candidate's
	// batch-norm statistics before it is evaluated (default 512).
	CalibImages int `json:"calib_images,omitempty"`
	// LR is the shared weights' SGD rate (default 0.05).
	LR float64 `json:"lr,omitempty"`
	// Uniform is the fraction of training steps whose sub-network is
	// drawn uniformly from the space instead of from the controller
	// (default 0: none, pure ENAS; hwnas search's --enas-uniform
	// defaults to 0.5). A controller that has settled on a few choices
	// (one head, one block type) leaves the other slots untrained, and
	// the candidates using them are estimated far below what they reach
	// on their own; uniform steps keep them trained (at the cost of fewer
	// steps on what the controller favours). On the default MNIST space,
	// 12 minutes each, Kendall's τ over 20 sub-networks was 0.281 pure
	// and 0.451 with half the steps uniform.
	Uniform float64 `json:"uniform,omitempty"`
	// Warmup rounds train the shared weights on uniformly drawn
	// sub-networks before the first candidate is evaluated (default:
	// enough rounds for warmupSteps steps; negative: none). Estimates of
	// an untrained supernet are noise (10–40%), and a controller that
	// learns from them settles early: a seed-8 run without warm-up sampled
	// only networks over the byte budget after its first 20 trials (4 of
	// 894 within it) while rl found 9 KB ones.
	Warmup int `json:"warmup,omitempty"`
}

// warmupSteps is the default warm-up's length in shared-weight steps.
const warmupSteps = 1000

func (e ENASConfig) withDefaults(trainN, batch int) ENASConfig {
	if e.Steps <= 0 {
		e.Steps = min(100, (trainN+batch-1)/batch)
	}
	switch {
	case e.Warmup == 0:
		e.Warmup = (warmupSteps + e.Steps - 1) / e.Steps
	case e.Warmup < 0:
		e.Warmup = 0
	}
	if e.Samples <= 0 {
		e.Samples = 5
	}
	if e.CalibImages <= 0 {
		e.CalibImages = 512
	}
	e.CalibImages = min(e.CalibImages, trainN)
	if e.LR <= 0 {
		e.LR = 0.05
	}
	return e
}

// ENAS is the controller of the weight-sharing search: the RL strategy's
// LSTM and REINFORCE, whose checkpoint also carries the supernet's
// weights and the round, saved once per round: a search killed at any
// moment resumes with the shared weights of its last full round, the
// controller replaying the trials finished since.
type ENAS struct {
	*RL
	Round int
	net   *nas.SharedWeights
	saved []byte // restored supernet weights, until the run builds its supernet
}

// Name implements Strategy.
func (e *ENAS) Name() string { return StrategyENAS }

type enasCheckpoint struct {
	RL       json.RawMessage `json:"rl"`
	Round    int             `json:"round"`
	Supernet []byte          `json:"supernet,omitempty"`
}

// Checkpoint implements Strategy.
func (e *ENAS) Checkpoint() ([]byte, error) {
	rl, err := e.RL.Checkpoint()
	if err != nil {
		return nil, err
	}
	w := e.saved
	if e.net != nil {
		if w, err = e.net.MarshalBinary(); err != nil {
			return nil, err
		}
	}
	return json.Marshal(enasCheckpoint{RL: rl, Round: e.Round, Supernet: w})
}

// Restore implements Strategy.
func (e *ENAS) Restore(data []byte) error {
	var c enasCheckpoint
	if err := json.Unmarshal(data, &c); err != nil {
		return fmt.Errorf("enas checkpoint: %w", err)
	}
	if err := e.RL.Restore(c.RL); err != nil {
		return err
	}
	e.Round, e.saved = c.Round, c.Supernet
	if e.net != nil && len(c.Supernet) > 0 {
		return e.net.UnmarshalBinary(c.Supernet)
	}
	return nil
}

// attach makes net the supernet the checkpoints carry, loading the
// restored weights into it.
func (e *ENAS) attach(net *nas.SharedWeights) error {
	e.net = net
	if len(e.saved) > 0 {
		if err := net.UnmarshalBinary(e.saved); err != nil {
			return err
		}
	}
	e.saved = nil
	return nil
}

// enasRun is one run of the weight-sharing search in the coordinator.
type enasRun struct {
	*enasInputs
	c      *coordinator
	ctl    *ENAS
	sn     *Supernet
	be     accel.Backend
	worker string
	lats   latencyCache
}

// latencyCache keeps the latencies measured in one weight-sharing run by
// compressed network: the controller samples its favourites again and
// again (in a 12-minute MNIST run, 475 trials were 41 distinct networks),
// and a network's latency does not depend on how far the shared weights
// have trained, only on its architecture and compression (which kernels
// run it: sparse, int8). Measuring each one once leaves the time to the
// accuracy estimates.
type latencyCache map[string]*TrialResult

// key is the compressed network's identity: its architecture after
// compression, the recipe and the measured batch.
func (latencyCache) key(a *nas.Arch, recipe json.RawMessage, batch int) string {
	h := sha256.New()
	if err := json.NewEncoder(h).Encode(a); err != nil {
		return ""
	}
	h.Write(recipe)
	fmt.Fprintf(h, "|%d", batch)
	return hex.EncodeToString(h.Sum(nil))
}

// reuse copies an earlier measurement of the same network into res (not
// its per-op times, which the device's table has already learnt).
func (lc latencyCache) reuse(key string, res *TrialResult) bool {
	m, ok := lc[key]
	if !ok || key == "" {
		return false
	}
	res.Latencies = slices.Clone(m.Latencies)
	res.PredictedNs, res.PredCoverage, res.Attempts, res.LatencyReused = m.PredictedNs, m.PredCoverage, m.Attempts, true
	return true
}

// keep remembers res's measurement (undisturbed ones only: a disturbed
// figure is measured again next time).
func (lc latencyCache) keep(key string, res *TrialResult) {
	if lc == nil || key == "" || len(res.Latencies) == 0 {
		return
	}
	for _, l := range res.Latencies {
		if l.Disturbed {
			return
		}
	}
	lc[key] = &TrialResult{Latencies: slices.Clone(res.Latencies), PredictedNs: res.PredictedNs, PredCoverage: res.PredCoverage, Attempts: res.Attempts}
}

// enasInputs are what training and evaluating a study's sub-networks
// read: the proxy training subset, the validation subset of the reward,
// the batch-norm calibration images, the test split (reports only), the
// training augmentation, the round settings and the batch size.
type enasInputs struct {
	train, val, calib, test *data.Set
	aug                     data.Augment
	ec                      ENASConfig
	batch                   int
}

// loadENASInputs loads a study's data set as its config says, checking
// the split digest the study recorded.
func loadENASInputs(st store.Study, cfg StudyConfig) (*enasInputs, error) {
	d, err := data.Load(cfg.Data, cfg.DataOptions)
	if err != nil {
		return nil, err
	}
	if dg := studyDataDigest(st); dg != "" && d.Info.Digest != dg {
		return nil, fmt.Errorf("data folder %s changed since the study began (split digest %.12s, the study recorded %.12s)", cfg.Data, d.Info.Digest, dg)
	}
	in := &enasInputs{train: d.Train.Subset(cfg.Subset), val: d.Val.Subset(cfg.ValSubset), test: d.Test, batch: cfg.BatchSize}
	if in.aug, err = data.ParseAugment(cfg.Augment, d.Train.H, d.Train.W); err != nil {
		return nil, err
	}
	if in.batch <= 0 {
		in.batch = 64
	}
	if cfg.ENAS != nil {
		in.ec = *cfg.ENAS
	}
	in.ec = in.ec.withDefaults(in.train.N, in.batch)
	in.calib = in.train.Subset(in.ec.CalibImages)
	return in, nil
}

// enas runs the weight-sharing search in this process, in rounds until the
// trial budget is spent, the run's time is up or ctx ends: Steps batches
// of shared-weight training, each on a sub-network sampled from the
// controller, then Samples candidates sampled from the controller,
// evaluated with the supernet's weights (batch norm recalibrated, the
// candidate's compression applied to the inherited weights without
// fine-tuning, validation accuracy, latency measured on the study's
// device), recorded as trials flagged as supernet estimates and observed
// by the controller. Trials left running by a killed run are evaluated
// first.
func (c *coordinator) enas(ctx context.Context) error {
	ctl, ok := c.strat.(*ENAS)
	if !ok {
		return fmt.Errorf("search: strategy %s is not enas", c.strat.Name())
	}
	if c.cfg.MeasureDevice != "" {
		return errors.New("search: enas measures latency in the search process; a study measured on another device (--measure-device) cannot use it")
	}
	in, err := loadENASInputs(c.st, c.cfg)
	if err != nil {
		return err
	}
	r := &enasRun{c: c, ctl: ctl, enasInputs: in, lats: latencyCache{}}
	batch := in.batch
	kern, closeKern, err := nas.DefaultKernels(c.cfg.Threads)
	if err != nil {
		return err
	}
	defer closeKern()
	if r.sn, err = NewSupernet(c.cfg.Space, c.cfg.Seed); err != nil {
		return err
	}
	r.sn.Kernels = kern
	if err := ctl.attach(r.sn.Weights); err != nil {
		return fmt.Errorf("study %s: %w", c.st.Name, err)
	}
	if r.be, err = accel.Open(c.cfg.Device, accel.Options{Threads: c.cfg.Threads}); err != nil {
		return err
	}
	defer r.be.Close()
	host, _ := os.Hostname()
	r.worker = fmt.Sprintf("%s/%d/enas", host, os.Getpid())
	fmt.Fprintf(c.log, "study %s: enas supernet of %d tensors, %d weights; %d training step(s) of %d images and %d candidate(s) per round\n",
		c.st.Name, r.sn.Weights.Len(), r.sn.Weights.Size(), r.ec.Steps, batch, r.ec.Samples)
	if err := r.pending(ctx); err != nil {
		return err
	}
	for {
		if ctx.Err() != nil || r.budgetSpent() {
			return nil
		}
		warm := ctl.Round < r.ec.Warmup
		if err := r.trainRound(ctx, batch, warm); err != nil {
			return err
		}
		ctl.Round++
		for k := 0; !warm && k < r.ec.Samples && ctx.Err() == nil && !r.budgetSpent(); k++ {
			if err := r.sample(ctx); err != nil {
				return err
			}
		}
		// One checkpoint per round, after its samples (the supernet's
		// weights are a megabyte or more: saved after every trial, they
		// took a third of the run). A run killed within a round resumes
		// from the last one, replaying the trials observed since.
		if err := c.checkpoint(context.WithoutCancel(ctx)); err != nil {
			return err
		}
	}
}

// budgetSpent: the trial budget is observed or the run's time is up.
func (r *enasRun) budgetSpent() bool {
	o := r.c.o
	return (o.Trials > 0 && r.c.sum.Done >= o.Trials) || (o.Duration > 0 && time.Since(r.c.runStart) >= o.Duration)
}

// trainRound trains the shared weights for Steps batches, each with a
// sub-network the controller samples (or, for a fraction Uniform of the
// steps and every step of a warm-up round, one drawn uniformly), by SGD
// with momentum 0.9 and weight
// decay 5e-4 at ENASConfig.LR after a linear warm-up of
// 100 steps; the batches follow a permutation of the proxy subset drawn
// from the study's seed and the round.
func (r *enasRun) trainRound(ctx context.Context, batch int, warm bool) error {
	cfg := r.c.cfg
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x656e_6173_0000_0000+uint64(r.ctl.Round)))
	perm := rng.Perm(r.train.N)
	bs := min(batch, r.train.N)
	size := r.train.SampleSize()
	x := make([]float32, bs*size)
	labels := make([]int32, bs)
	var scratch []float32
	if !r.aug.IsZero() {
		scratch = make([]float32, size)
	}
	lr0 := r.ec.LR
	t0 := time.Now()
	var lossSum float64
	var correct, seen, trained int
	for s := 0; s < r.ec.Steps; s++ {
		if err := ctx.Err(); err != nil {
			return nil
		}
		var d Decisions
		var err error
		if rng.Float64() < r.ec.Uniform || warm {
			d = uniform(rng, cfg.Space.Sizes())
		} else if d, err = r.ctl.Propose(rng); err != nil {
			return err
		}
		sc, err := cfg.Space.Decode(d)
		if err != nil {
			return err
		}
		sub, err := r.sn.Sub(sc)
		if err != nil {
			continue // an invalid point trains nothing; the controller learns that from the samples
		}
		from := (s * bs) % max(1, r.train.N-bs+1)
		idx := perm[from : from+bs]
		if err := r.train.Batch(idx, x, labels); err != nil {
			return err
		}
		r.aug.Apply(x, bs, r.train.C, r.train.H, r.train.W, rng, scratch)
		loss, ok, err := sub.TrainStep(x, labels, bs)
		if errors.Is(err, nas.ErrNaN) {
			return fmt.Errorf("enas: shared-weight training diverged at round %d step %d (lower --enas-lr, %g): %w", r.ctl.Round, s+1, lr0, err)
		}
		if err != nil {
			return err
		}
		step := r.ctl.Round*r.ec.Steps + s // from the checkpointed round: a resume does not warm up again
		r.sn.Weights.Step(lr0*min(1, float64(step+1)/100), 0.9, 5e-4)
		lossSum += loss * float64(bs)
		correct += ok
		seen += bs
		trained++
	}
	if err := r.sn.Weights.Finite(); err != nil {
		return err
	}
	if seen > 0 {
		kind := ""
		if warm {
			kind = fmt.Sprintf(" (warm-up %d/%d: uniform sub-networks)", r.ctl.Round+1, r.ec.Warmup)
		}
		fmt.Fprintf(r.c.log, "enas round %d%s: %d shared-weight step(s), loss %.4f, train accuracy %.2f%%, %.1fs\n",
			r.ctl.Round+1, kind, trained, lossSum/float64(seen), 100*float64(correct)/float64(seen), time.Since(t0).Seconds())
	}
	return nil
}

// sample adds the controller's next candidate as a trial, evaluates it
// with the supernet's weights and observes it.
func (r *enasRun) sample(ctx context.Context) error {
	tr, cfg, cand, err := r.c.addProposal(ctx)
	if err != nil {
		return err
	}
	if cand == nil { // invalid: failed already
		_, err = r.c.observe(ctx)
		return err
	}
	return r.run(ctx, tr, cfg, cand)
}

// pending evaluates the search trials a killed run left unfinished (the
// coordinator re-queued them) before anything else, so the controller
// observes them in number order.
func (r *enasRun) pending(ctx context.Context) error {
	trials, err := r.c.o.DB.ListTrials(ctx, r.c.st.ID, store.TrialFilter{From: r.c.nextObserve})
	if err != nil {
		return err
	}
	for _, t := range trials {
		d, fm, err := parseDecisions(t.Decisions)
		if err != nil || fm != nil || t.Status != store.Pending {
			continue
		}
		cfg, err := r.c.cfg.Space.Decode(d)
		if err != nil {
			return fmt.Errorf("trial %s: %w", t.Name(), err)
		}
		cand, err := BuildCandidate(cfg)
		if err != nil {
			return fmt.Errorf("trial %s: %w", t.Name(), err)
		}
		if err := r.run(ctx, t, cfg, cand); err != nil {
			return err
		}
	}
	return nil
}

// run evaluates a pending trial and records and observes the outcome.
func (r *enasRun) run(ctx context.Context, tr store.Trial, cfg Config, cand *Candidate) error {
	c := r.c
	if err := c.o.DB.StartTrial(ctx, tr.ID, r.worker); err != nil {
		return err
	}
	spec := c.trialSpec(tr.Number, cfg, cand)
	spec.Test = false
	var err error
	if spec.Recipe, err = json.Marshal(cand.Layers); err != nil {
		return err
	}
	if spec.OpTable, err = c.opTable(ctx); err != nil {
		return err
	}
	if err = loadHistory(ctx, c.o.DB, c.st.DeviceFingerprint, max(1, spec.Batch), &spec.Measure); err != nil {
		return err
	}
	t0 := time.Now()
	res, err := r.evaluate(ctx, spec, cfg)
	if ctx.Err() != nil {
		return nil // left running: the next run re-queues and evaluates it
	}
	var rew float64
	var row store.Latency
	if err == nil {
		if row, err = c.cfg.rewardRow(res); err == nil {
			rew, err = c.reward.Of(res.ValAccuracy, row, res.Bytes)
		}
	}
	if err != nil {
		reason := FailError + ": " + err.Error()
		var te *TrialError
		if errors.As(err, &te) {
			reason = te.Error()
		}
		fmt.Fprintf(c.log, "trial %s: failed: %s\n", tr.Name(), reason)
		if err := c.o.DB.FailTrial(ctx, tr.ID, reason); err != nil {
			return err
		}
	} else {
		res.TrainSeconds = time.Since(t0).Seconds()
		if err := c.record(ctx, tr.ID, spec, res, rew); err != nil {
			return err
		}
		reused := ""
		if res.LatencyReused {
			reused = " (measured earlier in this run)"
		}
		fmt.Fprintf(c.log, "trial %s: supernet estimate: reward %.4f val %.2f%% %d bytes latency %v%s (%.1fs)\n",
			tr.Name(), rew, 100*res.ValAccuracy, res.Bytes, row.Figure().Round(100*time.Nanosecond), reused, time.Since(t0).Seconds())
	}
	_, err = c.observe(ctx)
	return err
}

// evaluate estimates a candidate with the supernet's weights: the
// sub-network's slices, batch norm recalibrated on CalibImages training
// images, the candidate's compression applied to the inherited weights
// without fine-tuning (pruning masks, weight sharing or quantization,
// encoding), validation accuracy of the compressed model as it runs on
// the device's kernels, latency measured on the study's device.
func (r *enasRun) evaluate(ctx context.Context, spec *TrialSpec, cfg Config) (*TrialResult, error) {
	sub, err := r.sn.Sub(cfg)
	if err != nil {
		return nil, &TrialError{FailInvalid, err.Error()}
	}
	return evaluateSubnet(ctx, sub, spec, r.calib, r.train, r.val, r.be, r.lats)
}

// evaluateSubnet is evaluate for a bound sub-network: the supernet
// estimate of one candidate, measured on be (nil: not measured) unless
// lats holds the same compressed network's latency (nil: no cache).
func evaluateSubnet(ctx context.Context, sub *Subnet, spec *TrialSpec, calib, train, val *data.Set, be accel.Backend, lats latencyCache) (*TrialResult, error) {
	sub.Load()
	m := sub.Model
	if err := m.RecalibrateBN(calib.Images[:calib.N*calib.SampleSize()], calib.N, nas.EvalBatch); err != nil {
		return nil, err
	}
	var layers []LayerRecipe
	if len(spec.Recipe) > 0 {
		if err := json.Unmarshal(spec.Recipe, &layers); err != nil {
			return nil, fmt.Errorf("recipe: %w", err)
		}
	}
	cr, err := compress.Apply(ctx, m, CompressRecipe(layers, nil), train, val,
		compress.Config{NoFineTune: true, RecalibrateBN: calib.N, FinalOnly: true, PruneRounds: 1, Threads: spec.Threads, Train: nas.TrainConfig{Seed: spec.Seed}})
	if err != nil {
		return nil, fmt.Errorf("compressing the inherited weights: %w", err)
	}
	res := &TrialResult{Trial: spec.Trial, Recipe: spec.Recipe, Estimate: true, ValAccuracy: cr.ValAccAfter,
		Params: cr.ParamsAfter, Bytes: int64(cr.Bytes), MACs: cr.Model.Graph.MACs(), Arch: cr.Model.Arch}
	if res.Weights, err = EncodeTrialWeights(cr); err != nil {
		return nil, err
	}
	if be == nil {
		return res, nil
	}
	key := lats.key(cr.Model.Arch, spec.Recipe, max(1, spec.Batch))
	if lats.reuse(key, res) {
		return res, nil
	}
	if err := measureCompressed(be, cr.Model, spec, val, res); err != nil {
		return nil, err
	}
	lats.keep(key, res)
	return res, nil
}

// measureCompressed lowers a compressed model and measures it on be with
// validation images as input, as the spec says (batch, latency options,
// the per-op table's prediction), outside any quiet slot: the weight-
// sharing search and specialize run in one process.
func measureCompressed(be accel.Backend, m *nas.Model, spec *TrialSpec, val *data.Set, res *TrialResult) error {
	plan, err := nas.Lower(m)
	if err != nil {
		return fmt.Errorf("lowering: %w", err)
	}
	batch := max(1, spec.Batch)
	in := make([]float32, batch*plan.Tensors[plan.Input].Size())
	for i := range in {
		in[i] = val.Images[i%len(val.Images)]
	}
	return measureOn(be, plan, teacherShape(m.Arch), batch, spec.Threads, in, spec.Measure, spec.OpTable, res, nil)
}

// latencyOf is a measured result's figure in hwnas's kernels on its
// device (the one specialize's bounds use).
func latencyOf(res *TrialResult) time.Duration {
	l, _ := res.Row("")
	return l.Figure()
}
