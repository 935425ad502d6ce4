package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"hwnas/accel"
	"hwnas/internal/atomicfile"
	"hwnas/nas"
	"hwnas/nas/compress"
)

// compressOptions configure `hwnas compress`.
type compressOptions struct {
	Arch, Weights, Recipe, Data, Out string
	Resize, Normalize                string
	Epochs, PruneRounds, Subset      int
	LR                               float64
	Seed                             uint64
	Threads                          int
	JSON                             bool
	Latency                          accel.LatencyOptions // tests shorten it
	Log                              io.Writer            // step lines (stderr), nil for none
}

// compressReport is the row `hwnas compress` prints (and its --json).
type compressReport struct {
	Arch            string                 `json:"arch"`
	Recipe          string                 `json:"recipe"`
	ParamsBefore    int64                  `json:"params_before"`
	ParamsAfter     int64                  `json:"params_after"`
	NonZero         int64                  `json:"nonzero"`
	MACsBefore      int64                  `json:"macs_before"`
	MACsAfter       int64                  `json:"macs_after"`
	ParamsReduction float64                `json:"params_reduction"` // 1 − after/before
	MACsReduction   float64                `json:"macs_reduction"`
	DenseBytes      int64                  `json:"dense_bytes"`
	Bytes           int                    `json:"bytes"`
	Ratio           float64                `json:"ratio"`
	ValAccBefore    float64                `json:"val_accuracy_before"`
	ValAccAfter     float64                `json:"val_accuracy_after"`
	TestAccBefore   float64                `json:"test_accuracy_before"`
	TestAccAfter    float64                `json:"test_accuracy_after"`
	LatencyBeforeUS float64                `json:"latency_before_us"`
	LatencyAfterUS  float64                `json:"latency_after_us"`
	Speedup         float64                `json:"speedup"`
	Layers          []compress.LayerReport `json:"layers"`
	Stages          []compress.StageReport `json:"stages"`
	Notes           []string               `json:"notes,omitempty"` // what the recipe asked that was left alone
	Out             string                 `json:"out,omitempty"`
	OutArch         string                 `json:"out_arch,omitempty"`
	Seconds         float64                `json:"seconds"`
}

func init() {
	opts := compressOptions{}
	cmd := &cobra.Command{
		Use:   "compress",
		Short: "Compress a trained model with a recipe and report size, accuracy and latency",
		Long: `Applies a compression recipe to a trained model: channel pruning, low-rank,
gradual magnitude pruning, k-means weight sharing or quantization, each
followed by fine-tuning, then encodes the model (sparse gaps, codebooks,
Huffman coding, int8/fp16 tensors). It prints one row: parameters, the exact
compressed size in bytes (the length of the encoding) and the ratio to fp32,
validation and test accuracy before and after, and batch-1 CPU latency before
and after (int8 and sparse kernels where the model uses them).

A recipe is the short form (items joined by commas), JSON, or a file
holding either: prune=0.9 (unstructured), share=5bit (k-means sharing),
quant=int8|int4|int2|binary|fp16, channels=0.5[:l1|bn|taylor][:g4]
(structured pruning), lowrank=0.25 or lowrank=e0.9 (energy), huffman,
distill=TEACHER.hwnw[:T=4][:a=0.7][:arch=NAME]; LAYER.KEY=VALUE sets one
layer (LAYER.KEY=off switches a family off there). A ratio for every layer
leaves alone the layers whose width is fixed — the network's outputs (as
many as the data set's classes), layers feeding a residual add, a channel
shuffle or a grouped convolution — and says so; naming a layer insists.
The output file says what the model is (int8 weights, sparse weights,
codebooks); which kernels run it is decided by the backend on each device.`,
		Example: `  hwnas train --arch lenet5 --epochs 2 --save lenet5.hwnw
  hwnas compress --arch lenet5 --weights lenet5.hwnw --recipe prune=0.9,share=5bit,huffman          # Deep Compression
  hwnas compress --arch lenet5 --weights lenet5.hwnw --recipe channels=0.5:l1,quant=int8 --out lenet5-c.hwnc   # structured pruning + int8
  hwnas compress --arch lenet5 --weights lenet5.hwnw --recipe lowrank=0.25                          # truncated SVD at a quarter rank
  hwnas compress --arch lenet5 --weights lenet5.hwnw --recipe prune=0.5,distill=lenet5.hwnw:T=4:a=0.7   # the dense model as teacher
  hwnas compress --arch lenet5 --weights lenet5.hwnw --recipe conv1.prune=0.5,fc1.prune=0.9          # per-layer choices`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.Log = cmd.ErrOrStderr()
			return runCompress(cmd.Context(), cmd.OutOrStdout(), opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Arch, "arch", "", "architecture: a built-in name ("+joinNames()+", built for the data set's shape) or a JSON file; default: the FILE.arch.json hwnas train --save wrote beside --weights")
	f.StringVar(&opts.Weights, "weights", "", "trained weights (hwnas train --save)")
	f.StringVar(&opts.Recipe, "recipe", "", "compression recipe (short form, JSON, or a file)")
	f.StringVar(&opts.Data, "data", "data/mnist", dataFlagHelp)
	addDataFlags(f, &opts.Resize, &opts.Normalize)
	f.StringVar(&opts.Out, "out", "", "write the compressed model here (and its architecture to FILE.arch.json)")
	f.IntVar(&opts.Epochs, "epochs", 1, "fine-tuning epochs after each step")
	f.IntVar(&opts.PruneRounds, "prune-rounds", 3, "rounds of gradual pruning")
	f.IntVar(&opts.Subset, "subset", 0, "fine-tune on the first N training images only (0: all)")
	f.Float64Var(&opts.LR, "lr", 0.01, "fine-tuning learning rate")
	f.Uint64Var(&opts.Seed, "seed", 1, "shuffling seed")
	f.IntVar(&opts.Threads, "threads", 0, "kernel threads for fine-tuning (latency is measured on 1)")
	f.BoolVar(&opts.JSON, "json", false, "print JSON")
	cmd.MarkFlagRequired("weights")
	cmd.MarkFlagRequired("recipe")
	rootCmd.AddCommand(cmd)
}

// runCompress compresses the model and prints the row.
func runCompress(ctx context.Context, w io.Writer, opts compressOptions) error {
	start := time.Now()
	if opts.Epochs < 0 || opts.PruneRounds < 0 || opts.Subset < 0 || opts.LR < 0 {
		return badInputf("--epochs, --prune-rounds, --subset and --lr must not be negative")
	}
	if opts.Weights == "" {
		return badInputf("--weights: a trained model is needed")
	}
	d, err := loadData(opts.Data, opts.Resize)
	if err != nil {
		return err
	}
	shape, err := dataShape(d, opts.Normalize)
	if err != nil {
		return err
	}
	arch, err := resolveSavedArch(opts.Arch, opts.Weights, shape)
	if err != nil {
		return err
	}
	m, err := nas.NewModel(arch, 1)
	if err != nil {
		return badInput(err)
	}
	if err := m.CheckData(d.Train); err != nil {
		return badInput(err)
	}
	if err := nas.LoadWeights(opts.Weights, m); err != nil {
		return badInput(err)
	}
	recipe, err := compress.ParseRecipe(opts.Recipe)
	if err != nil {
		return badInput(err)
	}
	if err := recipe.Validate(m.Graph); err != nil {
		return badInput(err)
	}
	train, val, test := d.Train, d.Val, d.Test
	k, closeK, err := nas.DefaultKernels(opts.Threads)
	if err != nil {
		return err
	}
	defer closeK()
	m.Kernels = k
	rep := compressReport{Arch: arch.Name}
	if rep.TestAccBefore, err = compress.EvaluatePlan(m, test, k); err != nil {
		return err
	}

	cfg := compress.Config{FineTuneEpochs: opts.Epochs, NoFineTune: opts.Epochs == 0, PruneRounds: opts.PruneRounds,
		Threads: opts.Threads, Log: opts.Log,
		Train: nas.TrainConfig{BatchSize: 64, LR: opts.LR, Seed: opts.Seed, Subset: opts.Subset}}
	res, err := compress.Apply(ctx, m, recipe, train, val, cfg)
	if err != nil {
		return err
	}
	res.Model.Kernels = k
	if rep.TestAccAfter, err = compress.EvaluatePlan(res.Model, test, k); err != nil {
		return err
	}
	// Before and after are measured in turns, so that the speed-up is a
	// ratio taken under the same load (the machine may be shared).
	lats, speedups, err := interleavedLatency([]*nas.Model{m, res.Model}, opts.Latency, 5)
	if err != nil {
		return err
	}
	before, after := lats[0], lats[1]
	rep.Recipe, rep.ParamsBefore, rep.ParamsAfter, rep.NonZero = res.Recipe, res.ParamsBefore, res.ParamsAfter, res.NonZero
	rep.DenseBytes, rep.Bytes, rep.Ratio = res.DenseBytes, res.Bytes, res.Ratio
	rep.MACsBefore, rep.MACsAfter = m.Graph.MACs(), res.Model.Graph.MACs()
	rep.ParamsReduction = 1 - float64(rep.ParamsAfter)/float64(rep.ParamsBefore)
	rep.MACsReduction = 1 - float64(rep.MACsAfter)/float64(rep.MACsBefore)
	rep.ValAccBefore, rep.ValAccAfter = res.ValAccBefore, res.ValAccAfter
	rep.LatencyBeforeUS, rep.LatencyAfterUS = us(before), us(after)
	rep.Speedup = speedups[1]
	rep.Layers, rep.Stages, rep.Notes = res.Layers, res.Stages, res.Notes
	if opts.Out != "" {
		// The architecture first: a model file is never left beside an
		// architecture it does not decode with.
		rep.Out, rep.OutArch = opts.Out, archBesideWeights(opts.Out)
		if err := atomicfile.WriteFile(rep.OutArch, res.Arch.JSON(), 0o644); err != nil {
			return badInputf("--out: %v", err)
		}
		if err := atomicfile.WriteFile(opts.Out, res.Encoded, 0o644); err != nil {
			return badInputf("--out: %v", err)
		}
	}
	rep.Seconds = time.Since(start).Seconds()
	if opts.JSON {
		return writeJSON(w, rep)
	}
	fmt.Fprintf(w, "%-9s %-40s %9s %9s %10s %7s %8s %8s %8s %8s %9s %9s %6s\n", "arch", "recipe", "params", "nonzero", "bytes", "ratio",
		"val-bef", "val-aft", "test-bef", "test-aft", "lat-bef", "lat-aft", "speed")
	fmt.Fprintf(w, "%-9s %-40s %9d %9d %10d %6.1fx %7.2f%% %7.2f%% %7.2f%% %7.2f%% %7.1fus %7.1fus %5.2fx\n", rep.Arch, rep.Recipe,
		rep.ParamsAfter, rep.NonZero, rep.Bytes, rep.Ratio, 100*rep.ValAccBefore, 100*rep.ValAccAfter, 100*rep.TestAccBefore,
		100*rep.TestAccAfter, rep.LatencyBeforeUS, rep.LatencyAfterUS, rep.Speedup)
	fmt.Fprintf(w, "params %d → %d (−%.1f%%), MACs/image %d → %d (−%.1f%%), batch-1 latency %.1f → %.1f µs (%.2f× faster)\n",
		rep.ParamsBefore, rep.ParamsAfter, 100*rep.ParamsReduction, rep.MACsBefore, rep.MACsAfter, 100*rep.MACsReduction,
		rep.LatencyBeforeUS, rep.LatencyAfterUS, rep.Speedup)
	for _, n := range rep.Notes {
		fmt.Fprintln(w, "note:", n)
	}
	if rep.Out != "" {
		fmt.Fprintf(w, "wrote %s (%d bytes) and %s\n", rep.Out, rep.Bytes, rep.OutArch)
	}
	return nil
}

// batch1Latency measures m's lowered plan at batch 1 on the CPU backend
// with one thread (the deployment setting the issue reports).
func batch1Latency(m *nas.Model, lo accel.LatencyOptions) (accel.LatencyStats, error) {
	plan, err := nas.Lower(m)
	if err != nil {
		return accel.LatencyStats{}, err
	}
	be, err := accel.Open("cpu", accel.Options{Threads: 1})
	if err != nil {
		return accel.LatencyStats{}, err
	}
	defer be.Close()
	prog, err := be.Compile(plan, 1)
	if err != nil {
		return accel.LatencyStats{}, err
	}
	defer prog.Close()
	in := make([]float32, prog.InputSize())
	for i := range in {
		in[i] = float32(i%29) / 29
	}
	return accel.MeasureProgram(prog, in, lo)
}

// interleavedLatency measures the models' lowered plans at batch 1 on one
// CPU thread in turns, rounds times (model 0, 1, …, 0, 1, …). It returns
// each model's median of its rounds' medians, and each model's speed-up
// over model 0: the median over rounds of the ratio of the two medians
// taken side by side in that round, which a burst of load on a shared
// machine spoils for one round only.
func interleavedLatency(models []*nas.Model, lo accel.LatencyOptions, rounds int) (lat []time.Duration, speedup []float64, err error) {
	be, err := accel.Open("cpu", accel.Options{Threads: 1})
	if err != nil {
		return nil, nil, err
	}
	defer be.Close()
	progs := make([]accel.Program, len(models))
	defer func() {
		for _, p := range progs {
			if p != nil {
				p.Close()
			}
		}
	}()
	ins := make([][]float32, len(models))
	for i, m := range models {
		plan, err := nas.Lower(m)
		if err != nil {
			return nil, nil, err
		}
		if progs[i], err = be.Compile(plan, 1); err != nil {
			return nil, nil, err
		}
		ins[i] = make([]float32, progs[i].InputSize())
		for j := range ins[i] {
			ins[i][j] = float32(j%29) / 29
		}
	}
	rounds = max(rounds, 1)
	meds := make([][]time.Duration, len(models))
	ratios := make([][]float64, len(models))
	for r := 0; r < rounds; r++ {
		for i, p := range progs {
			st, err := accel.MeasureProgram(p, ins[i], lo)
			if err != nil {
				return nil, nil, err
			}
			meds[i] = append(meds[i], st.Median)
			ratios[i] = append(ratios[i], float64(meds[0][r])/float64(st.Median))
		}
	}
	lat, speedup = make([]time.Duration, len(models)), make([]float64, len(models))
	for i := range models {
		slices.Sort(meds[i])
		slices.Sort(ratios[i])
		lat[i], speedup[i] = meds[i][rounds/2], ratios[i][rounds/2]
	}
	return lat, speedup, nil
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
