package search

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"hwnas/accel"
	"hwnas/nas/data"
	"hwnas/store"
)

// StudyConfig is what a study fixes when it is created and reuses when it
// is resumed; it is stored as the study's config JSON.
type StudyConfig struct {
	Space    *Space       `json:"space"`
	Strategy string       `json:"strategy"`
	Seed     uint64       `json:"seed"`
	Device   string       `json:"device"`
	Reward   RewardConfig `json:"reward"`
	Data     string       `json:"data"`
	// DataOptions say how Data is read (an image folder's resize and
	// split seed); Augment is the training augmentation of every trial
	// and of the final training in data.Augment's form ("crop=4,flip";
	// "" or "none": none).
	DataOptions data.Options `json:"data_options"`
	Augment     string       `json:"augment,omitempty"`
	Epochs      int          `json:"epochs"`
	Subset      int          `json:"subset"`
	Optimizer   string       `json:"optimizer,omitempty"`
	LR          float64      `json:"lr,omitempty"`
	BatchSize   int          `json:"batch_size,omitempty"`
	ValSubset   int          `json:"val_subset"`
	Batch       int          `json:"batch"`
	Threads     int          `json:"threads"`
	// Runtime is the runtime whose latency the reward uses ("": hwnas's
	// kernels; RuntimeOnnx: the trial's ONNX export in onnxruntime, measured
	// beside hwnas's kernels). Reference is the built-in model every trial
	// is measured beside ("": DefaultReference); Rounds shape the
	// interleaved measurement (accel.MeasureRounds; zero: its defaults).
	Runtime   string              `json:"runtime,omitempty"`
	Reference string              `json:"reference,omitempty"`
	Rounds    accel.RoundsOptions `json:"rounds"`
	// SkipOver lets workers skip training a candidate whose predicted
	// latency is more than SkipOver times the budget, once the device's
	// predictor has proved itself (0: never skip).
	SkipOver float64 `json:"skip_over,omitempty"`
	// PredictorSweep untrained networks of the space are measured on the
	// device before the first trial, so the latency predictor knows the
	// space's ops from the start (0: none; see coordinator.sweep).
	PredictorSweep int `json:"predictor_sweep,omitempty"`
	// Trials is the budget the study was started with (a bare resume
	// finishes it).
	Trials int `json:"trials,omitempty"`
	// MeasureDevice pins the study to a device measured elsewhere (a
	// fingerprint or name, as hwnas devices prints it on that machine):
	// workers train, compress and evaluate only, and each trial's reward
	// waits for `hwnas measure --follow` on that device.
	MeasureDevice string `json:"measure_device,omitempty"`
	// ENAS sets the rounds of the enas strategy (nil: its defaults).
	ENAS *ENASConfig `json:"enas,omitempty"`
}

// RewardConfig is Reward in its stored form.
//
// A relative budget keeps both forms: LatencyTargetRatio of the study's
// reference model (what the reward uses), and LatencyTargetNs, the
// absolute time that was on the device the study started on (the
// reference measured there when the study was created; 0 when the study
// is measured on another device).
type RewardConfig struct {
	Mode               RewardMode `json:"mode"`
	LatencyTargetNs    int64      `json:"latency_target_ns"`
	LatencyTargetRatio float64    `json:"latency_target_ratio,omitempty"`
	MaxBytes           int64      `json:"max_bytes,omitempty"`
}

// Reward returns the reward function.
func (r RewardConfig) Reward() Reward {
	return Reward{Mode: r.Mode, LatencyTarget: time.Duration(r.LatencyTargetNs), LatencyRatio: r.LatencyTargetRatio, MaxBytes: r.MaxBytes}
}

// reference is the study's reference model.
func (c StudyConfig) reference() string {
	if c.Reference == "" {
		return DefaultReference
	}
	return c.Reference
}

// latencySpec is how the study's trials are measured (without baselines).
func (c StudyConfig) latencySpec() LatencySpec {
	ls := LatencySpec{Reference: c.reference(), Rounds: c.Rounds}
	if c.Runtime != "" && c.Runtime != store.RuntimeHwnas {
		// hwnas's kernels too: the predictor learns from their per-op times.
		ls.Runtimes = []string{store.RuntimeHwnas, c.Runtime}
	}
	return ls
}

// rewardRow is the result's latency in the runtime the reward uses.
func (c StudyConfig) rewardRow(res *TrialResult) (store.Latency, error) {
	l, ok := res.Row(c.Runtime)
	if !ok {
		return l, fmt.Errorf("result: no %s latency", store.Latency{Runtime: c.Runtime}.RuntimeName())
	}
	return l, nil
}

// Options configure Run.
type Options struct {
	DB    *store.DB
	Study string
	// Config is used when the study is created; a resumed study keeps its
	// stored config (Run reports differences on Log).
	Config StudyConfig
	// DataInfo is the data set's record (data.Info) stored with a new
	// study; its digest is checked by every worker, so a study whose
	// image folder changed under it fails its trials instead of mixing
	// splits.
	DataInfo *data.Info
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
	// Workers is how many trials run at once in worker processes of this
	// machine (0: 1); NoLocalWorkers leaves every trial to `hwnas worker`
	// processes elsewhere (PostgreSQL). See Work for Lease, Poll, NoPin
	// and Quiet.
	Workers        int
	NoLocalWorkers bool
	Lease, Poll    time.Duration
	NoPin          bool
	Quiet          QuietMode
	// TrainRepeats trains a network the strategy proposes again as a new
	// trial. By default a network the study has trained already is not
	// trained again: the strategy is told the mean reward of its trials
	// and proposes again (see maxReusedInARow). The enas strategy's
	// repeats are always new estimates.
	TrainRepeats bool
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
	PredErrorPct float64 `json:"prediction_error_pct"` // mean |error| of the predictor over the study's trials
	// Skipped trials were not trained: the predictor placed them far
	// outside the latency budget (counted in Failed too).
	Skipped int `json:"skipped"`
	// Predictor is the predictor's record on the study's trials (each
	// predicted before its own op times were known).
	Predictor PredictorReport `json:"predictor"`
	// HeldOut is the predictor after the study's trials (the latest
	// 200): each predicted from the other trials' op times (StudyHeldOut);
	// filled in when the run ends.
	HeldOut PredictorReport `json:"predictor_held_out"`
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
	// Renormalized counts the latency rows re-expressed in the probe's
	// usual figure at the end (renormalize).
	Renormalized int     `json:"renormalized"`
	Seconds      float64 `json:"seconds"`
	// Distinct counts the different networks (decisions) among the
	// study's finished search trials: a strategy that has settled
	// proposes the same few again (an enas controller's repeats are new
	// estimates of the same network, not new candidates).
	Distinct int `json:"distinct_networks"`
	// Reused counts the proposals of networks the study had trained
	// already, answered from their trials instead of training them again
	// (Options.TrainRepeats), in this run.
	Reused int `json:"reused_proposals"`
}

// maxReusedInARow bounds the proposals of already-trained networks that
// are answered from the study's trials in a row; the next one is trained
// again, so a strategy that has settled on a few networks keeps spending
// the budget on fresh measurements of them rather than spinning.
const maxReusedInARow = 100

// maxInvalidInARow stops a search whose strategy proposes nothing valid.
const maxInvalidInARow = 1000

// Run creates the study (or resumes it), then proposes trials and records
// them for workers to run, and observes their rewards, until the budget is
// spent or ctx is cancelled. Workers are Options.Workers slots of this
// process (Work) and any `hwnas worker` attached to the study; the
// coordinator keeps as many trials pending or running as there are live
// workers.
//
// Every strategy proposes asynchronously: a free worker gets a proposal
// from the strategy's current state at once. Rewards are observed strictly
// in trial-number order (a finished trial waits for lower-numbered ones),
// so with one worker the search is the sequential one, and a resume
// replays exactly what the checkpoint missed. For RL this is Zoph & Le's
// asynchronous REINFORCE: a sample may come from a policy up to workers−1
// updates old; with a few workers the bias is small, and a synchronous
// batch would leave workers idle behind the slowest trial of each batch.
//
// It is safe to kill at any moment: every trial is recorded in one
// transaction, the strategy is checkpointed after each observation round,
// and a later Run re-queues trials of dead workers, replays finished
// trials the last checkpoint had not yet seen, and continues numbering.
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
	if o.Poll <= 0 {
		o.Poll = 500 * time.Millisecond
	}
	if o.Lease <= 0 {
		o.Lease = DefaultLease
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
	reqIDs, err := o.DB.RequeueAbandoned(ctx, st.ID, deadLocalWorker)
	if err != nil {
		return nil, fmt.Errorf("search: re-queueing running trials: %w", err)
	}
	sum.Requeued = len(reqIDs)
	if len(reqIDs) > 0 {
		fmt.Fprintf(logw, "study %s: re-queued %d trial(s) of workers that are gone\n", st.Name, len(reqIDs))
	}
	c := &coordinator{o: o, st: st, cfg: cfg, strat: strat, worker: worker, log: logw, sum: sum, reward: cfg.Reward.Reward(),
		runStart: time.Now()}
	if !o.TrainRepeats && cfg.Strategy != StrategyENAS {
		c.trained = map[string]trainedNet{}
	}
	if c.nextObserve, err = c.restoreStrategy(ctx); err != nil {
		return nil, err
	}
	c.doneAtStart = sum.Done
	if n, err := c.observeFinished(ctx); err != nil {
		return sum, err
	} else if n > 0 {
		fmt.Fprintf(logw, "study %s: replayed %d finished trial(s) into the strategy\n", st.Name, n)
	}
	c.doneAtStart = sum.Done
	if err := c.sweep(ctx); err != nil {
		return sum, err
	}

	local := 0
	workErr := make(chan error, 1)
	wake := newSignal()
	finished := make(chan string, 64)
	workCtx, stopWork := context.WithCancel(ctx)
	defer stopWork()
	if !o.NoLocalWorkers && cfg.Strategy != StrategyENAS {
		local = max(1, o.Workers)
		go func() {
			workErr <- Work(workCtx, WorkOptions{DB: o.DB, Study: st.Name, Slots: local, Worker: worker, WorkerEnv: o.WorkerEnv,
				Limits: o.Limits, Lease: o.Lease, Poll: o.Poll, NoPin: o.NoPin, Quiet: o.Quiet, Log: logw,
				wake: wake, finished: finished})
		}()
	} else {
		workErr <- nil
	}
	if cfg.Strategy == StrategyENAS {
		err = c.enas(ctx)
	} else {
		err = c.loop(ctx, local, wake, finished)
	}
	stopWork()
	if werr := <-workErr; err == nil && werr != nil && !errors.Is(werr, context.Canceled) {
		err = werr
	}
	if ctx.Err() != nil {
		sum.Seconds = time.Since(start).Seconds()
		return sum, ctx.Err()
	}
	if err != nil {
		return sum, err
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
	if sum.Renormalized, err = renormalize(ctx, o.DB, st, max(1, cfg.Batch), cfg.latencySpec()); err != nil {
		return sum, fmt.Errorf("renormalising the latencies: %w", err)
	}
	sum.Seconds = time.Since(start).Seconds()
	front, err := o.DB.ParetoFront(ctx, st.Name, st.DeviceFingerprint, cfg.Batch, cfg.Runtime, store.ByValidation)
	if err != nil && !(cfg.MeasureDevice != "" && errors.Is(err, store.ErrNotFound)) {
		return sum, fmt.Errorf("pareto front: %w", err)
	}
	for _, r := range front {
		sum.Pareto = append(sum.Pareto, r.Number)
	}
	if sum.HeldOut, err = StudyHeldOut(ctx, o.DB, st.ID, st.DeviceFingerprint, cfg.Batch); err != nil {
		return sum, fmt.Errorf("latency predictor: %w", err)
	}
	if sum.Distinct, err = distinctNetworks(ctx, o.DB, st.ID); err != nil {
		return sum, err
	}
	if err := o.DB.SetStudyStatus(context.WithoutCancel(ctx), st.ID, status); err != nil {
		return sum, err
	}
	return sum, nil
}

// loop proposes while workers are free and the budget allows, and
// observes finished trials, until the budget is observed, or the run's
// time is up and nothing is outstanding.
func (c *coordinator) loop(ctx context.Context, local int, wake *signal, finished <-chan string) error {
	o := c.o
	saidWaiting := time.Time{}
	for {
		if ctx.Err() != nil {
			return nil
		}
		if _, err := c.observeFinished(ctx); err != nil {
			return err
		}
		if o.Trials > 0 && c.sum.Done >= o.Trials {
			return nil
		}
		counts, err := o.DB.CountTrials(ctx, c.st.ID)
		if err != nil {
			return err
		}
		outstanding := counts.Pending + counts.Running + counts.Measuring
		created := counts.Done + counts.Failed + outstanding
		timeUp := o.Duration > 0 && time.Since(c.runStart) >= o.Duration
		capacity, err := c.capacity(ctx, local)
		if err != nil {
			return err
		}
		proposed := false
		for outstanding < capacity && !timeUp && (o.Trials <= 0 || created < o.Trials) && ctx.Err() == nil {
			valid, err := c.propose(ctx)
			if err != nil {
				return err
			}
			created++
			proposed = true
			if valid {
				outstanding++
				continue
			}
			// An invalid proposal is failed at once; observe it before
			// proposing again, as a sequential search does.
			if _, err := c.observeFinished(ctx); err != nil {
				return err
			}
		}
		if proposed {
			wake.notify()
		}
		if outstanding == 0 && (timeUp || (o.Trials > 0 && created >= o.Trials && c.sum.Done >= o.Trials)) {
			return nil
		}
		if counts.Measuring > 0 && counts.Pending+counts.Running == 0 && time.Since(saidWaiting) > time.Minute {
			c.noteMeasurers(ctx, counts.Measuring)
			saidWaiting = time.Now()
		}
		select {
		case <-ctx.Done():
		case <-finished:
		case <-time.After(o.Poll):
		}
	}
}

// capacity is how many trials to keep pending or running: the live
// workers of the study (this process's slots among them), at least one.
func (c *coordinator) capacity(ctx context.Context, local int) (int, error) {
	live, err := c.o.DB.LiveWorkers(ctx, c.st.ID, store.RoleTrain, c.o.Lease)
	if err != nil {
		return 0, err
	}
	return max(1, local, len(live)), nil
}

// noteMeasurers says what trials waiting for measurement wait for.
func (c *coordinator) noteMeasurers(ctx context.Context, waiting int) {
	ms, err := c.o.DB.LiveWorkers(ctx, c.st.ID, store.RoleMeasure, c.o.Lease)
	if err != nil {
		return
	}
	if len(ms) == 0 {
		fmt.Fprintf(c.log, "study %s: %d trial(s) wait for a measurement on %s and no measurer is attached (run hwnas measure --follow --study %s there)\n",
			c.st.Name, waiting, c.cfg.MeasureDevice, c.st.Name)
		return
	}
	fmt.Fprintf(c.log, "study %s: %d trial(s) wait for a measurement on %s (%d measurer(s) attached)\n", c.st.Name, waiting, c.cfg.MeasureDevice, len(ms))
}

// propose adds the strategy's next proposal as a pending trial; an
// invalid candidate is recorded failed at once (valid false).
func (c *coordinator) propose(ctx context.Context) (valid bool, err error) {
	_, _, cand, err := c.addProposal(ctx)
	return cand != nil, err
}

// addProposal adds the strategy's next proposal as a pending trial and
// returns it with its decoded point and network; an invalid candidate is
// recorded failed at once (cand nil).
func (c *coordinator) addProposal(ctx context.Context) (tr store.Trial, cfg Config, cand *Candidate, err error) {
	num, err := c.o.DB.NextTrialNumber(ctx, c.st.ID)
	if err != nil {
		return tr, cfg, nil, err
	}
	d, err := c.next(ctx, num)
	if err != nil {
		return tr, cfg, nil, err
	}
	spec := store.TrialSpec{}
	if spec.Decisions, err = json.Marshal(d); err != nil {
		return tr, cfg, nil, err
	}
	cfg, derr := c.cfg.Space.Decode(d)
	if derr == nil {
		cand, derr = BuildCandidate(cfg)
	}
	if derr == nil {
		spec.Arch = cand.Arch.JSON()
		if spec.Recipe, err = json.Marshal(cand.Layers); err != nil {
			return tr, cfg, nil, err
		}
	}
	if tr, err = c.o.DB.AddTrial(ctx, c.st.ID, spec); err != nil {
		return tr, cfg, nil, err
	}
	if derr != nil {
		fmt.Fprintf(c.log, "trial %d: failed: %s: %v\n", tr.Number, FailInvalid, derr)
		return tr, cfg, nil, c.o.DB.FailTrial(ctx, tr.ID, FailInvalid+": "+derr.Error())
	}
	return tr, cfg, cand, nil
}

// next is the strategy's proposal for trial num. A network the study has
// trained already is not trained again: the strategy observes the mean
// reward of its trials and proposes again (each retry draws from its own
// random stream), up to maxReusedInARow times in a row, after which the
// repeat is trained. The strategy is checkpointed after such
// observations, so a resume proposes as the run would have.
func (c *coordinator) next(ctx context.Context, num int) (Decisions, error) {
	for reused := 0; ; reused++ {
		d, err := c.strat.Propose(rand.New(rand.NewPCG(c.cfg.Seed, uint64(num)|uint64(reused)<<32)))
		if err != nil {
			return nil, fmt.Errorf("search: %s proposal: %w", c.strat.Name(), err)
		}
		n, ok := c.trained[d.key()]
		if !ok || reused == maxReusedInARow {
			if reused > 0 {
				err = c.checkpoint(ctx)
			}
			return d, err
		}
		if err := c.strat.Observe(d, n.sum/float64(n.trials)); err != nil {
			return nil, fmt.Errorf("search: %s: %w", c.strat.Name(), err)
		}
		c.sum.Reused++
	}
}

// observeFinished feeds the strategy the finished search trials from
// nextObserve on, in number order, stopping at the first unfinished one,
// and checkpoints it once after them. It returns how many it observed.
func (c *coordinator) observeFinished(ctx context.Context) (int, error) {
	n, err := c.observe(ctx)
	if n > 0 && err == nil {
		err = c.checkpoint(ctx)
	}
	return n, err
}

// checkpoint saves the strategy's state as of the trials observed.
func (c *coordinator) checkpoint(ctx context.Context) error {
	return saveCheckpoint(ctx, c.o.DB, c.st.ID, c.strat, c.nextObserve)
}

// observe is observeFinished without the checkpoint: a strategy whose
// checkpoint is costly (enas's carries the supernet's weights) saves it
// itself, less often; a resume replays the trials observed since.
func (c *coordinator) observe(ctx context.Context) (int, error) {
	trials, err := c.o.DB.ListTrials(ctx, c.st.ID, store.TrialFilter{From: c.nextObserve})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, t := range trials {
		d, fm, err := parseDecisions(t.Decisions)
		if err != nil {
			return n, fmt.Errorf("study %q trial %d: decisions: %w", c.st.Name, t.Number, err)
		}
		if fm != nil {
			continue // a final training, not part of the search
		}
		if t.Status != store.Done && t.Status != store.Failed {
			break
		}
		r := c.count(t, d)
		if err := c.strat.Observe(d, r); err != nil {
			return n, fmt.Errorf("trial %d: %s: %w", t.Number, c.strat.Name(), err)
		}
		c.nextObserve = t.Number + 1
		n++
		if c.invalidRun >= maxInvalidInARow {
			return n, fmt.Errorf("search: %d invalid proposals in a row; check the space", c.invalidRun)
		}
		el := time.Since(c.runStart).Hours()
		if k := c.sum.Done - c.doneAtStart; k > 0 && el > 0 {
			c.sum.TrialsPerHr = float64(k) / el
			if c.o.Trials > 0 {
				c.sum.ETASeconds = float64(c.o.Trials-c.sum.Done) / c.sum.TrialsPerHr * 3600
			}
		}
		if c.o.Progress != nil {
			c.o.Progress(c.sum.Progress)
		}
	}
	return n, nil
}

// count adds a finished search trial to the summary, and a trained one's
// reward to what the study knows of its network. It returns the trial's
// reward as the strategy observes it (0 for a failed trial).
func (c *coordinator) count(t store.Trial, d Decisions) (r float64) {
	if t.Metrics != nil && t.Status == store.Done {
		r = t.Metrics.Reward
		if c.trained != nil && !t.Metrics.Estimate {
			k := d.key()
			n := c.trained[k]
			n.sum += r
			n.trials++
			c.trained[k] = n
		}
	}
	s := c.sum
	s.Done++
	s.LastTrial, s.LastReward, s.LastError = t.Number, r, ""
	if t.Status == store.Failed {
		s.Failed++
		s.LastError = t.Error
		if strings.HasPrefix(t.Error, FailSkipped+":") {
			s.Skipped++
		}
		if isInvalidReason(t.Error) {
			s.Invalid++
			c.invalidRun++
		} else {
			c.invalidRun = 0
		}
		return
	}
	c.invalidRun = 0
	if s.BestTrial < 0 || r > s.BestReward {
		s.BestReward, s.BestTrial = r, t.Number
	}
	for _, l := range t.Latencies {
		if l.Device.Fingerprint == c.st.DeviceFingerprint && l.RuntimeName() == store.RuntimeHwnas {
			s.Predictor.add(t.Number, predictionError(l))
			s.PredErrorPct = s.Predictor.MeanAbsPct
		}
	}
	return r
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
	if err := CheckRuntime(cfg.Runtime); err != nil {
		return st, cfg, false, err
	}
	if _, err := controlPlans(cfg.reference(), cfg.Space.dataShape()); err != nil {
		return st, cfg, false, err
	}
	dev, err := describeDevice(cfg.Device)
	if err != nil {
		return st, cfg, false, err
	}
	if cfg.Reward.LatencyTargetRatio > 0 && cfg.MeasureDevice == "" {
		// Keep the absolute form too: the budget on this device now.
		ref, err := MeasureReference(cfg.Device, cfg.Threads, cfg.Batch, cfg.Runtime, cfg.reference(), cfg.Space.dataShape(), cfg.Rounds)
		if err != nil {
			return st, cfg, false, fmt.Errorf("measuring the reference %s for the budget: %w", cfg.reference(), err)
		}
		cfg.Reward.LatencyTargetNs = int64(math.Round(cfg.Reward.LatencyTargetRatio * float64(ref.Latency)))
		fmt.Fprintf(logw, "study %s: latency budget %gx%s = %v on %s (the reference measured now: %v)\n", o.Study,
			cfg.Reward.LatencyTargetRatio, cfg.reference(), time.Duration(cfg.Reward.LatencyTargetNs).Round(100*time.Nanosecond), dev.Name,
			ref.Latency.Round(100*time.Nanosecond))
	}
	if cfg.MeasureDevice != "" {
		// The study's device is the one that measures it, elsewhere.
		dev.Name, dev.Fingerprint = cfg.MeasureDevice, cfg.MeasureDevice
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		return st, cfg, false, err
	}
	var info json.RawMessage
	if o.DataInfo != nil {
		if info, err = json.Marshal(o.DataInfo); err != nil {
			return st, cfg, false, err
		}
	}
	st, err = o.DB.CreateStudy(ctx, store.Study{Name: o.Study, Dataset: cfg.Data, DeviceSpec: cfg.Device,
		DeviceName: dev.Name, DeviceFingerprint: dev.Fingerprint, Strategy: cfg.Strategy, Config: raw, DataInfo: info})
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

// restoreStrategy loads the latest checkpoint into the strategy and counts
// the finished search trials it has seen into the summary (and the trained
// networks' rewards, see next). It returns the
// number of the first trial the checkpoint has not observed; the
// coordinator replays the finished ones from there (observeFinished).
func (c *coordinator) restoreStrategy(ctx context.Context) (int, error) {
	db, st := c.o.DB, c.st
	next, err := loadCheckpoint(ctx, db, st, c.strat)
	if err != nil {
		return 0, err
	}
	if next <= 0 {
		return 0, nil
	}
	trials, err := db.ListTrials(ctx, st.ID, store.TrialFilter{Below: next})
	if err != nil {
		return 0, err
	}
	for _, t := range trials {
		d, fm, err := parseDecisions(t.Decisions)
		if err != nil {
			return 0, fmt.Errorf("study %q trial %d: decisions: %w", st.Name, t.Number, err)
		}
		if fm != nil || (t.Status != store.Done && t.Status != store.Failed) {
			continue
		}
		c.count(t, d)
	}
	return next, nil
}

// loadCheckpoint loads the study's latest checkpoint into strat and
// returns the number of the first trial it has not observed (0 when the
// study has none).
func loadCheckpoint(ctx context.Context, db *store.DB, st store.Study, strat Strategy) (int, error) {
	ck, err := db.LatestCheckpoint(ctx, st.ID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return 0, nil
	case err != nil:
		return 0, err
	}
	var cs checkpointState
	if err := json.Unmarshal(ck.Blob, &cs); err != nil {
		return 0, fmt.Errorf("study %q: checkpoint %d: %w", st.Name, ck.Step, err)
	}
	if err := strat.Restore(cs.Strategy); err != nil {
		return 0, fmt.Errorf("study %q: checkpoint %d: %w", st.Name, ck.Step, err)
	}
	return cs.NextObserve, nil
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
	if store.IsURL(dbPath) {
		// A server database: each machine keeps its own copy (the same
		// seed trains the same teacher).
		sum := sha256.Sum256([]byte(dbPath))
		return filepath.Join(os.TempDir(), "hwnas-"+hex.EncodeToString(sum[:6])+"."+safe+".teacher.hwnw")
	}
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
	invalidRun  int
	runStart    time.Time
	doneAtStart int
	// trained holds the rewards of the networks the study has trained, by
	// decisions (nil: repeats are trained again).
	trained map[string]trainedNet
}

// trainedNet is what a study knows of one network it has trained: the sum
// of its trials' rewards and their number.
type trainedNet struct {
	sum    float64
	trials int
}

// trialSpec is the worker's spec for a candidate with the study's budget.
func (c *coordinator) trialSpec(number int, cfg Config, cand *Candidate) *TrialSpec {
	return trialSpec(c.st, c.cfg, c.o.DB.Path(), number, cfg, cand)
}

// record stores a finished trial (one transaction) and folds its per-op
// times into the device's table.
func (c *coordinator) record(ctx context.Context, trialID int64, spec *TrialSpec, res *TrialResult, rew float64) error {
	m := store.Metrics{ValAccuracy: res.ValAccuracy, TestAccuracy: res.TestAccuracy, HasTest: spec.Test,
		Params: res.Params, CompressedBytes: res.Bytes, MACs: res.MACs, TrainSeconds: res.TrainSeconds, Reward: rew,
		Estimate: res.Estimate}
	ls, err := storedLatencies(res)
	if err != nil {
		return err
	}
	if err := c.o.DB.FinishTrial(ctx, trialID, m, ls, res.Weights); err != nil {
		return err
	}
	return mergeResultOps(ctx, c.o.DB, res)
}

// opTable returns the study device's per-op table as key → ns.
func (c *coordinator) opTable(ctx context.Context) (map[string]float64, error) {
	return opTable(ctx, c.o.DB, c.st.DeviceFingerprint)
}

// distinctNetworks counts the different decisions among a study's
// finished search trials (finals left out).
func distinctNetworks(ctx context.Context, db *store.DB, studyID int64) (int, error) {
	trials, err := db.ListTrials(ctx, studyID, store.TrialFilter{Status: store.Done})
	if err != nil {
		return 0, err
	}
	seen := map[string]bool{}
	for _, t := range trials {
		if d, fm, err := parseDecisions(t.Decisions); err == nil && fm == nil {
			seen[d.key()] = true
		}
	}
	return len(seen), nil
}
