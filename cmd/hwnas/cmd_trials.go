package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"hwnas/store"
)

type trialsOptions struct {
	DB, Study, Status string
	JSON              bool
}

func init() {
	opts := trialsOptions{}
	cmd := &cobra.Command{
		Use:   "trials",
		Short: "List a study's trials",
		Long: `trials lists a study's trials by number: status, validation and test accuracy,
compressed bytes, parameters, MACs, latency on the study's device at batch 1
(with the per-op table's prediction), reward, and the error of failed trials.
--json prints everything stored, including the architecture, the compression
recipe and every latency measured. The database is opened read-only.`,
		Example: `  hwnas trials --study quick --status done`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runTrials(cmd.Context(), cmd.OutOrStdout(), opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.DB, "db", "hwnas.db", dbFlagHelp)
	f.StringVar(&opts.Study, "study", "", "study name")
	f.StringVar(&opts.Status, "status", "", "only trials with this status: pending, running, done, failed")
	f.BoolVar(&opts.JSON, "json", false, "print JSON")
	_ = cmd.MarkFlagRequired("study")
	rootCmd.AddCommand(cmd)
}

func runTrials(ctx context.Context, w io.Writer, opts trialsOptions) error {
	status := store.TrialStatus(opts.Status)
	switch status {
	case "", store.Pending, store.Running, store.Done, store.Failed:
	default:
		return badInputf("--status %q: want pending, running, done or failed", opts.Status)
	}
	db, err := openQueryDB(opts.DB)
	if err != nil {
		return err
	}
	defer db.Close()
	st, err := db.GetStudy(ctx, opts.Study)
	if err != nil {
		return queryError(err)
	}
	trials, err := db.ListTrials(ctx, st.ID, store.TrialFilter{Status: status})
	if err != nil {
		return err
	}
	if opts.JSON {
		if trials == nil {
			trials = []store.Trial{}
		}
		return writeJSON(w, trials)
	}
	fmt.Fprintf(w, "study %s: %s on %s, %s; %d trials", st.Name, st.Dataset, deviceLabel(st.DeviceSpec, st.DeviceName), st.Strategy, len(trials))
	if status != "" {
		fmt.Fprintf(w, " %s", status)
	}
	fmt.Fprintln(w)
	if len(trials) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TRIAL\tSTATUS\tVAL ACC\tTEST ACC\tBYTES\tPARAMS\tMACS\tLATENCY\tPREDICTED\tREWARD\tTRAIN\tNOTE")
	for _, t := range trials {
		note := t.Worker
		if t.Error != "" {
			note = oneLine(t.Error, 60)
		}
		if t.Metrics == nil {
			fmt.Fprintf(tw, "%s\t%s\t-\t-\t-\t-\t-\t-\t-\t-\t-\t%s\n", t.Name(), t.Status, note)
			continue
		}
		m := t.Metrics
		latency, predicted := "-", "-"
		if l, ok := studyLatency(t, st.DeviceFingerprint); ok {
			latency = fmtLatency(l.Stats.Median)
			if l.Predicted > 0 {
				predicted = fmt.Sprintf("%s (%+.0f%%)", fmtLatency(l.Predicted), 100*l.PredictionError())
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\t%.4f\t%.1fs\t%s\n", t.Name(), t.Status,
			fmtPercent(m.ValAccuracy, true), fmtPercent(m.TestAccuracy, m.HasTest), fmtBytes(m.CompressedBytes),
			m.Params, m.MACs, latency, predicted, m.Reward, m.TrainSeconds, note)
	}
	return tw.Flush()
}

// studyLatency picks the trial's batch-1 latency on the study's device,
// else its first latency.
func studyLatency(t store.Trial, fingerprint string) (store.Latency, bool) {
	for _, l := range t.Latencies {
		if l.Device.Fingerprint == fingerprint && l.Batch == 1 {
			return l, true
		}
	}
	if len(t.Latencies) > 0 {
		return t.Latencies[0], true
	}
	return store.Latency{}, false
}

// oneLine flattens s to one line of at most n runes.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
