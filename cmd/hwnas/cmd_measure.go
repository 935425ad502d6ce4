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

type measureOptions struct {
	Study, DB, Device string
	Threads, Batch    int
	JSON              bool
	latency           accel.LatencyOptions
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
measurement.`,
		Example: `  hwnas measure --study quick --device cpu --threads 2`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runMeasure(cmd.Context(), cmd.OutOrStdout(), opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Study, "study", "", "study whose trials to measure")
	f.StringVar(&opts.DB, "db", "hwnas.db", "database file")
	f.StringVar(&opts.Device, "device", "cpu", "device to measure on (cpu, cuda:0)")
	f.IntVar(&opts.Threads, "threads", 1, "host threads (0: all cores)")
	f.IntVar(&opts.Batch, "batch", 1, "batch size")
	f.BoolVar(&opts.JSON, "json", false, "print JSON")
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
	// study, is refused without creating or touching anything.
	ro, err := store.OpenReadOnly(opts.DB)
	if err != nil {
		return badInput(err)
	}
	_, err = ro.GetStudy(ctx, opts.Study)
	ro.Close()
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return badInput(err)
		}
		return err
	}
	db, err := openWriteDB(opts.DB)
	if err != nil {
		return err
	}
	defer db.Close()
	var rows []search.Measurement
	err = search.MeasureStudy(ctx, db, opts.Study, search.MeasureOptions{Device: opts.Device, Threads: opts.Threads,
		Batch: opts.Batch, Latency: opts.latency}, func(m search.Measurement) {
		rows = append(rows, m)
		if !opts.JSON {
			if m.Error != "" {
				fmt.Fprintf(w, "trial %4d  error: %s\n", m.Trial, m.Error)
				return
			}
			pred := "-"
			if m.PredictedNs > 0 {
				pred = fmt.Sprintf("%v (%+.0f%%)", time.Duration(m.PredictedNs).Round(10*time.Nanosecond),
					100*(m.PredictedNs-float64(m.Latency.Median))/float64(m.Latency.Median))
			}
			fmt.Fprintf(w, "trial %4d  %s batch %d  median %v  p90 %v  predicted %s\n", m.Trial, m.Device, m.Batch,
				m.Latency.Median.Round(10*time.Nanosecond), m.Latency.P90.Round(10*time.Nanosecond), pred)
		}
	})
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
