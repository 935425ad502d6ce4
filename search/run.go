package search

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"time"

	"hwnas/accel"
	"hwnas/store"
)

// StudyConfig is what a study fixes when it is created and reuses when it
// is resumed; it is stored as the study's config JSON.
type StudyConfig struct {
	Space     *Space               `json:"space"`
	Strategy  string               `json:"strategy"`
	Seed      uint64               `json:"seed"`
	Device    string               `json:"device"`
	Reward    RewardConfig         `json:"reward"`
	Data      string               `json:"data"`
	Epochs    int                  `json:"epochs"`
	Subset    int                  `json:"subset"`
	Optimizer string               `json:"optimizer,omitempty"`
	LR        float64              `json:"lr,omitempty"`
	BatchSize int                  `json:"batch_size,omitempty"`
	ValSubset int                  `json:"val_subset"`
	Batch     int                  `json:"batch"`
	Latency   accel.LatencyOptions `json:"latency"`
	Threads   int                  `json:"threads"`
	// Trials is the budget the study was started with (a bare resume
	// finishes it).
	Trials int `json:"trials,omitempty"`
}

// RewardConfig is Reward in its stored form.
type RewardConfig struct {
	Mode            RewardMode `json:"mode"`
	LatencyTargetNs int64      `json:"latency_target_ns"`
	MaxBytes        int64      `json:"max_bytes,omitempty"`
}

// Reward returns the reward function.
func (r RewardConfig) Reward() Reward {
	return Reward{Mode: r.Mode, LatencyTarget: time.Duration(r.LatencyTargetNs), MaxBytes: r.MaxBytes}
}

// Options configure Run.
type Options struct {
	DB    *store.DB
	Study string
	// Config is used when the study is created; a resumed study keeps its
	// stored config (Run reports differences on Log).
	Config StudyConfig
	// Trials is the study's total trial budget (finished and failed,
	// including earlier runs; −1: the budget stored with the study);
	// Duration bounds this run's wall time. At least one must be set.
	Trials   int
	Duration time.Duration
	// Worker is the worker command (default: this executable + "worker");
	// WorkerEnv is added to its environment.
	Worker    []string
	WorkerEnv []string
	Limits    WorkerLimits
	// Final, when Epochs > 0, trains the winner again after the search.
	Final FinalOptions
	// Progress, when set, is called after every trial.
	Progress func(Progress)
	// Log receives one line per trial and notes (nil: discarded).
	Log io.Writer
}

// Progress is the state of a running search.
type Progress struct {
	Study        string  `json:"study"`
	Done         int     `json:"done"`   // finished or failed trials in the study
	Failed       int     `json:"failed"` // of which failed (incl. invalid)
	Invalid      int     `json:"invalid"`
	Total        int     `json:"total"` // the trial budget (0: time-bounded)
	BestReward   float64 `json:"best_reward"`
	BestTrial    int     `json:"best_trial"`
	TrialsPerHr  float64 `json:"trials_per_hour"`
	ETASeconds   float64 `json:"eta_seconds"`
	LastTrial    int     `json:"last_trial"`
	LastReward   float64 `json:"last_reward"`
	LastError    string  `json:"last_error,omitempty"`
	PredErrorPct float64 `json:"prediction_error_pct"` // mean |error| of the per-op table so far this run
}

// Summary is what Run returns.
type Summary struct {
	Progress
	Resumed bool `json:"resumed"`
	// Pareto lists the study's trials on the (validation accuracy,
	// latency, bytes) front on its device (store.ParetoFront), by number.
	Pareto   []int        `json:"pareto"`
	Final    *FinalResult `json:"final,omitempty"`
	Requeued int          `json:"requeued"`
	Seconds  float64      `json:"seconds"`
}

// maxInvalidInARow stops a search whose strategy proposes nothing valid.
const maxInvalidInARow = 1000

// Run creates the study (or resumes it), then proposes, evaluates in
// worker processes and records trials until the budget is spent or ctx is
// cancelled. It is safe to kill at any moment: every trial is recorded in
// one transaction, the strategy is checkpointed after every update, and a
// later Run re-queues trials left running, replays finished trials the
// last checkpoint had not yet seen, and continues numbering.
func Run(ctx context.Context, o Options) (*Summary, error) {
	if o.DB == nil {
		return nil, errors.New("search: no database")
	}
	if o.Trials == 0 && o.Duration <= 0 {
		return nil, errors.New("search: give a trial budget or a duration")
	}
	logw := o.Log
	if logw == nil {
		logw = io.Discard
	}
	worker := o.Worker
	if len(worker) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("search: finding the worker executable: %w", err)
		}
		worker = []string{exe, "worker"}
	}
	start := time.Now()
	st, cfg, resumed, err := openStudy(ctx, o, logw)
	if err != nil {
		return nil, err
	}
	if o.Trials < 0 {
		o.Trials = cfg.Trials
		if o.Trials <= 0 && o.Duration <= 0 {
			return nil, fmt.Errorf("study %q has no stored trial budget: give --trials or --hours", st.Name)
		}
	}
	space := cfg.Space
	strat, err := NewStrategy(cfg.Strategy, space.Sizes(), cfg.Seed)
	if err != nil {
		return nil, err
	}
	sum := &Summary{Resumed: resumed}
	sum.Study, sum.Total, sum.BestTrial = st.Name, o.Trials, -1
	reqIDs, err := o.DB.RequeueRunning(ctx, st.ID)
	if err != nil {
		return nil, fmt.Errorf("search: re-queueing running trials: %w", err)
	}
	sum.Requeued = len(reqIDs)
	if len(reqIDs) > 0 {
		fmt.Fprintf(logw, "study %s: re-queued %d trial(s) left running\n", st.Name, len(reqIDs))
	}
	next, err := restoreStrategy(ctx, o.DB, st, space, strat, sum, logw)
	if err != nil {
		return nil, err
	}
	rw := cfg.Reward.Reward()
	c := &coordinator{o: o, st: st, cfg: cfg, strat: strat, worker: worker, log: logw, sum: sum, reward: rw, nextObserve: next}
	runStart := time.Now()
	doneAtStart := sum.Done
	invalidRun := 0
	for {
		if err := ctx.Err(); err != nil {
			break
		}
		if o.Trials > 0 && sum.Done >= o.Trials {
			break
		}
		if o.Duration > 0 && time.Since(runStart) >= o.Duration {
			break
		}
		tr, err := c.nextTrial(ctx)
		if err != nil {
			return sum, err
		}
		invalid, err := c.runTrial(ctx, tr)
		if ctx.Err() != nil {
			break // the trial stays running or pending; the next Run re-queues it
		}
		if err != nil {
			return sum, err
		}
		if invalid {
			invalidRun++
			if invalidRun >= maxInvalidInARow {
				return sum, fmt.Errorf("search: %d invalid proposals in a row; check the space", invalidRun)
			}
		} else {
			invalidRun = 0
		}
		el := time.Since(runStart).Hours()
		if n := sum.Done - doneAtStart; n > 0 && el > 0 {
			sum.TrialsPerHr = float64(n) / el
			if o.Trials > 0 {
				sum.ETASeconds = float64(o.Trials-sum.Done) / sum.TrialsPerHr * 3600
			}
		}
		if o.Progress != nil {
			o.Progress(sum.Progress)
		}
	}
	if ctx.Err() != nil {
		sum.Seconds = time.Since(start).Seconds()
		return sum, ctx.Err()
	}
	status := store.StudyStopped
	if o.Trials > 0 && sum.Done >= o.Trials {
		status = store.StudyDone
		if o.Final.Epochs > 0 {
			if err := c.runFinal(ctx, o.Final); err != nil {
				return sum, fmt.Errorf("final training: %w", err)
			}
		}
	}
	sum.Seconds = time.Since(start).Seconds()
	front, err := o.DB.ParetoFront(ctx, st.Name, st.DeviceFingerprint, cfg.Batch, store.ByValidation)
	if err != nil {
		return sum, fmt.Errorf("pareto front: %w", err)
	}
	for _, r := range front {
		sum.Pareto = append(sum.Pareto, r.Number)
	}
	if err := o.DB.SetStudyStatus(context.WithoutCancel(ctx), st.ID, status); err != nil {
		return sum, err
	}
	return sum, nil
}

// openStudy creates the study or loads it for a resume.
func openStudy(ctx context.Context, o Options, logw io.Writer) (store.Study, StudyConfig, bool, error) {
	st, err := o.DB.GetStudy(ctx, o.Study)
	if err == nil {
		var cfg StudyConfig
		if err := json.Unmarshal(st.Config, &cfg); err != nil || cfg.Space == nil {
			return st, cfg, true, fmt.Errorf("study %q: its stored config is not a search config: %v", o.Study, err)
		}
		if err := cfg.Space.Validate(); err != nil {
			return st, cfg, true, fmt.Errorf("study %q: stored space: %w", o.Study, err)
		}
		if o.Config.Strategy != "" && o.Config.Strategy != cfg.Strategy {
			fmt.Fprintf(logw, "study %s: resuming with its strategy %s (not %s)\n", st.Name, cfg.Strategy, o.Config.Strategy)
		}
		if err := o.DB.SetStudyStatus(ctx, st.ID, store.StudyRunning); err != nil {
			return st, cfg, true, err
		}
		return st, cfg, true, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return st, StudyConfig{}, false, err
	}
	cfg := o.Config
	if cfg.Space == nil {
		cfg.Space = DefaultMNISTSpace()
	}
	if err := cfg.Space.Validate(); err != nil {
		return st, cfg, false, err
	}
	if err := cfg.Reward.Reward().Validate(); err != nil {
		return st, cfg, false, err
	}
	if _, err := NewStrategy(cfg.Strategy, cfg.Space.Sizes(), cfg.Seed); err != nil {
		return st, cfg, false, err
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 1
	}
	dev, err := describeDevice(cfg.Device)
	if err != nil {
		return st, cfg, false, err
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		return st, cfg, false, err
	}
	st, err = o.DB.CreateStudy(ctx, store.Study{Name: o.Study, Dataset: cfg.Data, DeviceSpec: cfg.Device,
		DeviceName: dev.Name, DeviceFingerprint: dev.Fingerprint, Strategy: cfg.Strategy, Config: raw})
	return st, cfg, false, err
}

// describeDevice opens the backend once to describe it (and to fail early
// on an unknown device).
func describeDevice(spec string) (accel.Device, error) {
	be, err := accel.Open(spec, accel.Options{Threads: 1})
	if err != nil {
		return accel.Device{}, err
	}
	defer be.Close()
	return be.Device(), nil
}

// checkpointState is the blob saved after every update: the strategy's
// own checkpoint and the number of the first trial it has not observed.
type checkpointState struct {
	NextObserve int             `json:"next_observe"`
	Strategy    json.RawMessage `json:"strategy"`
}

// restoreStrategy loads the latest checkpoint, then replays (observes)
// the finished and failed trials at or after its NextObserve in number
// order, which the checkpoint missed because the coordinator was killed
// between recording a trial and checkpointing. It also fills the summary
// counts. It returns the next trial number to observe.
func restoreStrategy(ctx context.Context, db *store.DB, st store.Study, space *Space, strat Strategy, sum *Summary, logw io.Writer) (int, error) {
	next := 0
	ck, err := db.LatestCheckpoint(ctx, st.ID)
	switch {
	case err == nil:
		var cs checkpointState
		if err := json.Unmarshal(ck.Blob, &cs); err != nil {
			return 0, fmt.Errorf("study %q: checkpoint %d: %w", st.Name, ck.Step, err)
		}
		if err := strat.Restore(cs.Strategy); err != nil {
			return 0, fmt.Errorf("study %q: checkpoint %d: %w", st.Name, ck.Step, err)
		}
		next = cs.NextObserve
	case errors.Is(err, store.ErrNotFound):
	default:
		return 0, err
	}
	trials, err := db.ListTrials(ctx, st.ID, store.TrialFilter{})
	if err != nil {
		return 0, err
	}
	replayed := 0
	for _, t := range trials {
		if t.Status != store.Done && t.Status != store.Failed {
			continue
		}
		d, fm, err := parseDecisions(t.Decisions)
		if err != nil {
			return 0, fmt.Errorf("study %q trial %d: decisions: %w", st.Name, t.Number, err)
		}
		if fm != nil {
			continue // a final training, not part of the search
		}
		sum.Done++
		r := 0.0
		if t.Status == store.Failed {
			sum.Failed++
			if isInvalidReason(t.Error) {
				sum.Invalid++
			}
		} else if t.Metrics != nil {
			r = t.Metrics.Reward
			if sum.BestTrial < 0 || r > sum.BestReward {
				sum.BestReward, sum.BestTrial = r, t.Number
			}
		}
		if t.Number < next {
			continue
		}
		if err := strat.Observe(d, r); err != nil {
			return 0, fmt.Errorf("study %q trial %d: replaying: %w", st.Name, t.Number, err)
		}
		next = t.Number + 1
		replayed++
	}
	if replayed > 0 {
		fmt.Fprintf(logw, "study %s: replayed %d finished trial(s) into the strategy\n", st.Name, replayed)
		if err := saveCheckpoint(ctx, db, st.ID, strat, next); err != nil {
			return 0, err
		}
	}
	return next, nil
}

// TeacherPath is where a study keeps its distillation teacher: beside the
// database, named after it and the study.
func TeacherPath(dbPath, study string) string {
	safe := strings.Map(func(r rune) rune {
		if r == '/' || r == os.PathSeparator || r == 0 {
			return '_'
		}
		return r
	}, study)
	return dbPath + "." + safe + ".teacher.hwnw"
}

func isInvalidReason(s string) bool {
	return len(s) >= len(FailInvalid) && s[:len(FailInvalid)] == FailInvalid
}

func saveCheckpoint(ctx context.Context, db *store.DB, studyID int64, strat Strategy, next int) error {
	blob, err := strat.Checkpoint()
	if err != nil {
		return fmt.Errorf("search: checkpointing %s: %w", strat.Name(), err)
	}
	raw, err := json.Marshal(checkpointState{NextObserve: next, Strategy: blob})
	if err != nil {
		return err
	}
	return db.SaveCheckpoint(ctx, studyID, next, raw)
}

type coordinator struct {
	o           Options
	st          store.Study
	cfg         StudyConfig
	strat       Strategy
	worker      []string
	log         io.Writer
	sum         *Summary
	reward      Reward
	nextObserve int
	predErrSum  float64
	predErrN    int
}

// nextTrial returns the lowest-numbered pending trial (re-queued after a
// crash), or a new trial proposed by the strategy.
func (c *coordinator) nextTrial(ctx context.Context) (store.Trial, error) {
	pend, err := c.o.DB.ListTrials(ctx, c.st.ID, store.TrialFilter{Status: store.Pending})
	if err != nil {
		return store.Trial{}, err
	}
	for _, t := range pend {
		if _, fm, err := parseDecisions(t.Decisions); err == nil && fm == nil {
			return t, nil // a search trial re-queued after a crash (final ones wait for runFinal)
		}
	}
	num, err := c.o.DB.NextTrialNumber(ctx, c.st.ID)
	if err != nil {
		return store.Trial{}, err
	}
	d, err := c.strat.Propose(rand.New(rand.NewPCG(c.cfg.Seed, uint64(num))))
	if err != nil {
		return store.Trial{}, fmt.Errorf("search: %s proposal: %w", c.strat.Name(), err)
	}
	spec := store.TrialSpec{}
	if spec.Decisions, err = json.Marshal(d); err != nil {
		return store.Trial{}, err
	}
	if cfg, err := c.cfg.Space.Decode(d); err == nil {
		if cand, err := BuildCandidate(cfg); err == nil {
			spec.Arch = cand.Arch.JSON()
			if spec.Recipe, err = json.Marshal(cand.Layers); err != nil {
				return store.Trial{}, err
			}
		}
	}
	return c.o.DB.AddTrial(ctx, c.st.ID, spec)
}

// runTrial evaluates one trial in a worker and records the outcome, then
// lets the strategy observe the reward and checkpoints it. It reports
// whether the trial was an invalid candidate.
func (c *coordinator) runTrial(ctx context.Context, tr store.Trial) (invalid bool, err error) {
	d, _, err := parseDecisions(tr.Decisions)
	if err != nil {
		return false, fmt.Errorf("trial %d: decisions: %w", tr.Number, err)
	}
	var cand *Candidate
	cfg, derr := c.cfg.Space.Decode(d)
	if derr == nil {
		cand, derr = BuildCandidate(cfg)
	}
	if derr != nil {
		reason := FailInvalid + ": " + derr.Error()
		if err := c.o.DB.FailTrial(ctx, tr.ID, reason); err != nil {
			return true, err
		}
		c.sum.Invalid++
		return true, c.observe(ctx, tr.Number, d, 0, fmt.Errorf("%s", reason))
	}
	if err := c.o.DB.StartTrial(ctx, tr.ID, fmt.Sprintf("pid:%d", os.Getpid())); err != nil {
		return false, err
	}
	spec := c.trialSpec(tr.Number, cfg, cand)
	if spec.Recipe, err = json.Marshal(cand.Layers); err != nil {
		return false, err
	}
	spec.OpTable, err = c.opTable(ctx)
	if err != nil {
		return false, err
	}
	t0 := time.Now()
	res, err := RunWorker(ctx, c.worker, c.o.WorkerEnv, spec, c.o.Limits)
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	var te *TrialError
	if errors.As(err, &te) {
		if err := c.o.DB.FailTrial(ctx, tr.ID, te.Error()); err != nil {
			return false, err
		}
		return false, c.observe(ctx, tr.Number, d, 0, te)
	}
	if err != nil {
		return false, err
	}
	rew, err := c.reward.Compute(res.ValAccuracy, res.Latency.Median, res.Bytes)
	if err != nil {
		te := &TrialError{FailNaN, err.Error()}
		if err := c.o.DB.FailTrial(ctx, tr.ID, te.Error()); err != nil {
			return false, err
		}
		return false, c.observe(ctx, tr.Number, d, 0, te)
	}
	if err := c.record(ctx, tr.ID, spec, res, rew); err != nil {
		return false, err
	}
	if pe := res.PredictionError(); !math.IsNaN(pe) {
		c.predErrSum += math.Abs(pe)
		c.predErrN++
		c.sum.PredErrorPct = 100 * c.predErrSum / float64(c.predErrN)
	}
	if c.sum.BestTrial < 0 || rew > c.sum.BestReward {
		c.sum.BestReward, c.sum.BestTrial = rew, tr.Number
	}
	pred := "no prediction"
	if res.PredictedNs > 0 {
		pred = fmt.Sprintf("predicted %v (%+.0f%%, %.0f%% of ops known)", time.Duration(res.PredictedNs).Round(100*time.Nanosecond),
			100*res.PredictionError(), 100*res.PredCoverage)
	}
	fmt.Fprintf(c.log, "trial %d: reward %.4f val %.2f%% test %.2f%% %d bytes latency %v, %s, %.1fs\n",
		tr.Number, rew, 100*res.ValAccuracy, 100*res.TestAccuracy, res.Bytes, res.Latency.Median.Round(100*time.Nanosecond), pred, time.Since(t0).Seconds())
	return false, c.observe(ctx, tr.Number, d, rew, nil)
}

// trialSpec is the worker's spec for a candidate with the study's budget.
func (c *coordinator) trialSpec(number int, cfg Config, cand *Candidate) *TrialSpec {
	spec := &TrialSpec{Study: c.st.Name, Trial: number, Seed: c.cfg.Seed*1000003 + uint64(number),
		Config: cfg, Arch: cand.Arch, Data: c.cfg.Data, Epochs: c.cfg.Epochs, Subset: c.cfg.Subset,
		Optimizer: c.cfg.Optimizer, LR: c.cfg.LR, BatchSize: c.cfg.BatchSize,
		ValSubset: c.cfg.ValSubset, Test: true, Device: c.cfg.Device, Threads: c.cfg.Threads,
		Batch: c.cfg.Batch, Latency: c.cfg.Latency}
	if cfg.Distill {
		spec.Teacher = TeacherPath(c.o.DB.Path(), c.st.Name)
	}
	return spec
}

// record stores a finished trial (one transaction) and folds its per-op
// times into the device's table.
func (c *coordinator) record(ctx context.Context, trialID int64, spec *TrialSpec, res *TrialResult, rew float64) error {
	m := store.Metrics{ValAccuracy: res.ValAccuracy, TestAccuracy: res.TestAccuracy, HasTest: spec.Test,
		Params: res.Params, CompressedBytes: res.Bytes, MACs: res.MACs, TrainSeconds: res.TrainSeconds, Reward: rew}
	lat := store.Latency{Device: res.Device, Batch: res.Batch, Stats: res.Latency, Predicted: time.Duration(res.PredictedNs)}
	if err := c.o.DB.FinishTrial(ctx, trialID, m, []store.Latency{lat}, res.Weights); err != nil {
		return err
	}
	return c.mergeOpTimes(ctx, res)
}

// observe feeds the reward to the strategy and checkpoints it.
func (c *coordinator) observe(ctx context.Context, number int, d Decisions, reward float64, failure error) error {
	c.sum.Done++
	c.sum.LastTrial, c.sum.LastReward, c.sum.LastError = number, reward, ""
	if failure != nil {
		c.sum.Failed++
		c.sum.LastError = failure.Error()
		fmt.Fprintf(c.log, "trial %d: failed: %v\n", number, failure)
	}
	if number < c.nextObserve {
		return nil // already seen (cannot happen in number order; kept for safety)
	}
	if err := c.strat.Observe(d, reward); err != nil {
		return fmt.Errorf("trial %d: %s: %w", number, c.strat.Name(), err)
	}
	c.nextObserve = number + 1
	return saveCheckpoint(ctx, c.o.DB, c.st.ID, c.strat, c.nextObserve)
}

// opTable returns the study device's per-op table as key → ns.
func (c *coordinator) opTable(ctx context.Context) (map[string]float64, error) {
	rows, err := c.o.DB.OpLatencies(ctx, c.st.DeviceFingerprint)
	if err != nil {
		return nil, err
	}
	t := make(map[string]float64, len(rows))
	for k, v := range rows {
		t[k] = float64(v)
	}
	return t, nil
}

// mergeOpTimes folds a trial's measured per-op times into the table of
// the device it ran on.
func (c *coordinator) mergeOpTimes(ctx context.Context, res *TrialResult) error {
	if len(res.PerOp) == 0 {
		return nil
	}
	cur, err := c.o.DB.OpLatencies(ctx, res.Device.Fingerprint)
	if err != nil {
		return err
	}
	return c.o.DB.PutOpLatencies(ctx, res.Device, MergeOpTimes(cur, res.PerOp))
}
