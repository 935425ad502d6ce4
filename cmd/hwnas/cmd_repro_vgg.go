package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"hwnas/accel"
	"hwnas/cpu"
	"hwnas/nas"
	"hwnas/nas/compress"
	"hwnas/nas/data"
)

// vggCase is one row of the VGG-16 / CIFAR-10 comparison: a recipe applied
// to the trained VGG-16, or (arch set) a compact network trained from
// scratch in its place.
type vggCase struct {
	row, family, recipe, arch, reference string
}

// vggConvs lists VGG-16's conv layers from..to as "convN." prefixes with
// one recipe value.
func vggConvs(from, to int, value string) string {
	var parts []string
	for i := from; i <= to; i++ {
		parts = append(parts, fmt.Sprintf("conv%d.%s", i, value))
	}
	return strings.Join(parts, ",")
}

// vggCases is the seed's second table: VGG-16 on CIFAR-10 with structured
// pruning (Li et al.'s L1 filter pruning, network slimming's BN scaling
// factors), parameter sharing, compact replacements and hybrids. The
// references are the papers' own figures on CIFAR-10.
var vggCases = []vggCase{
	{row: "L1 filter pruning (Li et al., VGG-16-pruned-A)", family: "structured pruning",
		recipe:    "conv1.channels=0.5:l1," + vggConvs(8, 13, "channels=0.5:l1"),
		reference: "Li et al. 2017: −64% params, −34% FLOPs, error 6.75% → 6.60%"},
	{row: "network slimming (BN γ)", family: "structured pruning",
		recipe:    vggConvs(1, 7, "channels=0.3:bn") + "," + vggConvs(8, 13, "channels=0.75:bn"),
		reference: "Liu et al. 2017 (VGGNet, 70% channels): −88.5% params, −51% FLOPs, error 6.34% → 6.20%"},
	{row: "shared 5-bit + Huffman", family: "parameter sharing", recipe: "share=5bit,huffman",
		reference: "Han et al. 2016 (VGG-16, ImageNet, with pruning): 49× smaller"},
	{row: "compact: ResNet-20", family: "compact network", arch: "resnet20",
		reference: "He et al. 2016: 0.27 M params, error 8.75%"},
	{row: "compact: MobileNetV2", family: "compact network", arch: "mobilenetv2",
		reference: "Sandler et al. 2018 (CIFAR variants commonly ~94%)"},
	{row: "pruned-A + int8", family: "hybrid", recipe: "conv1.channels=0.5:l1," + vggConvs(8, 13, "channels=0.5:l1") + ",quant=int8"},
	{row: "slimming + 5-bit sharing + Huffman", family: "hybrid",
		recipe: vggConvs(1, 7, "channels=0.3:bn") + "," + vggConvs(8, 13, "channels=0.75:bn") + ",share=5bit,huffman"},
}

// vggRow is one line of the table.
type vggRow struct {
	Row       string  `json:"row"`
	Family    string  `json:"family"`
	Recipe    string  `json:"recipe"`
	Params    int64   `json:"params"`
	Bytes     int     `json:"bytes"`
	Ratio     float64 `json:"ratio"`
	MACs      int64   `json:"macs"`
	ParamsRed float64 `json:"params_reduction"`
	FLOPsRed  float64 `json:"flops_reduction"`
	// TestAccuracy is NaN-free: Synthetic reports mark it as not meaningful.
	TestAccuracy float64 `json:"test_accuracy"`
	LatencyUS    float64 `json:"latency_us"`
	Speedup      float64 `json:"speedup"`
	Kernels      string  `json:"kernels"`
	Reference    string  `json:"reference,omitempty"`
}

// vggReport is the --json output of `hwnas repro vgg16-cifar10`.
type vggReport struct {
	Command   string       `json:"command"`
	Device    accel.Device `json:"device"`
	Date      string       `json:"date"`
	Data      data.Info    `json:"data"`
	Synthetic bool         `json:"synthetic"`
	Epochs    int          `json:"epochs"`
	FineTune  int          `json:"finetune"`
	Subset    int          `json:"subset"`
	Rows      []vggRow     `json:"rows"`
	Seconds   float64      `json:"seconds"`
}

func init() {
	opts := reproOptions{}
	var synthetic int
	cmd := &cobra.Command{
		Use:   "vgg16-cifar10",
		Short: "The seed's VGG-16 / CIFAR-10 table: structured pruning, sharing, compact networks, hybrids; writes a section of docs/RESULTS.md",
		Long: `Trains VGG-16 (the CIFAR variant with batch norm of the pruning papers) on
CIFAR-10 in the binary format (--data: the folder of data_batch_*.bin and
test_batch.bin, which users download themselves), or loads it from --cache,
then compresses it with L1 filter pruning (Li et al.'s VGG-16-pruned-A),
network slimming (batch-norm γ), 5-bit weight sharing with Huffman coding and
hybrids, and trains ResNet-20 and MobileNetV2 as compact replacements. Each row
reports parameters, exact compressed bytes, multiply-accumulates, test accuracy
and batch-1 CPU latency on one thread with the speed-up over the baseline, and
the papers' own figures for reference. The section "vgg16-cifar10" of --out is
replaced; the rest of the file is kept.

--synthetic N writes N images per class of a synthetic CIFAR-10 set in the
binary format into a temporary folder and runs on it: the size, FLOP and
latency columns are those of the real table (they do not depend on the data),
the accuracy column is not meaningful and is shown as such. Training on the
real CIFAR-10 takes hours per epoch for VGG-16 on a CPU; --epochs, --subset
and --cache keep that bounded and reusable.`,
		Example: `  hwnas repro vgg16-cifar10 --data data/cifar10 --epochs 30
  hwnas repro vgg16-cifar10 --synthetic 10 --epochs 1 --finetune 0   # the size/FLOP/latency columns`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.Log = cmd.ErrOrStderr()
			opts.Args = "hwnas " + strings.Join(os.Args[1:], " ")
			if synthetic > 0 {
				if opts.Data != "" {
					return badInputf("give either --data or --synthetic, not both")
				}
				dir, err := os.MkdirTemp("", "hwnas-synthetic-cifar10")
				if err != nil {
					return err
				}
				defer os.RemoveAll(dir)
				// One training batch of N images per class (the last
				// twelfth become validation) and a fifth as many test images.
				if err := data.WriteSyntheticCIFAR(dir, data.CIFAR10, 1, 10*synthetic, max(10, 2*synthetic), opts.Seed); err != nil {
					return err
				}
				opts.Data, opts.Quick = dir, true // Quick marks the accuracy as not meaningful
			}
			return runReproVGG(cmd.Context(), cmd.OutOrStdout(), opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Out, "out", "docs/RESULTS.md", "write the table as this Markdown file's vgg16-cifar10 section (empty: none)")
	f.StringVar(&opts.Data, "data", "", "CIFAR-10 folder in the binary format (data_batch_1.bin … test_batch.bin)")
	f.IntVar(&synthetic, "synthetic", 0, "run on a synthetic CIFAR-10 set of N training images per class instead (the size, FLOP and latency columns)")
	f.StringVar(&opts.Cache, "cache", ".cache/repro", "folder of trained baseline weights (reused when present)")
	f.IntVar(&opts.Epochs, "epochs", 30, "baseline training epochs")
	f.IntVar(&opts.FineTune, "finetune", 2, "fine-tuning epochs after each compression step (0: none)")
	f.Uint64Var(&opts.Seed, "seed", 1, "seed of the baselines and the fine-tuning")
	f.BoolVar(&opts.JSON, "json", false, "print JSON")
	// Regenerating one row (and the test that runs the examples above,
	// which cannot afford the whole table): hidden, as the section it
	// writes then holds those rows only.
	f.StringArrayVar(&opts.rows, "row", nil, "compute only this row beside the baseline (repeatable; its name as in the table)")
	_ = f.MarkHidden("row")
	reproCmd.AddCommand(cmd)
}

// runReproVGG trains or loads the baselines, applies each case and writes
// the table. opts.Quick marks a run on synthetic data.
func runReproVGG(ctx context.Context, w io.Writer, opts reproOptions) error {
	start := time.Now()
	if opts.Data == "" {
		return badInputf("--data: give the CIFAR-10 folder (binary format), or --synthetic N")
	}
	if opts.Epochs <= 0 || opts.FineTune < 0 {
		return badInputf("--epochs must be positive and --finetune not negative")
	}
	for _, r := range opts.rows {
		if !slices.ContainsFunc(vggCases, func(c vggCase) bool { return c.row == r }) {
			names := make([]string, len(vggCases))
			for i, c := range vggCases {
				names[i] = strconv.Quote(c.row)
			}
			return badInputf("--row %q: no such row (rows: %s)", r, strings.Join(names, ", "))
		}
	}
	logf := func(format string, a ...any) {
		if opts.Log != nil {
			fmt.Fprintf(opts.Log, format+"\n", a...)
		}
	}
	d, err := data.Load(opts.Data, data.Options{})
	if err != nil {
		return badInput(err)
	}
	if d.Info.Format != data.FormatCIFAR10 {
		return badInputf("%s holds %s data, not CIFAR-10 in the binary format (data_batch_*.bin, test_batch.bin)", opts.Data, d.Info.Format)
	}
	shape := nas.DataShape{Input: d.Info.Shape, Classes: d.Info.Classes, Normalize: nas.NewNormalization(d.Info.Mean, d.Info.Std)}
	opts.augment = data.AutoAugment(3, 32, 32)
	tag := "-cifar10"
	if opts.Quick {
		tag = fmt.Sprintf("-synthetic%d", d.Train.N)
	}
	k, closeK, err := nas.DefaultKernels(0)
	if err != nil {
		return err
	}
	defer closeK()
	rep := vggReport{Command: opts.Args, Device: accel.DetectCPU(runtime.NumCPU(), cpu.ISA()), Date: time.Now().UTC().Format("2006-01-02 15:04 MST"),
		Data: d.Info, Synthetic: opts.Quick, Epochs: opts.Epochs, FineTune: opts.FineTune}
	baseline := func(name string) (*nas.Model, error) {
		a, err := nas.BuiltinArchFor(name, shape)
		if err != nil {
			return nil, err
		}
		m, _, err := reproBaseline(ctx, a, d.Train, d.Val, 0, tag, opts, k, logf)
		return m, err
	}
	base, err := baseline("vgg16")
	if err != nil {
		return err
	}
	// Every row is timed in turns with the baseline (its speed-up is a
	// ratio under the same load); the baseline's latency is the median of
	// all its turns.
	var baseLats []time.Duration
	row := func(name, family, recipe, ref string, m *nas.Model, bytes int, kernels string) (vggRow, error) {
		acc, err := compress.EvaluatePlan(m, d.Test, k)
		if err != nil {
			return vggRow{}, err
		}
		lats, speedups, err := interleavedLatency([]*nas.Model{base, m}, opts.Latency, 5)
		if err != nil {
			return vggRow{}, err
		}
		baseLats = append(baseLats, lats[0])
		r := vggRow{Row: name, Family: family, Recipe: recipe, Params: m.NumParams(), Bytes: bytes, MACs: m.Graph.MACs(),
			TestAccuracy: acc, LatencyUS: us(lats[1]), Kernels: kernels, Reference: ref, Ratio: 1, Speedup: speedups[1]}
		if len(rep.Rows) > 0 {
			b := rep.Rows[0]
			r.Ratio = float64(b.Bytes) / float64(r.Bytes)
			r.ParamsRed = 1 - float64(r.Params)/float64(b.Params)
			r.FLOPsRed = 1 - float64(r.MACs)/float64(b.MACs)
		}
		logf("%-38s %9d params %10d bytes %11d MACs  acc %.2f%%  %8.1f µs (%.2f×)", r.Row, r.Params, r.Bytes, r.MACs, 100*r.TestAccuracy, r.LatencyUS, r.Speedup)
		return r, nil
	}
	r0, err := row("baseline VGG-16 (dense fp32)", "none", "none", "Li et al. 2017: 15.0 M params, 313 M FLOPs (MACs), error 6.75%", base, int(4*base.NumParams()), "dense")
	if err != nil {
		return err
	}
	rep.Rows = append(rep.Rows, r0)
	for _, c := range vggCases {
		if len(opts.rows) > 0 && !slices.Contains(opts.rows, c.row) {
			continue
		}
		var r vggRow
		if c.arch != "" {
			m, err := baseline(c.arch)
			if err != nil {
				return err
			}
			if r, err = row(c.row, c.family, c.arch+" from scratch", c.reference, m, int(4*m.NumParams()), "dense"); err != nil {
				return err
			}
		} else {
			recipe, err := compress.ParseRecipe(c.recipe)
			if err != nil {
				return err
			}
			cfg := compress.Config{FineTuneEpochs: max(opts.FineTune, 1), NoFineTune: opts.FineTune == 0, PruneRounds: 2,
				Train: nas.TrainConfig{BatchSize: 64, LR: 0.01, Seed: opts.Seed, Augment: opts.augment}}
			res, err := compress.Apply(ctx, base, recipe, d.Train, d.Val, cfg)
			if err != nil {
				return fmt.Errorf("vgg16 %s: %w", c.row, err)
			}
			res.Model.Kernels = k
			if r, err = row(c.row, c.family, c.recipe, c.reference, res.Model, res.Bytes, kernelsUsed(res.Layers)); err != nil {
				return err
			}
		}
		rep.Rows = append(rep.Rows, r)
	}
	slices.Sort(baseLats)
	rep.Rows[0].LatencyUS = us(baseLats[len(baseLats)/2])
	rep.Seconds = time.Since(start).Seconds()
	return writeReport(w, opts, "vgg16-cifar10", "# hwnas results\n", vggMarkdown(&rep), rep, logf)
}

// vggMarkdown renders the table.
func vggMarkdown(rep *vggReport) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "## VGG-16 on CIFAR-10: structured pruning, sharing, compact networks, hybrids\n\n")
	fmt.Fprintf(&b, "Generated by `%s` on %s (%d cores, kernels %s, int8 %s) at %s, in %.0f s; do not edit by hand.\n",
		rep.Command, rep.Device.Name, rep.Device.Cores, rep.Device.ISA, cpu.QISA(), rep.Date, rep.Seconds)
	fmt.Fprintf(&b, "Data: %s; baselines trained %d epoch(s) (crop+flip, input normalised), %d fine-tuning epoch(s) per compression step.\n",
		rep.Data.String(), rep.Epochs, rep.FineTune)
	if rep.Synthetic {
		fmt.Fprintf(&b, "\n**Synthetic data** (a CIFAR-10-format set written by the command): parameters, bytes, MACs, latency and\n"+
			"speed-up are those of the real table — they do not depend on the pixels, except that Huffman-coded sizes\n"+
			"follow the trained weights' statistics — but the accuracy column is not meaningful and shows \"—\". Run with\n"+
			"`--data` on the real CIFAR-10 for it.\n")
	}
	fmt.Fprintf(&b, `
Params and MACs count the network as it runs (pruned channels removed; FLOPs = 2·MACs). Bytes are the exact
compressed size (4 bytes per parameter for dense fp32). Latency is the median batch-1 time of the whole
model on one core; speed-up is against the dense VGG-16, timed in turns with each row: the median over 5
rounds of the ratio of the two models' median latencies in that round, so a burst of load on the shared
machine spoils one round, not the row.

| row | family | params | Δ params | MACs | Δ FLOPs | bytes | ratio | test accuracy | latency (µs) | speed-up | kernels | reference |
|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|
`)
	for _, r := range rep.Rows {
		acc := fmt.Sprintf("%.2f%%", 100*r.TestAccuracy)
		if rep.Synthetic {
			acc = "—"
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %s | %d | %s | %d | %.1f× | %s | %.0f | %.2f× | %s | %s |\n", r.Row, r.Family, r.Params,
			pct(-r.ParamsRed), r.MACs, pct(-r.FLOPsRed), r.Bytes, r.Ratio, acc, r.LatencyUS, r.Speedup, r.Kernels, r.Reference)
	}
	fmt.Fprintf(&b, "\nRecipes:\n\n")
	for _, r := range rep.Rows[1:] {
		fmt.Fprintf(&b, "- %s: `%s`\n", r.Row, r.Recipe)
	}
	return b.Bytes()
}

func pct(f float64) string {
	if f == 0 {
		return "0%"
	}
	return fmt.Sprintf("%+.1f%%", 100*f)
}
