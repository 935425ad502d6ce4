//go:build cgo

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/spf13/cobra"

	"hwnas/accel"
	"hwnas/nas"
	"hwnas/nas/onnx"
	"hwnas/store"
)

// benchOrtOptions configure `hwnas bench ort`.
type benchOrtOptions struct {
	Arch    string
	Weights string
	Recipe  string
	Data    string
	Batches []int
	Threads int
	Rounds  int
	JSON    bool
	// DB and Study race every finished trial of a study (its stored,
	// compressed model) instead of --arch.
	DB      string
	Study   string
	Latency accel.LatencyOptions // tests shorten it
}

// benchOrtOp is one plan op's time in both runtimes: hwnas's median over
// runs and its share of the sum of hwnas's op medians, and the sum of the
// medians of the onnxruntime nodes exported from (or fused into) the op,
// from onnxruntime's profiler (1 µs resolution).
type benchOrtOp struct {
	Name     string  `json:"name"`
	Kind     string  `json:"kind"`
	MedianUS float64 `json:"median_us"`
	Share    float64 `json:"share"`
	OrtUS    float64 `json:"onnxruntime_us"`
	index    int     // in the plan
}

// benchOrtRow is one batch size of `hwnas bench ort`.
type benchOrtRow struct {
	Batch int `json:"batch"`
	// HwnasUS and OrtUS are medians over the rounds of each round's median
	// latency of one batch; Ratio = HwnasUS/OrtUS (below 1: hwnas is faster).
	HwnasUS         float64 `json:"hwnas_us"`
	OrtUS           float64 `json:"onnxruntime_us"`
	Ratio           float64 `json:"ratio"`
	HwnasPerImageUS float64 `json:"hwnas_per_image_us"`
	OrtPerImageUS   float64 `json:"onnxruntime_per_image_us"`
	// RoundRatios are the ratios of each round, to show the noise.
	RoundRatios []float64 `json:"round_ratios"`
	// Ops are the times per plan op, largest hwnas time first.
	Ops []benchOrtOp `json:"ops"`
	// OrtOtherUS is onnxruntime's time in nodes of its own (layout
	// reorders and transposes) that belong to no plan op.
	OrtOtherUS float64 `json:"onnxruntime_other_us"`
}

// benchOrtReport is the --json output of `hwnas bench ort`.
type benchOrtReport struct {
	Arch       string        `json:"arch"`
	Params     int64         `json:"params"`
	MACs       int64         `json:"macs"`
	PlanOps    int           `json:"plan_ops"`
	Threads    int           `json:"threads"`
	Device     accel.Device  `json:"device"`
	OrtVersion string        `json:"onnxruntime_version"`
	OnnxBytes  int           `json:"onnx_bytes"`
	Rounds     int           `json:"rounds"`
	Rows       []benchOrtRow `json:"rows"`
	Notes      []string      `json:"notes"`
	Weights    string        `json:"weights,omitempty"`
	Recipe     string        `json:"recipe,omitempty"`
	Int8Ops    int           `json:"int8_ops"`
}

func init() {
	opts := benchOrtOptions{}
	cmd := &cobra.Command{
		Use:   "ort",
		Short: "Race hwnas's CPU backend against onnxruntime on the same model",
		Long: `Lowers an architecture (trained --weights, or seeded random ones: latency does
not depend on values; --recipe compresses it first, e.g. quant=int8) to
hwnas's inference plan, compiles it on the cpu
backend and exports the same plan to ONNX for onnxruntime (loaded in this
process; intra-op threads = --threads, sequential execution, all graph
optimisations on). For each batch size both run on the same input in
alternating rounds; the median latencies and their ratio hwnas/onnxruntime
are printed (below 1: hwnas is faster), with both runtimes' time per op.

With --db and --study it races every finished trial of a study instead,
each as the search stored it (compressed), and prints each trial's ratios
and their distribution per batch size (median, p90, worst, how many above
1.3×): how hwnas's kernels fare on the models a search produces.`,
		Example: `  hwnas bench ort --arch lenet5 --rounds 9
  hwnas bench ort --arch lenet5 --recipe quant=int8 --data data/mnist
  hwnas bench ort --db hwnas.db --study quick`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBenchOrt(cmd.Context(), cmd.OutOrStdout(), opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Arch, "arch", "lenet5", "architecture: a built-in name ("+joinNames()+") or a JSON file")
	f.StringVar(&opts.Weights, "weights", "", "weights: a plain file (hwnas train --save) or a compressed one (hwnas compress --out)")
	f.StringVar(&opts.Recipe, "recipe", "", "compression recipe applied (without fine-tuning) before the race, as hwnas export does")
	f.StringVar(&opts.Data, "data", "data/mnist", "IDX data set that calibrates int8 ranges when --recipe is applied")
	f.IntSliceVar(&opts.Batches, "batch", []int{1, 64}, "batch sizes (comma-separated)")
	f.IntVar(&opts.Threads, "threads", 1, "threads for both runtimes")
	f.IntVar(&opts.Rounds, "rounds", 3, "alternating measurement rounds per batch size")
	f.BoolVar(&opts.JSON, "json", false, "print JSON")
	f.StringVar(&opts.DB, "db", "", "race the finished trials of --study in this database instead of --arch")
	f.StringVar(&opts.Study, "study", "", "the study whose trials --db races")
	benchCmd.AddCommand(cmd)
}

// runBenchOrt measures the model (or, with --db, each trial of a study)
// in both runtimes and prints the race.
func runBenchOrt(ctx context.Context, w io.Writer, opts benchOrtOptions) error {
	if err := checkBenchOrtOptions(opts); err != nil {
		return err
	}
	if opts.DB != "" || opts.Study != "" {
		return runBenchOrtStudy(ctx, w, opts)
	}
	src, err := benchOrtSource(ctx, opts)
	if err != nil {
		return err
	}
	backend, err := accel.Open("cpu", accel.Options{Threads: opts.Threads})
	if err != nil {
		return err
	}
	defer backend.Close()
	rep, err := raceModel(ctx, backend, src, opts, true)
	if err != nil {
		return err
	}
	rep.Weights = opts.Weights
	if opts.JSON {
		return writeJSON(w, rep)
	}
	fmt.Fprintf(w, "%s (%d parameters, %d plan ops, %d int8) on %s, %d thread(s); onnxruntime %s\n",
		rep.Arch, rep.Params, rep.PlanOps, rep.Int8Ops, rep.Device.Name, rep.Threads, rep.OrtVersion)
	for _, r := range rep.Rows {
		fmt.Fprintf(w, "batch %4d: hwnas %9.1f µs  onnxruntime %9.1f µs  ratio %.2f×  (per image %.2f / %.2f µs; rounds %s)\n",
			r.Batch, r.HwnasUS, r.OrtUS, r.Ratio, r.HwnasPerImageUS, r.OrtPerImageUS, fmtRatios(r.RoundRatios))
		fmt.Fprintf(w, "            %-12s %-14s %10s %6s %16s\n", "op", "kind", "hwnas µs", "share", "onnxruntime µs")
		for _, op := range r.Ops {
			fmt.Fprintf(w, "            %-12s %-14s %10.1f %5.0f%% %16.1f\n", op.Name, op.Kind, op.MedianUS, 100*op.Share, op.OrtUS)
		}
		if r.OrtOtherUS > 0 {
			fmt.Fprintf(w, "            %-12s %-14s %10s %6s %16.1f\n", "(layout)", "onnxruntime", "-", "", r.OrtOtherUS)
		}
	}
	for _, n := range rep.Notes {
		fmt.Fprintln(w, "note:", n)
	}
	return nil
}

// checkBenchOrtOptions validates the flags both modes share.
func checkBenchOrtOptions(opts benchOrtOptions) error {
	if len(opts.Batches) == 0 {
		return badInputf("--batch: give at least one batch size")
	}
	for _, b := range opts.Batches {
		if b <= 0 {
			return badInputf("--batch %d: must be positive", b)
		}
	}
	if opts.Threads <= 0 {
		return badInputf("--threads %d: must be positive (both runtimes get the same count)", opts.Threads)
	}
	if opts.Rounds <= 0 {
		return badInputf("--rounds %d: must be positive", opts.Rounds)
	}
	if (opts.DB == "") != (opts.Study == "") {
		return badInputf("--db and --study go together: both are needed to race a study's trials")
	}
	if opts.DB != "" && (opts.Weights != "" || opts.Recipe != "") {
		return badInputf("--db races the trials as stored: --weights and --recipe do not apply")
	}
	return nil
}

// benchOrtSource loads the model --arch, --weights and --recipe describe.
func benchOrtSource(ctx context.Context, opts benchOrtOptions) (*exportSource, error) {
	var src *exportSource
	var err error
	if opts.Weights != "" {
		if src, err = exportFromFiles(exportOptions{Arch: opts.Arch, Weights: opts.Weights}); err != nil {
			return nil, err
		}
	} else {
		a, err := nas.ResolveArch(opts.Arch)
		if err != nil {
			return nil, badInputf("--arch: %v", err)
		}
		src = &exportSource{figures: map[string]float64{}}
		if src.model, err = nas.NewModel(a, 1); err != nil {
			return nil, badInputf("--arch %s: %v", opts.Arch, err)
		}
	}
	if opts.Recipe != "" {
		if err := src.withRecipe(ctx, exportOptions{Recipe: opts.Recipe, Data: opts.Data}); err != nil {
			return nil, err
		}
	}
	return src, nil
}

// raceModel lowers src's model, exports it and races it at every batch
// size of opts; perOp adds both runtimes' time per op to each row.
func raceModel(ctx context.Context, backend accel.Backend, src *exportSource, opts benchOrtOptions, perOp bool) (benchOrtReport, error) {
	m := src.model
	rep := benchOrtReport{Arch: m.Arch.Name, Params: m.NumParams(), MACs: m.Graph.MACs(), Threads: opts.Threads,
		Rounds: opts.Rounds, Recipe: string(src.recipe), Notes: []string{}, Device: backend.Device()}
	plan, err := nas.Lower(m)
	if err != nil {
		return rep, badInputf("%s: cannot lower: %v", m.Arch.Name, err)
	}
	rep.PlanOps = len(plan.Ops)
	model, err := onnx.Export(plan, onnx.Metadata{ProducerVersion: version})
	if err != nil {
		return rep, badInput(err)
	}
	rep.OnnxBytes = len(model)
	rep.Notes = append(rep.Notes, onnx.Notes(plan, onnx.Metadata{Uncarried: src.uncarried})...)
	for _, op := range plan.Ops {
		if op.Quant != nil {
			rep.Int8Ops++
		}
	}
	if err := onnx.InitRuntime(); err != nil {
		return rep, err
	}
	rep.OrtVersion = onnx.RuntimeVersion()
	for _, batch := range opts.Batches {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		row, err := raceBatch(backend, plan, model, batch, opts, perOp)
		if err != nil {
			return rep, err
		}
		rep.Rows = append(rep.Rows, row)
	}
	return rep, nil
}

func fmtRatios(r []float64) string {
	s := ""
	for i, v := range r {
		if i > 0 {
			s += " "
		}
		s += fmt.Sprintf("%.2f", v)
	}
	return s
}

// raceBatch measures one batch size: hwnas's program and an onnxruntime
// session on the same input, alternating for opts.Rounds rounds, then
// hwnas's per-op times.
func raceBatch(backend accel.Backend, plan *accel.Plan, model []byte, batch int, opts benchOrtOptions, perOp bool) (benchOrtRow, error) {
	row := benchOrtRow{Batch: batch}
	prog, err := backend.Compile(plan, batch)
	if err != nil {
		return row, err
	}
	defer prog.Close()
	sess, err := onnx.NewSession(model, batch, onnx.SessionOptions{Threads: opts.Threads})
	if err != nil {
		return row, err
	}
	defer sess.Close()
	if prog.InputSize() != sess.InputSize() || prog.OutputSize() != sess.OutputSize() {
		return row, fmt.Errorf("hwnas program (%d→%d) and onnxruntime session (%d→%d) disagree on sizes",
			prog.InputSize(), prog.OutputSize(), sess.InputSize(), sess.OutputSize())
	}
	r := rand.New(rand.NewPCG(1, 2))
	in := make([]float32, batch*prog.InputSize())
	for i := range in {
		in[i] = r.Float32()
	}
	var hw, rt []time.Duration
	for i := 0; i < opts.Rounds; i++ {
		h, err := accel.MeasureProgram(prog, in, opts.Latency)
		if err != nil {
			return row, fmt.Errorf("hwnas batch %d: %w", batch, err)
		}
		o, err := accel.MeasureProgram(sess, in, opts.Latency)
		if err != nil {
			return row, fmt.Errorf("onnxruntime batch %d: %w", batch, err)
		}
		hw, rt = append(hw, h.Median), append(rt, o.Median)
		row.RoundRatios = append(row.RoundRatios, float64(h.Median)/float64(o.Median))
	}
	us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
	row.HwnasUS, row.OrtUS = us(medianDuration(hw)), us(medianDuration(rt))
	row.Ratio = row.HwnasUS / row.OrtUS
	row.HwnasPerImageUS, row.OrtPerImageUS = row.HwnasUS/float64(batch), row.OrtUS/float64(batch)
	if !perOp {
		return row, nil
	}
	if row.Ops, err = opTimes(prog, plan, in, opts.Latency); err != nil {
		return row, err
	}
	ortOps, other, err := ortOpTimes(plan, model, in, batch, opts)
	if err != nil {
		return row, err
	}
	for i := range row.Ops {
		row.Ops[i].OrtUS = ortOps[row.Ops[i].index]
	}
	row.OrtOtherUS = other
	return row, nil
}

// ortOpTimes profiles onnxruntime on the model (a session of its own, as
// profiling slows it a little) and returns, per plan op, the sum over the
// op's nodes of their median kernel time in µs, and the same for the nodes
// onnxruntime added.
func ortOpTimes(plan *accel.Plan, model []byte, in []float32, batch int, opts benchOrtOptions) ([]float64, float64, error) {
	dir, err := os.MkdirTemp("", "hwnas-ort-profile")
	if err != nil {
		return nil, 0, err
	}
	defer os.RemoveAll(dir)
	prefix := filepath.Join(dir, "profile")
	s, err := onnx.NewSession(model, batch, onnx.SessionOptions{Threads: opts.Threads, ProfilePrefix: prefix})
	if err != nil {
		return nil, 0, err
	}
	out := make([]float32, batch*s.OutputSize())
	for r := 0; r < max(opts.Latency.MinRuns, 30)+3; r++ {
		if err := s.Run(in, out); err != nil {
			s.Close()
			return nil, 0, err
		}
	}
	if err := s.Close(); err != nil {
		return nil, 0, err
	}
	nodes, err := onnx.ReadProfile(prefix)
	if err != nil {
		return nil, 0, err
	}
	perOp := make([]float64, len(plan.Ops))
	other := 0.0
	for _, n := range nodes {
		us := float64(medianDuration(n.Times).Nanoseconds()) / 1e3
		if i := n.PlanOp(plan); i >= 0 {
			perOp[i] += us
		} else {
			other += us
		}
	}
	return perOp, other, nil
}

// opTimes returns the median time of each plan op over repeated runs,
// largest first, when the program can time its ops (nil otherwise).
func opTimes(prog accel.Program, plan *accel.Plan, in []float32, lo accel.LatencyOptions) ([]benchOrtOp, error) {
	tp, ok := prog.(accel.OpTimedProgram)
	if !ok {
		return nil, nil
	}
	runs := max(lo.MinRuns, 30)
	out := make([]float32, prog.Batch()*prog.OutputSize())
	perOp := make([]time.Duration, len(plan.Ops))
	samples := make([][]time.Duration, len(plan.Ops))
	for r := 0; r < runs+3; r++ {
		if err := tp.RunOpTimed(in, out, perOp); err != nil {
			return nil, err
		}
		if r < 3 { // warm-up
			continue
		}
		for i, d := range perOp {
			samples[i] = append(samples[i], d)
		}
	}
	ops := make([]benchOrtOp, len(plan.Ops))
	total := 0.0
	for i := range ops {
		ops[i] = benchOrtOp{index: i, Name: plan.Ops[i].Name, Kind: string(plan.Ops[i].Kind), MedianUS: float64(medianDuration(samples[i]).Nanoseconds()) / 1e3}
		total += ops[i].MedianUS
	}
	for i := range ops {
		if total > 0 {
			ops[i].Share = ops[i].MedianUS / total
		}
	}
	sort.SliceStable(ops, func(i, j int) bool { return ops[i].MedianUS > ops[j].MedianUS })
	return ops, nil
}

// benchOrtTrial is one trial's race in `hwnas bench ort --db`.
type benchOrtTrial struct {
	Trial   string        `json:"trial"`    // its name, STUDY/N (store.TrialName)
	Number  int           `json:"number"`   // within the study
	TrialID int64         `json:"trial_id"` // database id
	Arch    string        `json:"arch"`
	Params  int64         `json:"params"`
	Int8Ops int           `json:"int8_ops"`
	Rows    []benchOrtRow `json:"rows"`
}

// benchOrtDist is the distribution of the trials' ratios at one batch size.
type benchOrtDist struct {
	Batch  int     `json:"batch"`
	Trials int     `json:"trials"`
	Median float64 `json:"median_ratio"`
	P90    float64 `json:"p90_ratio"`
	Best   float64 `json:"best_ratio"`
	Worst  float64 `json:"worst_ratio"`
	// WorstNumber is the study number of the trial with the worst ratio.
	WorstNumber int `json:"worst_number"`
	// Above is how many trials exceed Limit (1.3×).
	Above int     `json:"above_limit"`
	Limit float64 `json:"limit"`
}

// benchOrtStudyReport is the --json output of `hwnas bench ort --db`.
type benchOrtStudyReport struct {
	DB         string          `json:"db"`
	Study      string          `json:"study"`
	Threads    int             `json:"threads"`
	Device     accel.Device    `json:"device"`
	OrtVersion string          `json:"onnxruntime_version"`
	Rounds     int             `json:"rounds"`
	Trials     []benchOrtTrial `json:"trials"`
	Dist       []benchOrtDist  `json:"distribution"`
}

// benchOrtLimit is the ratio above which a trial counts as an outlier in
// the distribution (the "no trial above 1.3×").
const benchOrtLimit = 1.3

// runBenchOrtStudy races every finished trial of opts.Study.
func runBenchOrtStudy(ctx context.Context, w io.Writer, opts benchOrtOptions) error {
	if _, err := os.Stat(opts.DB); err != nil {
		return badInputf("--db: %v", err)
	}
	db, err := store.OpenReadOnly(opts.DB)
	if err != nil {
		return badInputf("--db: %v", err)
	}
	defer db.Close()
	st, err := db.GetStudy(ctx, opts.Study)
	if errors.Is(err, store.ErrNotFound) {
		return badInputf("--study %q: no such study in %s", opts.Study, opts.DB)
	}
	if err != nil {
		return err
	}
	trials, err := db.ListTrials(ctx, st.ID, store.TrialFilter{Status: store.Done})
	if err != nil {
		return err
	}
	if len(trials) == 0 {
		return badInputf("study %q in %s has no finished trials to race", opts.Study, opts.DB)
	}
	backend, err := accel.Open("cpu", accel.Options{Threads: opts.Threads})
	if err != nil {
		return err
	}
	defer backend.Close()
	if err := onnx.InitRuntime(); err != nil {
		return err
	}
	rep := benchOrtStudyReport{DB: opts.DB, Study: opts.Study, Threads: opts.Threads, Device: backend.Device(),
		OrtVersion: onnx.RuntimeVersion(), Rounds: opts.Rounds}
	bar := stderrBar(len(trials), "racing trials of "+opts.Study)
	for _, tr := range trials {
		src, err := trialSource(ctx, db, tr)
		if err != nil {
			return err
		}
		r, err := raceModel(ctx, backend, src, opts, false)
		if err != nil {
			return fmt.Errorf("trial %s: %w", tr.Name(), err)
		}
		rep.Trials = append(rep.Trials, benchOrtTrial{Trial: tr.Name(), Number: tr.Number, TrialID: tr.ID, Arch: r.Arch, Params: r.Params, Int8Ops: r.Int8Ops, Rows: r.Rows})
		_ = bar.Add(1)
	}
	_ = bar.Finish()
	for bi, batch := range opts.Batches {
		d := benchOrtDist{Batch: batch, Trials: len(rep.Trials), Limit: benchOrtLimit}
		ratios := make([]float64, len(rep.Trials))
		for i, t := range rep.Trials {
			ratios[i] = t.Rows[bi].Ratio
			if ratios[i] > d.Worst {
				d.Worst, d.WorstNumber = ratios[i], t.Number
			}
			if ratios[i] > benchOrtLimit {
				d.Above++
			}
		}
		sort.Float64s(ratios)
		d.Median, d.P90, d.Best = quantile(ratios, 0.5), quantile(ratios, 0.9), ratios[0]
		rep.Dist = append(rep.Dist, d)
	}
	if opts.JSON {
		return writeJSON(w, rep)
	}
	fmt.Fprintf(w, "study %q in %s: %d finished trials on %s, %d thread(s); onnxruntime %s; ratio = hwnas/onnxruntime (below 1: hwnas is faster)\n",
		rep.Study, rep.DB, len(rep.Trials), rep.Device.Name, rep.Threads, rep.OrtVersion)
	fmt.Fprintf(w, "%-6s %-8s %5s", "#", "params", "int8")
	for _, b := range opts.Batches {
		fmt.Fprintf(w, "  %22s", fmt.Sprintf("batch %d hwnas/ort µs", b))
	}
	fmt.Fprintln(w)
	for _, t := range rep.Trials {
		fmt.Fprintf(w, "%-6d %-8d %5d", t.Number, t.Params, t.Int8Ops)
		for _, r := range t.Rows {
			fmt.Fprintf(w, "  %22s", fmt.Sprintf("%.1f/%.1f %.2f×", r.HwnasUS, r.OrtUS, r.Ratio))
		}
		fmt.Fprintln(w)
	}
	for _, d := range rep.Dist {
		fmt.Fprintf(w, "batch %d: median %.2f×, p90 %.2f×, best %.2f×, worst %.2f× (#%d); %d of %d trials above %.1f×\n",
			d.Batch, d.Median, d.P90, d.Best, d.Worst, d.WorstNumber, d.Above, d.Trials, d.Limit)
	}
	return nil
}

// quantile returns the q-quantile of sorted s by linear interpolation.
func quantile(s []float64, q float64) float64 {
	if len(s) == 0 {
		return 0
	}
	x := q * float64(len(s)-1)
	i := int(x)
	if i+1 >= len(s) {
		return s[len(s)-1]
	}
	return s[i] + (x-float64(i))*(s[i+1]-s[i])
}
