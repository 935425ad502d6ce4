package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"hwnas/accel"
	"hwnas/nas"
	"hwnas/search"
	"hwnas/store"
)

type measureOptions struct {
	Study, DB, Device  string
	Runtime, Reference string
	Threads, Batch     int
	Rounds             int
	Group              int
	Follow             bool
	Lease, Poll        time.Duration
	JSON               bool
	rounds             accel.RoundsOptions // tests shorten it
	stderr             io.Writer
}

// measureReport is what `hwnas measure --json` prints.
type measureReport struct {
	search.MeasureSummary
	Load   string               `json:"loadavg"`
	Trials []search.Measurement `json:"trials"`
}

func init() {
	opts := measureOptions{}
	cmd := &cobra.Command{
		Use:   "measure",
		Short: "Re-measure a study's finished trials on another device",
		Long: `measure loads every finished trial of a study from its stored weights (no
retraining), measures its batch latency on the device, and records it beside
the trial's other latencies, so that hwnas best --device NAME can answer for
that device too. --runtime onnxruntime times each trial's ONNX export in
onnxruntime instead of hwnas's kernels, recorded as a latency of its own
(hwnas best --runtime onnxruntime).

Trials are measured in groups (--group, 64) in interleaved rounds beside a reference
model (--reference, default the study's: lenet5), so that a machine busier
for a while slows them all alike: each latency is a low quantile of the
rounds' fastest runs, recorded with its 95% interval and its ratio to the
reference. When the reference runs more than 15% slower than its usual figure
on the device, the group is measured again (up to 3 times); a figure still
disturbed is flagged, and does not replace a trial's earlier undisturbed one.
When the trials run more than 6% slower than their earlier figures in the
median (a slowdown the reference does not show: here small compute-bound
models once slowed by 13–16% while LeNet-5 slowed by 3%), the group is flagged
disturbed too. A trial whose figure moved more than 5% from its earlier undisturbed one
while the others did not is measured once more and keeps the lower figure.
The device's per-op table is updated, and the predictor's estimate (made
before this measurement) is printed beside each trial with a summary of its
errors.

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
	f.StringVar(&opts.Runtime, "runtime", store.RuntimeHwnas, runtimeFlagHelp)
	f.StringVar(&opts.Reference, "reference", "", "built-in model measured beside the trials (default: the study's, lenet5)")
	f.IntVar(&opts.Rounds, "rounds", 0, "interleaved rounds per group (0: 81)")
	f.IntVar(&opts.Group, "group", 64, "trials measured in the same interleaved rounds (1: each trial alone beside the reference, as a search measures it; 0: 64)")
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
	if opts.Group < 0 {
		return badInputf("--group %d must not be negative", opts.Group)
	}
	if opts.Rounds < 0 {
		return badInputf("--rounds %d must not be negative", opts.Rounds)
	}
	rt, err := checkRuntimeFlag(opts.Runtime)
	if err != nil {
		return err
	}
	if opts.Reference != "" {
		if _, err := nas.BuiltinArchFor(opts.Reference, nas.DataShape{}); err != nil {
			return badInputf("--reference: %v", err)
		}
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
		if errors.Is(err, store.ErrOlderSchema) {
			break // measuring writes: opening for writing migrates it
		}
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
	ro := opts.rounds
	if opts.Rounds > 0 {
		ro.Rounds = opts.Rounds
	}
	mo := search.MeasureOptions{Device: opts.Device, Threads: opts.Threads, Batch: opts.Batch, Runtime: rt, Reference: opts.Reference, Rounds: ro, Group: opts.Group}
	each := func(m search.Measurement) {
		rows = append(rows, m)
		if opts.Follow && opts.JSON {
			json.NewEncoder(w).Encode(m)
			return
		}
		if !opts.JSON {
			fmt.Fprintln(w, measurementLine(opts.Study, m))
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
	sum, err := search.MeasureStudy(ctx, db, opts.Study, mo, each)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return badInput(err)
		}
		return err
	}
	rep := measureReport{MeasureSummary: *sum, Load: loadAvg(), Trials: rows}
	if rep.Trials == nil {
		rep.Trials = []search.Measurement{}
	}
	if opts.JSON {
		return writeJSON(w, rep)
	}
	refs := make([]string, len(sum.References))
	for i, r := range sum.References {
		refs[i] = fmtStats(r)
	}
	fmt.Fprintf(w, "study %s on %s, %s: %d measured (%d measured again after moving > 5%%, %d disturbed, %d kept their earlier figure), %d failed; reference %s: %s (usual %s, the ratios' base); load %s\n",
		sum.Study, deviceColumn(sum.Device), sum.Runtime, sum.Measured, sum.Remeasured, sum.Disturbed, sum.Kept, sum.Failed, sum.Reference,
		strings.Join(refs, ", "), fmtLatency(time.Duration(sum.UsualNs)), rep.Load)
	if sum.Slowdown > 0 {
		fmt.Fprintf(w, "the trials ran %.0f%% slower than their earlier figures (median): the machine was slower, measured disturbed\n", 100*sum.Slowdown)
	}
	if sum.Runtime == store.RuntimeHwnas {
		fmt.Fprintf(w, "predictor on %s, from the table as it stood: %s\n", sum.Device.Name, sum.Predictor)
		if sum.HeldOut.Trials > 0 {
			fmt.Fprintf(w, "predictor after the study's %d trials, each predicted from the other trials' op times: %s\n", sum.HeldOut.Trials, sum.HeldOut)
		}
	}
	return nil
}

// measurementLine is one trial's measurement for the text output.
func measurementLine(study string, m search.Measurement) string {
	if m.Error != "" {
		return fmt.Sprintf("trial %s  error: %s", store.TrialName(study, m.Trial), m.Error)
	}
	l := store.Latency{Stats: m.Latency, Ratio: m.Ratio, Reference: m.Reference, Disturbed: m.Disturbed}
	s := fmt.Sprintf("trial %s  %s %s batch %d  latency %s  %s", store.TrialName(study, m.Trial), m.Device, m.Runtime, m.Batch, fmtFigure(l), fmtRatio(l))
	if m.PredictedNs > 0 {
		s += fmt.Sprintf("  predicted %v (%+.0f%%)", roundDur(time.Duration(m.PredictedNs)), 100*m.PredictionError())
	}
	if m.Remeasured {
		s += "  measured again"
	}
	if m.Attempts > 1 {
		s += fmt.Sprintf("  %d attempts", m.Attempts)
	}
	if m.Disturbed {
		s += "  disturbed"
		if m.Kept {
			s += ": earlier figure kept"
		}
	}
	if m.Reward != 0 {
		s += fmt.Sprintf("  reward %.4f", m.Reward)
	}
	return s
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
