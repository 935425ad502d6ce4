package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"hwnas/accel"
	"hwnas/search"
	"hwnas/store"
)

type measureOptions struct {
	Study, DB, Device string
	Threads, Batch    int
	Follow            bool
	Lease, Poll       time.Duration
	JSON              bool
	latency           accel.LatencyOptions
	stderr            io.Writer
}

func init() {
	opts := measureOptions{}
	cmd := &cobra.Command{
		Use:   "measure",
		Short: "Re-measure a study's finished trials on another device",
		Long: `measure loads every finished trial of a study from its stored weights (no
retraining), measures its batch latency on the device with that device's
kernels, and records it beside the trial's other latencies, so that
hwnas best --device NAME can answer for that device too. It also updates the
device's per-op latency table and prints the table's prediction beside each
measurement.

--follow runs beside a search (on the device whose latency matters: a board,
another server): it measures each trial as it finishes, skipping trials it
has measured, and when the study was started with --measure-device naming
this device, it completes the trained trials waiting for it (their reward
needs this latency). It exits when the study is no longer running and nothing
is left to measure. If it goes away mid-measurement the trial keeps its
training results and waits; the next measure --follow of the device takes it
over after --lease.`,
		Example: `  hwnas measure --study quick --device cpu --threads 2
  hwnas measure --follow --db postgres://hwnas@db.lan/hwnas --study quick --threads 4`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.stderr = cmd.ErrOrStderr()
			return runMeasure(cmd.Context(), cmd.OutOrStdout(), opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Study, "study", "", "study whose trials to measure")
	f.StringVar(&opts.DB, "db", "hwnas.db", dbFlagHelp)
	f.StringVar(&opts.Device, "device", "cpu", "device to measure on (cpu, cuda:0)")
	f.IntVar(&opts.Threads, "threads", 1, "host threads (0: all cores)")
	f.IntVar(&opts.Batch, "batch", 1, "batch size")
	f.BoolVar(&opts.Follow, "follow", false, "keep measuring the study's trials as they finish, until it is over")
	f.DurationVar(&opts.Lease, "lease", search.DefaultLease, "with --follow: how long a claimed measurement stays this measurer's")
	f.DurationVar(&opts.Poll, "poll", time.Second, "with --follow: how often to look for new trials")
	f.BoolVar(&opts.JSON, "json", false, "print JSON (one object per line with --follow)")
	_ = cmd.MarkFlagRequired("study")
	rootCmd.AddCommand(cmd)
}

// runMeasure checks the device, database and study before writing
// anything, then measures.
func runMeasure(ctx context.Context, w io.Writer, opts measureOptions) error {
	if opts.Batch < 0 {
		return badInputf("--batch %d must not be negative", opts.Batch)
	}
	name, _, err := accel.ParseSpec(opts.Device)
	if err != nil {
		return badInput(err)
	}
	if _, err := accel.Lookup(name); err != nil {
		return badInput(err)
	}
	// Read-only first: a missing, foreign or newer database, or an unknown
	// study, is refused without creating or touching anything. --follow
	// waits for a database or study not created yet (a measurer may start
	// before the search).
	for said := false; ; {
		err := checkStudy(ctx, opts.DB, opts.Study)
		waiting := opts.Follow && (errors.Is(err, store.ErrNoDatabase) || errors.Is(err, store.ErrNotFound))
		if err == nil || !waiting {
			if err != nil && (errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrNoDatabase) ||
				errors.Is(err, store.ErrNotHwnas) || errors.Is(err, store.ErrNewerSchema) || errors.Is(err, store.ErrOlderSchema)) {
				return badInput(err)
			}
			if err != nil {
				return err
			}
			break
		}
		if !said && opts.stderr != nil {
			fmt.Fprintf(opts.stderr, "measure: waiting for study %s in %s\n", opts.Study, opts.DB)
			said = true
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(opts.Poll):
		}
	}
	db, err := openWriteDB(opts.DB)
	if err != nil {
		return err
	}
	defer db.Close()
	var rows []search.Measurement
	mo := search.MeasureOptions{Device: opts.Device, Threads: opts.Threads, Batch: opts.Batch, Latency: opts.latency}
	each := func(m search.Measurement) {
		rows = append(rows, m)
		if opts.Follow && opts.JSON {
			json.NewEncoder(w).Encode(m)
			return
		}
		if !opts.JSON {
			if m.Error != "" {
				fmt.Fprintf(w, "trial %s  error: %s\n", store.TrialName(opts.Study, m.Trial), m.Error)
				return
			}
			pred := "-"
			if m.PredictedNs > 0 {
				pred = fmt.Sprintf("%v (%+.0f%%)", time.Duration(m.PredictedNs).Round(10*time.Nanosecond),
					100*(m.PredictedNs-float64(m.Latency.Median))/float64(m.Latency.Median))
			}
			reward := ""
			if m.Reward != 0 {
				reward = fmt.Sprintf("  reward %.4f", m.Reward)
			}
			fmt.Fprintf(w, "trial %s  %s batch %d  median %v  p90 %v  predicted %s%s\n", store.TrialName(opts.Study, m.Trial), m.Device, m.Batch,
				m.Latency.Median.Round(10*time.Nanosecond), m.Latency.P90.Round(10*time.Nanosecond), pred, reward)
		}
	}
	if opts.Follow {
		if opts.Lease <= 0 || opts.Poll <= 0 {
			return badInputf("--lease and --poll must be positive")
		}
		err = search.FollowStudy(ctx, db, opts.Study, search.FollowOptions{MeasureOptions: mo, Lease: opts.Lease, Poll: opts.Poll,
			UntilIdle: true, Log: opts.stderr}, each)
		if errors.Is(err, store.ErrNotFound) {
			return badInput(err)
		}
		return err
	}
	err = search.MeasureStudy(ctx, db, opts.Study, mo, each)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return badInput(err)
		}
		return err
	}
	if opts.JSON {
		if rows == nil {
			rows = []search.Measurement{}
		}
		return writeJSON(w, rows)
	}
	return nil
}

// checkStudy opens the database read-only and looks the study up.
func checkStudy(ctx context.Context, path, study string) error {
	ro, err := store.OpenReadOnly(path)
	if err != nil {
		return err
	}
	defer ro.Close()
	_, err = ro.GetStudy(ctx, study)
	return err
}
