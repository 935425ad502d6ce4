package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"hwnas/accel"
	"hwnas/nas/data"
	"hwnas/search"
)

// benchSearchOptions configure `hwnas bench search`.
type benchSearchOptions struct {
	DB, Data, Out, Device, Prefix string
	Space                         string
	Title, Resize, Normalize      string
	Strategies                    []string
	Seeds, Trials                 int
	Epochs, Subset, ValSubset     int
	LatencyTarget                 string
	MaxBytes                      int64
	Threads                       int
	JSON                          bool
	worker                        []string
	workerEnv                     []string
	stderr                        io.Writer
}

func init() {
	opts := benchSearchOptions{}
	cmd := &cobra.Command{
		Use:   "search",
		Short: "Compare the search strategies at an equal trial budget over several seeds",
		Long: `bench search runs one study per strategy and seed (resumable: the studies
live in --db) with the same proxy budget, and reports the mean best reward
after N trials and how many trials each strategy needs to reach random
search's final best. --out writes the report as a Markdown section of its own
(docs/SEARCH.md keeps one per data set: --title names it, the data folder's
name by default); other sections of the file are left as they are.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.stderr = cmd.ErrOrStderr()
			return runBenchSearch(cmd.Context(), cmd.OutOrStdout(), opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.DB, "db", "bench-search.db", "database for the benchmark's studies")
	f.StringVar(&opts.Data, "data", "data/mnist", dataFlagHelp)
	f.StringVar(&opts.Title, "title", "", "heading of the report's section in --out (default: the data folder's name)")
	addDataFlags(f, &opts.Resize, &opts.Normalize)
	f.StringVar(&opts.Out, "out", "", "write the Markdown report here (e.g. docs/SEARCH.md)")
	f.StringVar(&opts.Device, "device", "cpu", "device to measure on")
	f.StringVar(&opts.Prefix, "prefix", "bench", "study name prefix")
	f.StringVar(&opts.Space, "space", "", "search space JSON file (default: the built-in space scaled to the data set's shape)")
	f.StringSliceVar(&opts.Strategies, "strategies", []string{"rl", "random", "evolution"}, "strategies to compare")
	f.IntVar(&opts.Seeds, "seeds", 3, "seeds per strategy (1, 2, …)")
	f.IntVar(&opts.Trials, "trials", 30, "trials per strategy and seed")
	f.IntVar(&opts.Epochs, "epochs", 1, "proxy training epochs")
	f.IntVar(&opts.Subset, "subset", 1500, "proxy training images")
	f.IntVar(&opts.ValSubset, "val-subset", 1000, "validation images for the reward")
	f.StringVar(&opts.LatencyTarget, "latency-target", "13us", "latency target T: a time (13us) or a ratio to a built-in model (0.2xlenet5)")
	f.Int64Var(&opts.MaxBytes, "max-bytes", 10000, "size budget of the reward (0: none)")
	f.IntVar(&opts.Threads, "threads", 1, "threads for training and latency")
	f.BoolVar(&opts.JSON, "json", false, "print the report as JSON")
	benchCmd.AddCommand(cmd)
}

// runBenchSearch checks the input, runs the benchmark and writes the
// report.
func runBenchSearch(ctx context.Context, w io.Writer, opts benchSearchOptions) error {
	if opts.Seeds <= 0 || opts.Trials <= 0 {
		return badInputf("--seeds and --trials must be positive")
	}
	target, err := search.ParseLatencyTarget(opts.LatencyTarget)
	if err != nil {
		return badInputf("--latency-target: %v", err)
	}
	for _, s := range opts.Strategies {
		if _, err := search.NewStrategy(s, []int{1}, 0); err != nil {
			return badInput(err)
		}
	}
	name, _, err := accel.ParseSpec(opts.Device)
	if err != nil {
		return badInput(err)
	}
	if _, err := accel.Lookup(name); err != nil {
		return badInput(err)
	}
	space, err := loadSpaceFlag(opts.Space)
	if err != nil {
		return err
	}
	d, err := loadData(opts.Data, opts.Resize)
	if err != nil {
		return err
	}
	space, err = studySpace(space, d, opts.Normalize)
	if err != nil {
		return err
	}
	db, err := openWriteDB(opts.DB)
	if err != nil {
		return err
	}
	defer db.Close()
	seeds := make([]uint64, opts.Seeds)
	for i := range seeds {
		seeds[i] = uint64(i + 1)
	}
	cfg := search.StudyConfig{Space: space, Device: opts.Device, Data: opts.Data, DataOptions: data.Options{Resize: d.Info.Options.Resize},
		Augment: data.AutoAugment(d.Info.Shape[0], d.Info.Shape[1], d.Info.Shape[2]).String(), Epochs: opts.Epochs, Subset: opts.Subset,
		ValSubset: opts.ValSubset, Optimizer: "adam", LR: 0.02, BatchSize: 32, Batch: 1, Threads: opts.Threads,
		Reward:    search.RewardConfig{Mode: search.RewardSoft, LatencyTargetNs: int64(target.Abs), LatencyTargetRatio: target.Ratio, MaxBytes: opts.MaxBytes},
		Reference: target.Reference}
	rep, err := search.Benchmark(ctx, search.BenchOptions{DB: db, Prefix: opts.Prefix, Strategies: opts.Strategies,
		Seeds: seeds, Trials: opts.Trials, Config: cfg, DataInfo: &d.Info, Worker: opts.worker, WorkerEnv: opts.workerEnv,
		Limits: search.WorkerLimits{Timeout: 15 * time.Minute, MemoryBytes: 8 << 30}, Log: opts.stderr})
	if err != nil {
		return err
	}
	if opts.Out != "" {
		dev := accel.DetectCPU(opts.Threads, "")
		total := 0.0
		for _, r := range rep.Runs {
			total += r.Seconds
		}
		spaceArg := ""
		if opts.Space != "" {
			spaceArg = " --space " + opts.Space
		}
		header := fmt.Sprintf("Command: `hwnas bench search --data %s%s --trials %d --seeds %d --subset %d --epochs %d --latency-target %v --max-bytes %d`  \n"+
			"Data: %s.  \n"+
			"Machine: %s, %d thread(s) for training and latency (shared with other work, so latencies are noisy); %s; "+
			"the trials took %.0f minutes in all.\n",
			opts.Data, spaceArg, opts.Trials, opts.Seeds, opts.Subset, opts.Epochs, opts.LatencyTarget, opts.MaxBytes, d.Info.String(), dev.Name, dev.Cores,
			time.Now().UTC().Format("2006-01-02"), total/60)
		title := opts.Title
		if title == "" {
			title = filepath.Base(filepath.Clean(opts.Data))
		}
		var b bytes.Buffer
		if err := rep.Markdown(&b, title, header); err != nil {
			return err
		}
		preamble := "# Search strategies compared\n\nGenerated by `hwnas bench search` (`make bench-search`), one section per data set; do not edit by hand.\n"
		if err := writeDocSection(opts.Out, "search "+title, preamble, b.Bytes()); err != nil {
			return err
		}
	}
	if opts.JSON {
		return writeJSON(w, rep)
	}
	for _, row := range rep.Rows {
		fmt.Fprintf(w, "%-10s best after %d trials %.4f; trials to reach random's final best %.4f: %v (mean %.1f)\n",
			row.Strategy, rep.Trials, row.MeanBestAt[len(row.MeanBestAt)-1], rep.Target, row.TrialsToTarget, row.MeanTrialsToTarget)
	}
	return nil
}
