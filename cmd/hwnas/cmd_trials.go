package main

import (
	"context"
	"fmt"
	"io"
	"slices"
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
in each runtime measured (hwnas's kernels, and onnxruntime once hwnas measure
--runtime onnxruntime or a search with --runtime onnxruntime measured it)
with its 95% interval and its ratio to the reference model measured beside
it, the predictor's estimate, reward, and the error of failed trials.
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
	rts := studyRuntimes(trials, st.DeviceFingerprint)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	head := "TRIAL\tSTATUS\tVAL ACC\tTEST ACC\tBYTES\tPARAMS\tMACS"
	for _, rt := range rts {
		head += fmt.Sprintf("\tLATENCY (%s)\tRATIO (%s)", rt, rt)
	}
	fmt.Fprintln(tw, head+"\tPREDICTED\tREWARD\tTRAIN\tNOTE")
	for _, t := range trials {
		note := t.Worker
		if t.Error != "" {
			note = oneLine(t.Error, 60)
		}
		if t.Metrics == nil {
			fmt.Fprintf(tw, "%s\t%s\t-\t-\t-\t-\t-\t%s-\t-\t-\t%s\n", t.Name(), t.Status, strings.Repeat("-\t-\t", len(rts)), note)
			continue
		}
		m := t.Metrics
		cols, predicted := "", "-"
		for _, rt := range rts {
			l, ok := studyLatency(t, st.DeviceFingerprint, rt)
			if !ok {
				cols += "\t-\t-"
				continue
			}
			cols += "\t" + fmtFigure(l) + "\t" + fmtRatio(l)
			if l.Predicted > 0 {
				predicted = fmt.Sprintf("%s (%+.0f%%)", fmtLatency(l.Predicted), 100*l.PredictionError())
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d%s\t%s\t%.4f\t%.1fs\t%s\n", t.Name(), t.Status,
			fmtPercent(m.ValAccuracy, true), fmtPercent(m.TestAccuracy, m.HasTest), fmtBytes(m.CompressedBytes),
			m.Params, m.MACs, cols, predicted, m.Reward, m.TrainSeconds, note)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, "latency: a low quantile of interleaved rounds' fastest runs ± its 95% interval; ! measured disturbed; ratio: to the reference measured in the same rounds")
	return err
}

// studyRuntimes lists the runtimes the study's trials were measured in on
// its device at batch 1, hwnas first.
func studyRuntimes(trials []store.Trial, fingerprint string) []string {
	rts := []string{store.RuntimeHwnas}
	for _, t := range trials {
		for _, l := range t.Latencies {
			if l.Device.Fingerprint == fingerprint && l.Batch == 1 && !slices.Contains(rts, l.RuntimeName()) {
				rts = append(rts, l.RuntimeName())
			}
		}
	}
	return rts
}

// studyLatency picks the trial's batch-1 latency in runtime rt on the
// study's device, else (for hwnas) its first latency in rt.
func studyLatency(t store.Trial, fingerprint, rt string) (store.Latency, bool) {
	for _, l := range t.Latencies {
		if l.Device.Fingerprint == fingerprint && l.Batch == 1 && l.RuntimeName() == rt {
			return l, true
		}
	}
	for _, l := range t.Latencies {
		if l.RuntimeName() == rt && rt == store.RuntimeHwnas {
			return l, true
		}
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
