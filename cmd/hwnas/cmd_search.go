package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"hwnas/accel"
	"hwnas/nas"
	"hwnas/nas/data"
	"hwnas/search"
	"hwnas/store"
)

type searchOptions struct {
	Study, DB, Device, Strategy string
	Trials                      int
	Hours                       float64
	LatencyTarget               string
	Runtime, Reference          string
	SkipOver                    float64
	PredictorSweep              int
	MaxBytes                    int64
	Reward                      string
	Space                       string
	Epochs, Subset, ValSubset   int
	Optimizer                   string
	LR                          float64
	TrainBatch                  int
	Data                        string
	Resize, Normalize, Augment  string
	Seed                        uint64
	Threads, Batch              int
	TrialTimeout                time.Duration
	TrialMemory                 int64
	FinalEpochs, FinalSubset    int
	FinalFineTune               int
	FinalLR                     float64
	FinalOptimizer              string
	FinalAugment                int
	FinalBatch                  int
	FinalFineTuneLR             float64
	FinalTries, FinalTop        int
	Workers                     int
	Lease                       time.Duration
	MeasureDevice               string
	NoPin, NoQuiet              bool
	TrainRepeats                bool
	Quiet                       string
	// rounds shortens the latency measurement (tests).
	rounds accel.RoundsOptions
	ENAS   search.ENASConfig
	// coordOnly: --workers 0 was given (the zero value of Workers in
	// tests means one worker).
	coordOnly bool
	// strategySet: --strategy was given (a resume without it keeps the
	// study's strategy silently).
	strategySet bool
	JSON        bool
	// Progress forces (1) or forbids (0) the progress bar; -1 decides by
	// whether stderr is a terminal.
	progress int
	// worker and workerEnv override the worker command and add to its
	// environment (tests).
	worker    []string
	workerEnv []string
	stderr    io.Writer
}

func init() {
	opts := searchOptions{}
	cmd := &cobra.Command{
		Use:   "search",
		Short: "Search architectures and compression mixes for a device",
		Long: `search runs (or resumes) a study: a strategy proposes a network and a
per-stage compression mix, a worker process trains it for the proxy budget,
compresses, evaluates and measures it on the device, and the result is stored
in the database. Run the same command again (or just --study S) after a crash
or kill -9 to resume: trials left running are re-run, the controller continues
from its checkpoint and nothing finished is lost.

--strategy enas shares weights instead (ENAS): this process trains one
supernet in rounds on sub-networks the controller samples, and records each
candidate it evaluates with the shared weights (batch norm recalibrated, its
compression applied without fine-tuning, measured on the device) as a trial
marked as a supernet estimate; best leaves those out and ranks the winner
trained on its own with --final-epochs. hwnas specialize later picks a model
from the same supernet for another device.

The reward is MnasNet's ACC·(LAT/T)^w (soft: w = −0.07; hard: 0 below T and
−1 above), times the same form on bytes when --max-bytes is given.

Latency is measured in interleaved rounds beside a reference model
(--reference, default lenet5, built for the data set's shape): each trial's
figure is a low quantile of the rounds' fastest runs, recorded with its 95%
interval and its ratio to the reference. --latency-target takes a time
(50us) or a ratio to a built-in model (0.2xlenet5): a relative budget means
the same on any machine and the reward then uses each trial's ratio, far
steadier than microseconds on a busy one; the study keeps both forms (the
reference is measured on this device when the study is created).
--runtime onnxruntime makes the reward use each trial's ONNX export timed in
onnxruntime (measured beside hwnas's kernels, whose per-op times the
predictor learns from). --skip-over F skips training candidates the
predictor places above F times the budget, once its record on the device
earned it (8 of its last 10+ predictions within ±10%); skipped trials are
failed with reason "skipped" and counted in the summary.`,
		Example: `  hwnas search --study quick --data data/mnist --trials 20 --subset 1000
  hwnas best --device cpu`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.progress = -1
			opts.stderr = cmd.ErrOrStderr()
			opts.coordOnly = opts.Workers == 0
			opts.strategySet = cmd.Flags().Changed("strategy")
			return runSearch(cmd.Context(), cmd.OutOrStdout(), opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Study, "study", "", "study name (created, or resumed when it exists)")
	f.StringVar(&opts.DB, "db", "hwnas.db", dbFlagHelp)
	f.StringVar(&opts.Device, "device", "cpu", "device to measure on (cpu, cuda:0)")
	f.StringVar(&opts.Strategy, "strategy", "rl", "search strategy: rl, random, evolution, or enas (weight sharing: candidates evaluated with a supernet's shared weights in this process, the winner trained on its own with --final-epochs)")
	f.IntVar(&opts.Trials, "trials", 0, "total trials of the study (including earlier runs)")
	f.Float64Var(&opts.Hours, "hours", 0, "stop this run after this many hours")
	f.StringVar(&opts.LatencyTarget, "latency-target", "1xlenet5", "latency target T of the reward: a ratio to a built-in model measured beside each trial on this device (0.2xlenet5; the default, 1xlenet5, is dense LeNet-5 built for the data set), or a time (100us)")
	f.StringVar(&opts.Runtime, "runtime", store.RuntimeHwnas, "runtime whose latency the reward uses: hwnas (its own kernels) or onnxruntime (each trial's ONNX export)")
	f.StringVar(&opts.Reference, "reference", "", "built-in model measured beside every trial (default: the budget's, else lenet5)")
	f.Float64Var(&opts.SkipOver, "skip-over", 0, "skip training candidates predicted above this many times the budget, once the predictor earned it (0: never)")
	f.IntVar(&opts.PredictorSweep, "predictor-sweep", search.DefaultPredictorSweep, "untrained networks of the space measured on the device before the first trial, so the latency predictor knows the space's ops (once per device, space and batch; 0: none)")
	f.Int64Var(&opts.MaxBytes, "max-bytes", 0, "size budget of the reward in bytes (0: none)")
	f.StringVar(&opts.Reward, "reward", "soft", "reward form: soft or hard")
	f.StringVar(&opts.Space, "space", "", "search space JSON file (default: the built-in space scaled to the data set's shape)")
	f.IntVar(&opts.Epochs, "epochs", 2, "proxy training epochs per trial")
	f.IntVar(&opts.Subset, "subset", 10000, "training images per trial (0: all)")
	f.StringVar(&opts.Optimizer, "optimizer", "adam", "proxy training optimizer: adam or sgd")
	f.Float64Var(&opts.LR, "lr", 0.01, "proxy training learning rate")
	f.IntVar(&opts.TrainBatch, "train-batch", 32, "proxy training mini-batch size")
	f.IntVar(&opts.ValSubset, "val-subset", 0, "validation images for the reward (0: all 5,000)")
	f.StringVar(&opts.Data, "data", "data/mnist", dataFlagHelp)
	addDataFlags(f, &opts.Resize, &opts.Normalize)
	f.StringVar(&opts.Augment, "augment", data.AugmentAuto, augmentFlagHelp+" (every trial's training and the final one)")
	f.Uint64Var(&opts.Seed, "seed", 1, "seed of the strategy and of every trial")
	f.IntVar(&opts.Threads, "threads", 1, "threads for training and latency (0: all cores)")
	f.IntVar(&opts.Batch, "batch", 1, "batch size of the latency measurement")
	f.DurationVar(&opts.TrialTimeout, "trial-timeout", 15*time.Minute, "time limit of one trial")
	f.Int64Var(&opts.TrialMemory, "trial-memory", 8<<30, "address-space limit of one worker in bytes")
	f.IntVar(&opts.FinalEpochs, "final-epochs", 0, "after the search, train the winner again for this many epochs (0: no)")
	f.IntVar(&opts.FinalSubset, "final-subset", 0, "training images of the final training (0: all)")
	f.IntVar(&opts.FinalFineTune, "final-fine-tune", 2, "fine-tuning epochs after each compression step in the final training")
	f.Float64Var(&opts.FinalLR, "final-lr", 0.003, "learning rate of the final training (0: --lr)")
	f.StringVar(&opts.FinalOptimizer, "final-optimizer", "", "optimizer of the final training: sgd (momentum 0.9, cosine schedule; for long final trainings, e.g. with --final-lr 0.05) or adam (default: --optimizer)")
	f.Float64Var(&opts.FinalFineTuneLR, "final-fine-tune-lr", 0, "learning rate of the compression fine-tuning after the final training (0: the final rate / 25)")
	f.IntVar(&opts.FinalBatch, "final-batch", 0, "mini-batch size of the final training (0: --train-batch)")
	f.IntVar(&opts.FinalTop, "final-top", 0, fmt.Sprintf("train this many of the best trials (distinct networks, by reward) on their own and keep the one best on validation within the bounds (0: %d for --strategy enas, whose trial figures are supernet estimates, 1 otherwise)", search.DefaultENASFinalTop))
	f.IntVar(&opts.FinalTries, "final-tries", 3, "with --reward hard, a final model over the latency target or --max-bytes (its size and latency can differ from its trial's) is kept as a trial and the next winner is trained instead, up to this many final models in all (at least --final-top)")
	f.IntVar(&opts.FinalAugment, "final-augment", 1, "randomly shifted (±2 px) copies of each training image added for the final training (0: none)")
	f.IntVar(&opts.Workers, "workers", 1, "trials run at once in worker processes here, each on --threads cores of its own (0: none here; hwnas worker processes elsewhere run them)")
	f.DurationVar(&opts.Lease, "lease", search.DefaultLease, "a worker that stops heartbeating for this long loses its trial to another")
	f.StringVar(&opts.MeasureDevice, "measure-device", "", "a new study's latency comes from this device (fingerprint or name from hwnas devices there), measured by hwnas measure --follow on it; rewards wait for it")
	f.BoolVar(&opts.NoPin, "no-pin", false, "do not pin worker processes to distinct cores")
	f.BoolVar(&opts.TrainRepeats, "train-repeats", false, "train a network the strategy proposes again as a new trial (default: a network the study has trained already is not trained again; the strategy is told its trials' mean reward and proposes another, up to 100 times in a row)")
	f.StringVar(&opts.Quiet, "quiet", "auto", "when workers measure latency one at a time, the others paused: auto (only when they share cores; pinned each to cores of its own, the probe measured beside every trial divides out what they share), on or off")
	f.BoolVar(&opts.NoQuiet, "no-quiet", false, "the same as --quiet off (the old spelling)")
	f.BoolVar(&opts.JSON, "json", false, "print the summary as JSON")
	f.IntVar(&opts.ENAS.Steps, "enas-steps", 0, "enas: shared-weight training batches per round (0: one pass over --subset, at most 100)")
	f.IntVar(&opts.ENAS.Samples, "enas-samples", 0, "enas: candidates evaluated (trials) per round (0: 5)")
	f.Float64Var(&opts.ENAS.LR, "enas-lr", 0, "enas: SGD learning rate of the shared weights (0: 0.05)")
	f.IntVar(&opts.ENAS.Warmup, "enas-warmup", 0, "enas: rounds of shared-weight training on uniformly drawn sub-networks before the first candidate is evaluated (0: 1000 steps' worth; -1: none)")
	f.Float64Var(&opts.ENAS.Uniform, "enas-uniform", 0.5, "enas: fraction of shared-weight steps on uniformly drawn sub-networks rather than the controller's (0: none, pure ENAS; the default half keeps the slots the controller has left trained, which ranks sub-networks better)")
	_ = cmd.MarkFlagRequired("study")
	rootCmd.AddCommand(cmd)
}

// runSearch checks the input (device, space, database, data) before
// anything is written, then runs the study.
func runSearch(ctx context.Context, w io.Writer, opts searchOptions) error {
	if opts.stderr == nil {
		opts.stderr = io.Discard
	}
	quiet, err := quietFlag(opts.Quiet, opts.NoQuiet)
	if err != nil {
		return err
	}
	if opts.Study == "" {
		return badInputf("--study is required")
	}
	if opts.Trials < 0 || opts.Hours < 0 || opts.Epochs < 0 || opts.Subset < 0 || opts.ValSubset < 0 || opts.Batch < 0 ||
		opts.FinalEpochs < 0 || opts.FinalSubset < 0 || opts.FinalLR < 0 || opts.FinalAugment < 0 || opts.FinalBatch < 0 || opts.FinalFineTuneLR < 0 || opts.FinalTries < 0 || opts.FinalTop < 0 {
		return badInputf("--trials, --hours, --epochs, --subset, --val-subset, --batch and --final-* must not be negative")
	}
	for _, o := range [][2]string{{"--optimizer", opts.Optimizer}, {"--final-optimizer", opts.FinalOptimizer}} {
		if o[1] != "" {
			if err := checkOptimizer(o[0], o[1]); err != nil {
				return err
			}
		}
	}
	target, err := search.ParseLatencyTarget(opts.LatencyTarget)
	if err != nil {
		return badInputf("--latency-target: %v", err)
	}
	reference := opts.Reference
	if target.Ratio > 0 {
		if reference != "" && reference != target.Reference {
			return badInputf("--latency-target %s is relative to %s but --reference is %s: give one reference", opts.LatencyTarget, target.Reference, reference)
		}
		reference = target.Reference
	}
	if reference != "" {
		if _, err := nas.BuiltinArchFor(reference, nas.DataShape{}); err != nil {
			return badInputf("--reference: %v", err)
		}
	}
	runtime, err := checkRuntimeFlag(opts.Runtime)
	if err != nil {
		return err
	}
	if opts.PredictorSweep < 0 {
		return badInputf("--predictor-sweep %d: give a count ≥ 0 (0: no sweep)", opts.PredictorSweep)
	}
	if opts.SkipOver < 0 || (opts.SkipOver > 0 && opts.SkipOver < 1) {
		return badInputf("--skip-over %v: give a factor ≥ 1 (0: never skip)", opts.SkipOver)
	}
	if opts.ENAS.Steps < 0 || opts.ENAS.Samples < 0 || opts.ENAS.LR < 0 || opts.ENAS.Uniform < 0 || opts.ENAS.Uniform > 1 || opts.ENAS.Warmup < -1 {
		return badInputf("--enas-steps, --enas-samples and --enas-lr must not be negative, --enas-uniform must be in [0,1], --enas-warmup at least -1")
	}
	reward := search.RewardConfig{Mode: search.RewardMode(opts.Reward), LatencyTargetNs: int64(target.Abs), LatencyTargetRatio: target.Ratio, MaxBytes: opts.MaxBytes}
	if err := reward.Reward().Validate(); err != nil {
		return badInput(err)
	}
	if _, _, err := accel.ParseSpec(opts.Device); err != nil {
		return badInput(err)
	}
	name, _, _ := accel.ParseSpec(opts.Device)
	if _, err := accel.Lookup(name); err != nil {
		return badInput(err)
	}
	space, err := loadSpaceFlag(opts.Space)
	if err != nil {
		return err
	}
	if _, err := search.NewStrategy(opts.Strategy, []int{1}, 0); err != nil {
		return badInput(err)
	}
	// Look before writing: a foreign or newer database is refused, and a
	// new study's data folder is checked, before the file is created.
	resuming := false
	switch ro, err := store.OpenReadOnly(opts.DB); {
	case err == nil:
		_, gerr := ro.GetStudy(ctx, opts.Study)
		ro.Close()
		if gerr != nil && !errors.Is(gerr, store.ErrNotFound) {
			return gerr
		}
		resuming = gerr == nil
	case errors.Is(err, store.ErrNotHwnas) || errors.Is(err, store.ErrNewerSchema):
		return badInput(err)
	case errors.Is(err, store.ErrNoDatabase) || errors.Is(err, store.ErrOlderSchema):
	default:
		return err
	}
	var info *data.Info
	var aug data.Augment
	var resize []int
	if !resuming {
		if opts.Trials == 0 && opts.Hours == 0 {
			return badInputf("study %q is new: give --trials N or --hours H", opts.Study)
		}
		d, err := loadData(opts.Data, opts.Resize)
		if err != nil {
			return err
		}
		info, resize = &d.Info, d.Info.Options.Resize
		if space, err = studySpace(space, d, opts.Normalize); err != nil {
			return err
		}
		if aug, err = resolveAugment(opts.Augment, d); err != nil {
			return err
		}
	}
	db, err := openWriteDB(opts.DB)
	if err != nil {
		return err
	}
	defer db.Close()
	if resuming && opts.Trials == 0 && opts.Hours == 0 {
		// A bare resume finishes the budget the study was started with.
		opts.Trials = -1
	}
	cfg := search.StudyConfig{Space: space, Strategy: opts.Strategy, Seed: opts.Seed, Device: opts.Device,
		Reward: reward, Data: opts.Data, DataOptions: data.Options{Resize: resize}, Augment: aug.String(),
		Epochs: opts.Epochs, Subset: opts.Subset, ValSubset: opts.ValSubset,
		Optimizer: opts.Optimizer, LR: opts.LR, BatchSize: opts.TrainBatch,
		Batch: opts.Batch, Threads: opts.Threads, Trials: opts.Trials, MeasureDevice: opts.MeasureDevice,
		Runtime: runtime, Reference: reference, SkipOver: opts.SkipOver, PredictorSweep: opts.PredictorSweep, Rounds: opts.rounds}
	if opts.Strategy == search.StrategyENAS {
		cfg.ENAS = &opts.ENAS
	}
	if resuming && !opts.strategySet {
		cfg.Strategy = "" // the study's own, without a note that the default differs
	}
	ro := search.Options{DB: db, Study: opts.Study, Config: cfg, DataInfo: info, Trials: opts.Trials,
		Duration: time.Duration(opts.Hours * float64(time.Hour)), Worker: opts.worker, WorkerEnv: opts.workerEnv,
		Limits:  search.WorkerLimits{Timeout: opts.TrialTimeout, MemoryBytes: opts.TrialMemory},
		Workers: opts.Workers, NoLocalWorkers: opts.coordOnly, Lease: opts.Lease, NoPin: opts.NoPin, Quiet: quiet, TrainRepeats: opts.TrainRepeats,
		Final: search.FinalOptions{Epochs: opts.FinalEpochs, Subset: opts.FinalSubset, FineTuneEpochs: opts.FinalFineTune, LR: opts.FinalLR, Augment: opts.FinalAugment, Optimizer: opts.FinalOptimizer, BatchSize: opts.FinalBatch, FineTuneLR: opts.FinalFineTuneLR, Tries: opts.FinalTries, Top: opts.FinalTop}}
	bar := opts.progress == 1
	if opts.progress < 0 {
		f, ok := opts.stderr.(*os.File)
		bar = ok && term.IsTerminal(int(f.Fd()))
	}
	if bar {
		pb := progressbar.NewOptions(-1, progressbar.OptionSetWriter(opts.stderr),
			progressbar.OptionSetDescription("search "+opts.Study), progressbar.OptionShowCount(),
			progressbar.OptionClearOnFinish())
		ro.Progress = func(p search.Progress) {
			if p.Total > 0 {
				pb.ChangeMax(p.Total)
			}
			pb.Describe(fmt.Sprintf("search %s: best %.4f (trial %s), %.0f trials/h, ETA %s, failed %d",
				p.Study, p.BestReward, trialName(p.Study, p.BestTrial), p.TrialsPerHr, (time.Duration(p.ETASeconds) * time.Second).Round(time.Second), p.Failed))
			_ = pb.Set(p.Done)
		}
		defer pb.Finish()
	} else {
		ro.Log = opts.stderr
	}
	sum, err := search.Run(ctx, ro)
	if err != nil {
		return err
	}
	if opts.JSON {
		return writeJSON(w, sum)
	}
	_, err = fmt.Fprintf(w, "study %s: %d trials (%d failed, %d invalid, %d skipped as predicted over budget), best reward %.4f (trial %s), %d distinct network(s), %.0f trials/hour; load %s\n",
		sum.Study, sum.Done, sum.Failed, sum.Invalid, sum.Skipped, sum.BestReward, trialName(sum.Study, sum.BestTrial), sum.Distinct, sum.TrialsPerHr, loadAvg())
	if err == nil && sum.Reused > 0 {
		_, err = fmt.Fprintf(w, "%d proposal(s) of networks the study had trained were answered from their trials, not trained again (--train-repeats trains them)\n", sum.Reused)
	}
	if err == nil {
		_, err = fmt.Fprintf(w, "latency predictor (each trial predicted before its own op times were known): %s\n", sum.Predictor)
	}
	if err == nil && sum.HeldOut.Trials > 0 {
		_, err = fmt.Fprintf(w, "latency predictor after the study's %d trials (each predicted from the other trials' op times): %s\n", sum.HeldOut.Trials, sum.HeldOut)
	}
	if err == nil {
		front := make([]string, len(sum.Pareto))
		for i, n := range sum.Pareto {
			front[i] = store.TrialName(sum.Study, n)
		}
		_, err = fmt.Fprintf(w, "pareto front (accuracy, latency, bytes): trials %s (hwnas pareto --study %s)\n", strings.Join(front, ", "), sum.Study)
	}
	if err == nil && sum.Final != nil {
		f := sum.Final
		over := ""
		if !f.WithinBounds {
			over = " (over the study's bounds)"
		}
		_, err = fmt.Fprintf(w, "final training of trial %s as trial %s: test accuracy %.2f%%, %d bytes, latency %v%s\n",
			store.TrialName(sum.Study, f.Of), store.TrialName(sum.Study, f.Trial), 100*f.TestAccuracy, f.Bytes, time.Duration(f.LatencyNs).Round(100*time.Nanosecond), over)
	}
	return err
}

// trialName is store.TrialName, or "none" before the first finished trial
// (number −1).
func trialName(study string, number int) string {
	if number < 0 {
		return "none"
	}
	return store.TrialName(study, number)
}

// studySpace fits a new study's space to its data: the default space is
// built for the data set's shape; a space file must match it. Either gets
// the data set's normalisation when --normalize says so (and the space
// has none of its own).
// loadSpaceFlag loads a --space file, or returns nil (the built-in space)
// for "".
func loadSpaceFlag(path string) (*search.Space, error) {
	if path == "" {
		return nil, nil
	}
	space, err := search.LoadSpace(path)
	if err != nil {
		return nil, badInput(err)
	}
	return space, nil
}

func studySpace(space *search.Space, d *data.Data, normalize string) (*search.Space, error) {
	shape, err := dataShape(d, normalize)
	if err != nil {
		return nil, err
	}
	if space == nil {
		space = search.DefaultSpace(shape.Input, shape.Classes)
	} else if !slices.Equal(space.Input, shape.Input) || space.Classes < shape.Classes {
		return nil, badInputf("--space: the space is for %v inputs and %d classes, the data set %s has %v and %d",
			space.Input, space.Classes, d.Info.Dir, shape.Input, shape.Classes)
	}
	if space.Normalize == nil && shape.Normalize != nil {
		space.Normalize = shape.Normalize
	}
	return space, space.Validate()
}
