//go:build cgo

package main

import (
	"context"
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
are printed (below 1: hwnas is faster), with hwnas's time per op.`,
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
	benchCmd.AddCommand(cmd)
}

// runBenchOrt measures the model in both runtimes and prints the race.
func runBenchOrt(ctx context.Context, w io.Writer, opts benchOrtOptions) error {
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
	var src *exportSource
	var err error
	if opts.Weights != "" {
		if src, err = exportFromFiles(exportOptions{Arch: opts.Arch, Weights: opts.Weights}); err != nil {
			return err
		}
	} else {
		a, err := nas.ResolveArch(opts.Arch)
		if err != nil {
			return badInputf("--arch: %v", err)
		}
		src = &exportSource{figures: map[string]float64{}}
		if src.model, err = nas.NewModel(a, 1); err != nil {
			return badInputf("--arch %s: %v", opts.Arch, err)
		}
	}
	if opts.Recipe != "" {
		if err := src.withRecipe(ctx, exportOptions{Recipe: opts.Recipe, Data: opts.Data}); err != nil {
			return err
		}
	}
	m := src.model
	rep := benchOrtReport{Arch: m.Arch.Name, Params: m.NumParams(), MACs: m.Graph.MACs(), Threads: opts.Threads,
		Rounds: opts.Rounds, Weights: opts.Weights, Recipe: string(src.recipe), Notes: []string{}}
	plan, err := nas.Lower(m)
	if err != nil {
		return badInputf("%s: cannot lower: %v", m.Arch.Name, err)
	}
	rep.PlanOps = len(plan.Ops)
	model, err := onnx.Export(plan, onnx.Metadata{ProducerVersion: version})
	if err != nil {
		return badInput(err)
	}
	rep.OnnxBytes = len(model)
	rep.Notes = append(rep.Notes, onnx.Notes(plan, onnx.Metadata{Uncarried: src.uncarried})...)
	for _, op := range plan.Ops {
		if op.Quant != nil {
			rep.Int8Ops++
		}
	}
	backend, err := accel.Open("cpu", accel.Options{Threads: opts.Threads})
	if err != nil {
		return err
	}
	defer backend.Close()
	rep.Device = backend.Device()
	if err := onnx.InitRuntime(); err != nil {
		return err
	}
	rep.OrtVersion = onnx.RuntimeVersion()
	for _, batch := range opts.Batches {
		if err := ctx.Err(); err != nil {
			return err
		}
		row, err := raceBatch(backend, plan, model, batch, opts)
		if err != nil {
			return err
		}
		rep.Rows = append(rep.Rows, row)
	}
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
func raceBatch(backend accel.Backend, plan *accel.Plan, model []byte, batch int, opts benchOrtOptions) (benchOrtRow, error) {
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
