package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"

	"github.com/spf13/cobra"

	"hwnas/accel"
	"hwnas/nas"
)

// benchModelOptions configure `hwnas bench model`.
type benchModelOptions struct {
	Arch    string
	Weights string
	Batch   int
	Threads int
	Device  string
	Input   string // --input C×H×W for a built-in (default: its own)
	Classes int
	JSON    bool
	Latency accel.LatencyOptions // tests shorten it
}

// benchModelReport is the --json output of `hwnas bench model`.
type benchModelReport struct {
	Arch       string             `json:"arch"`
	Params     int64              `json:"params"`
	MACs       int64              `json:"macs"`
	Ops        int                `json:"ops"` // plan ops after folding and fusion
	Batch      int                `json:"batch"`
	Threads    int                `json:"threads"`
	Device     accel.Device       `json:"device"`
	Weights    string             `json:"weights,omitempty"`
	MedianUS   float64            `json:"median_us"`
	P90US      float64            `json:"p90_us"`
	PerImageUS float64            `json:"per_image_us"`
	Stats      accel.LatencyStats `json:"stats"`
}

func init() {
	opts := benchModelOptions{}
	cmd := &cobra.Command{
		Use:   "model",
		Short: "Measure a model's inference latency on a device",
		Long: `Lowers an architecture (with --weights, trained weights; otherwise seeded
random ones: latency does not depend on values) to an inference plan with
batch norm folded and activations fused, compiles it for the device and
batch size, and prints the median and p90 latency of a batch over repeated
runs (warm-up first), and per image when the batch is larger than one.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBenchModel(cmd.Context(), cmd.OutOrStdout(), opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Arch, "arch", "lenet5", "architecture: a built-in name ("+joinNames()+") or a JSON file")
	f.StringVar(&opts.Weights, "weights", "", "weights file saved by `hwnas train --save` (its FILE.arch.json gives the architecture as trained)")
	f.StringVar(&opts.Input, "input", "", "input shape C×H×W a built-in --arch is built for (default: 1×28×28 for the LeNets, 3×32×32 for the others)")
	f.IntVar(&opts.Classes, "classes", 10, "classes a built-in --arch is built for")
	f.IntVar(&opts.Batch, "batch", 1, "images per run")
	f.IntVar(&opts.Threads, "threads", 1, "kernel threads (0: all cores)")
	f.StringVar(&opts.Device, "device", "cpu", "backend to measure on (cpu, cuda:0, …)")
	f.BoolVar(&opts.JSON, "json", false, "print JSON")
	benchCmd.AddCommand(cmd)
}

// runBenchModel compiles the model for the device and measures it.
func runBenchModel(ctx context.Context, w io.Writer, opts benchModelOptions) error {
	if opts.Batch <= 0 {
		return badInputf("--batch %d: must be positive", opts.Batch)
	}
	shape, err := parseInputShape(opts.Input, opts.Classes)
	if err != nil {
		return err
	}
	var arch *nas.Arch
	if opts.Weights != "" {
		arch, err = resolveSavedArch(opts.Arch, opts.Weights, shape)
	} else if arch, err = nas.ResolveArchFor(opts.Arch, shape); err != nil {
		err = badInput(err)
	}
	if err != nil {
		return err
	}
	m, err := nas.NewModel(arch, 1)
	if err != nil {
		return badInput(err)
	}
	if opts.Weights != "" {
		if err := nas.LoadWeights(opts.Weights, m); err != nil {
			return badInput(err)
		}
	}
	plan, err := nas.Lower(m)
	if err != nil {
		return err
	}
	b, err := accel.Open(opts.Device, accel.Options{Threads: opts.Threads})
	if err != nil {
		return badInput(err)
	}
	defer b.Close()
	prog, err := b.Compile(plan, opts.Batch)
	if err != nil {
		return err
	}
	defer prog.Close()
	r := rand.New(rand.NewPCG(1, 2))
	in := make([]float32, opts.Batch*prog.InputSize())
	for i := range in {
		in[i] = r.Float32()
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	st, err := accel.MeasureProgram(prog, in, opts.Latency)
	if err != nil {
		return err
	}
	rep := benchModelReport{Arch: arch.Name, Params: m.NumParams(), MACs: m.Graph.MACs(), Ops: len(plan.Ops),
		Batch: opts.Batch, Threads: b.Device().Cores, Device: b.Device(), Weights: opts.Weights, Stats: st,
		MedianUS: float64(st.Median.Nanoseconds()) / 1e3, P90US: float64(st.P90.Nanoseconds()) / 1e3}
	rep.PerImageUS = rep.MedianUS / float64(opts.Batch)
	if opts.JSON {
		return writeJSON(w, rep)
	}
	threads := "threads"
	if rep.Threads == 1 {
		threads = "thread"
	}
	fmt.Fprintf(w, "%s on %s (%s), batch %d, %d %s: median %.1f µs, p90 %.1f µs (%d runs)",
		arch.Name, b.Device().Name, b.Name(), opts.Batch, rep.Threads, threads, rep.MedianUS, rep.P90US, st.Runs)
	if opts.Batch > 1 {
		fmt.Fprintf(w, "; %.2f µs per image", rep.PerImageUS)
	}
	_, err = fmt.Fprintln(w)
	return err
}
