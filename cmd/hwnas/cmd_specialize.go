package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"hwnas/accel"
	"hwnas/search"
	"hwnas/store"
)

type specializeOptions struct {
	Study, DB, Device, Runtime string
	Threads, Batch             int
	MaxLatency                 time.Duration
	MaxBytes                   int64
	Evaluations, Population    int
	Minutes                    float64
	FineTune                   int
	Seed                       uint64
	JSON                       bool
	rounds                     accel.RoundsOptions
	stderr                     io.Writer
}

func init() {
	opts := specializeOptions{}
	cmd := &cobra.Command{
		Use:   "specialize",
		Short: "Pick a model for a new device from an enas study's supernet, without retraining it",
		Long: `specialize answers "which model for this device" from the supernet an enas
search trained (hwnas search --strategy enas), as Once-for-All does: regularized
evolution over its sub-networks, each evaluated with the shared weights (batch
norm recalibrated, the candidate's compression applied to its inherited
weights) and measured on --device only; nothing of the supernet is trained.
The most accurate candidate within --max-latency (and --max-bytes) is
fine-tuned from its inherited weights for --fine-tune-epochs and compressed;
whichever of the fine-tuned and the inherited weights scores better on
validation is measured again and recorded as a trial of the study with that device's
latency, so hwnas best --device and hwnas export --trial treat it like any
other trial. A device is its fingerprint: --threads 2 or HWNAS_ISA=avx2 make
another one of the same machine.`,
		Example: `  hwnas search --db shared.db --study shared --data data/mnist --strategy enas --trials 60 --subset 5000 --final-epochs 2
  hwnas specialize --db shared.db --study shared --device cpu --threads 2 --max-latency 20us --evaluations 50
  hwnas best --db shared.db --study shared --device cpu      # the specialised trial beside the final one`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.stderr = cmd.ErrOrStderr()
			return runSpecialize(cmd.Context(), cmd.OutOrStdout(), opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Study, "study", "", "enas study whose supernet to specialise")
	f.StringVar(&opts.DB, "db", "hwnas.db", dbFlagHelp)
	f.StringVar(&opts.Device, "device", "cpu", "device to measure on (cpu, cuda:0)")
	f.StringVar(&opts.Runtime, "runtime", store.RuntimeHwnas, "runtime whose latency counts (only hwnas: its own kernels)")
	f.IntVar(&opts.Threads, "threads", 1, "host threads of the device (0: all cores)")
	f.IntVar(&opts.Batch, "batch", 1, "batch size of the latency")
	f.DurationVar(&opts.MaxLatency, "max-latency", 0, "latency bound on the device (required)")
	f.Int64Var(&opts.MaxBytes, "max-bytes", 0, "compressed size bound in bytes (0: none)")
	f.IntVar(&opts.Evaluations, "evaluations", 100, "candidates evaluated with the supernet's weights at most")
	f.Float64Var(&opts.Minutes, "minutes", 10, "time bound of the search in minutes")
	f.IntVar(&opts.Population, "population", 16, "population of the evolution")
	f.IntVar(&opts.FineTune, "fine-tune-epochs", 1, "epochs of fine-tuning of the winner from its inherited weights (0: none); the better of the fine-tuned and the inherited weights on validation is recorded")
	f.Uint64Var(&opts.Seed, "seed", 1, "seed of the evolution and the fine-tuning")
	f.BoolVar(&opts.JSON, "json", false, "print the result as JSON")
	_ = cmd.MarkFlagRequired("study")
	rootCmd.AddCommand(cmd)
}

// runSpecialize checks the input before anything is written, then
// specialises.
func runSpecialize(ctx context.Context, w io.Writer, opts specializeOptions) error {
	switch {
	case opts.Study == "":
		return badInputf("--study is required")
	case opts.MaxLatency <= 0:
		return badInputf("--max-latency must be positive (the latency bound on the device)")
	case opts.Runtime != store.RuntimeHwnas:
		return badInputf("--runtime %q: specialize measures with hwnas's own kernels only (--runtime %s)", opts.Runtime, store.RuntimeHwnas)
	case opts.MaxBytes < 0 || opts.Evaluations < 1 || opts.Minutes <= 0 || opts.Population < 2 || opts.FineTune < 0 || opts.Batch < 0:
		return badInputf("--max-bytes and --fine-tune-epochs must not be negative, --evaluations and --minutes positive, --population at least 2")
	}
	name, _, err := accel.ParseSpec(opts.Device)
	if err != nil {
		return badInput(err)
	}
	if _, err := accel.Lookup(name); err != nil {
		return badInput(err)
	}
	if err := checkStudy(ctx, opts.DB, opts.Study); err != nil {
		return queryError(err)
	}
	db, err := openWriteDB(opts.DB)
	if err != nil {
		return err
	}
	defer db.Close()
	res, err := search.Specialize(ctx, db, search.SpecializeOptions{Study: opts.Study, Device: opts.Device, Threads: opts.Threads,
		Batch: opts.Batch, MaxLatency: opts.MaxLatency, MaxBytes: opts.MaxBytes, Evaluations: opts.Evaluations,
		Duration: time.Duration(opts.Minutes * float64(time.Minute)), Population: opts.Population, FineTuneEpochs: opts.FineTune,
		Seed: opts.Seed, Rounds: opts.rounds, Log: opts.stderr})
	if err != nil {
		if errors.Is(err, store.ErrNotFound) || errors.Is(err, search.ErrNoSupernet) {
			return badInput(err)
		}
		return err
	}
	if opts.JSON {
		return writeJSON(w, res)
	}
	bound := "within the bounds"
	if !res.WithinBounds {
		bound = "OVER the bounds when measured again"
	}
	kept := "its inherited weights"
	if res.FineTuned {
		kept = fmt.Sprintf("fine-tuned for %d epoch(s)", res.FineTuneEpochs)
	}
	tuned := ""
	if res.FineTuneEpochs > 0 {
		tuned = fmt.Sprintf("; inherited %.2f%%, fine-tuned %.2f%%", 100*res.InheritedVal, 100*res.FineTunedVal)
	}
	_, err = fmt.Fprintf(w, "trial %s for %s: supernet estimate %.2f%%, recorded with %s: val %.2f%% test %.2f%%%s, %d bytes, latency %v (%s); %d candidates evaluated (%d within the bounds) in %.0fs, %.0fs in all\n",
		res.Name, res.Device.Name, 100*res.Estimate, kept, 100*res.ValAccuracy, 100*res.TestAccuracy, tuned, res.Bytes,
		time.Duration(res.LatencyNs).Round(100*time.Nanosecond), bound, res.Evaluated, res.Feasible, res.SearchSeconds, res.Seconds)
	return err
}
