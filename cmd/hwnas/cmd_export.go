package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"hwnas/accel"
	"hwnas/nas"
	"hwnas/nas/compress"
	"hwnas/nas/onnx"
	"hwnas/search"
	"hwnas/store"
)

// exportOptions configure `hwnas export`.
type exportOptions struct {
	Arch      string // built-in name or arch JSON file
	Weights   string // weights file (hwnas train --save)
	Recipe    string // compression recipe (short form, JSON or a file)
	Data      string // data set for applying a recipe (calibration), --verify and a built-in's shape
	Resize    string
	Normalize string
	DB        string // results database
	Study     string // the study of a --trial number
	Trial     string // trial name (STUDY/N) or number in Study
	TrialID   int64  // trial database id (instead of Trial)
	Out       string // the .onnx file to write
	// Verify runs the written file in onnxruntime and hwnas's program for
	// the same plan on the test split of Data and reports how they agree.
	Verify bool
	JSON   bool
}

// exportReport is what `hwnas export` prints (--json).
type exportReport struct {
	Output   string             `json:"output"`
	Bytes    int64              `json:"bytes"`
	Arch     string             `json:"arch"`
	ArchHash string             `json:"arch_hash"`
	Source   string             `json:"source"`
	Opset    int                `json:"opset"`
	Ops      int                `json:"plan_ops"`
	Int8Ops  int                `json:"int8_ops"`
	Params   int64              `json:"params"`
	Figures  map[string]float64 `json:"figures,omitempty"`
	// Notes list what the file cannot carry (and was therefore not
	// exported as such); empty when the file is exact.
	Notes []string `json:"notes"`
	// Verify is how onnxruntime running the file agrees with hwnas on the
	// test split of --data (--verify).
	Verify *onnx.Agreement `json:"verify,omitempty"`
}

func init() {
	opts := exportOptions{}
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Export a trained model (weights file or search trial) to ONNX",
		Long: `Writes an ONNX model (opset 17) of a trained model, lowered as hwnas runs it:
batch norm folded, activations fused, channel-pruned and factorised layers as
their smaller layers, int8 layers as int8 weights with DequantizeLinear and
QuantizeLinear/DequantizeLinear on their inputs. The input is "input",
float32 N×C×H×W with pixels in [0, 1] and a dynamic batch N; the output is
"logits". Architecture, recipe and measured figures go into metadata_props.

Either --weights (with --arch, or the FILE.arch.json hwnas train --save and
hwnas compress --out write beside it), or --db and --trial (the trained,
compressed model stored with a finished search trial; nothing is retrained).
--trial takes the name searches, hwnas best, pareto and trials print,
STUDY/N (or N with --study); --trial-id takes the database id instead.
The weights file is a plain one (hwnas train --save) or a compressed model
(hwnas compress --out FILE). A model trained with input normalisation
carries it as its first op (or folded into the first layer), so the file
still takes raw pixels in [0, 1]. --recipe applies a
recipe to plain weights without fine-tuning (int8 ranges calibrated on
--data); for a fine-tuned result run hwnas compress and export its output.
What ONNX cannot carry (sub-8-bit widths, codebooks, Huffman coding,
sparsity as compute) is listed as notes. The file is written atomically:
on any error no file is left behind.

--verify then runs the file in onnxruntime (in this process, all graph
optimisations on, so int8 layers run on its integer kernels) and the same
plan on hwnas's CPU kernels over the test split of --data, and reports the
argmax agreement, the worst logit difference (in output quantization steps
when the last layer is int8) and both runtimes' accuracy. 8-bit weights are
stored as uint8 codes with zero point 128, which onnxruntime multiplies
exactly on every x86 CPU (its int8·uint8 kernels without VNNI saturate
16-bit pair sums), so the deployed file computes what hwnas measured.`,
		Example: `  hwnas export --arch lenet5 --weights lenet5.hwnw --out lenet5.onnx
  hwnas export --weights lenet5-c.hwnc --out lenet5-c.onnx      # what hwnas compress --out wrote
  hwnas export --arch lenet5 --weights lenet5.hwnw --recipe quant=int8 --data data/mnist --out lenet5-int8.onnx --verify
  hwnas export --db hwnas.db --trial quick/1 --out best.onnx`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runExport(cmd.Context(), cmd.OutOrStdout(), opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Arch, "arch", "", "architecture: a built-in name ("+joinNames()+") or a JSON file; default: FILE.arch.json beside --weights (hwnas train --save writes it)")
	f.StringVar(&opts.Weights, "weights", "", "weights file of the architecture (hwnas train --save)")
	f.StringVar(&opts.Recipe, "recipe", "", "compression recipe (short form, JSON or a file): applied to plain weights without fine-tuning, recorded for compressed ones")
	f.StringVar(&opts.Data, "data", "data/mnist", "data set that calibrates int8 ranges when --recipe is applied, and whose shape a built-in --arch is built for when no FILE.arch.json is beside --weights")
	addDataFlags(f, &opts.Resize, &opts.Normalize)
	f.StringVar(&opts.DB, "db", "", "results database of a search (a file or a postgres:// URL)")
	f.StringVar(&opts.Trial, "trial", "", trialFlagHelp+"; its stored weights are exported")
	f.StringVar(&opts.Study, "study", "", "the study of a --trial number")
	f.Int64Var(&opts.TrialID, "trial-id", 0, "the trial by its database id (the id of hwnas trials --json) instead of --trial")
	f.StringVarP(&opts.Out, "out", "o", "", "the .onnx file to write")
	// The first spelling, kept working (hidden): other commands say --out.
	f.StringVar(&opts.Out, "output", "", "the .onnx file to write (old name of --out)")
	_ = f.MarkHidden("output")
	f.BoolVar(&opts.Verify, "verify", false, "run the file in onnxruntime beside hwnas on the test split of --data and report how they agree")
	f.BoolVar(&opts.JSON, "json", false, "print JSON")
	rootCmd.AddCommand(cmd)
}

// exportSource is a model to export with what is known about it.
type exportSource struct {
	model *nas.Model
	// compressed is set when the weights came compressed (the recipe is
	// already in them).
	compressed bool
	recipe     []byte
	source     string
	figures    map[string]float64
	props      map[string]string
	// uncarried lists compression the file cannot show (see
	// onnx.Metadata.Uncarried).
	uncarried []string
}

// runExport loads the model, lowers it, writes the ONNX file and prints
// the report. Every error caused by the input (flags, files, trial, a
// model the exporter cannot express, an output path that cannot be
// written) is a usage error.
func runExport(ctx context.Context, w io.Writer, opts exportOptions) error {
	if opts.Out == "" {
		return badInputf("-o/--out: the .onnx file to write is required")
	}
	fromFiles := opts.Arch != "" || opts.Weights != ""
	fromDB := opts.DB != "" || opts.Trial != "" || opts.TrialID != 0 || opts.Study != ""
	var src *exportSource
	var err error
	switch {
	case fromFiles && fromDB:
		return badInputf("give either --arch and --weights, or --db and --trial, not both")
	case fromFiles:
		src, err = exportFromFiles(opts)
	case fromDB:
		src, err = exportFromTrial(ctx, opts)
	default:
		return badInputf("nothing to export: give --arch and --weights, or --db and --trial")
	}
	if err != nil {
		return err
	}
	if opts.Recipe != "" {
		if err := src.withRecipe(ctx, opts); err != nil {
			return err
		}
	}
	plan, err := nas.Lower(src.model)
	if err != nil {
		return badInputf("%s: cannot lower the model for export: %v", src.source, err)
	}
	a := src.model.Arch
	meta := onnx.Metadata{
		ProducerVersion: version,
		Doc:             fmt.Sprintf("%s exported by hwnas from %s", a.Name, src.source),
		Arch:            string(a.JSON()),
		Figures:         src.figures,
		Props:           map[string]string{"hwnas.source": src.source, "hwnas.arch_hash": a.Hash()},
		Uncarried:       src.uncarried,
	}
	for k, v := range src.props {
		meta.Props[k] = v
	}
	if len(src.recipe) > 0 {
		meta.Recipe = string(src.recipe)
	}
	notes, err := onnx.WriteFile(opts.Out, plan, meta)
	if err != nil {
		return badInput(err)
	}
	st, err := os.Stat(opts.Out)
	if err != nil {
		return err
	}
	rep := exportReport{Output: opts.Out, Bytes: st.Size(), Arch: a.Name, ArchHash: a.Hash(), Source: src.source,
		Opset: onnx.Opset, Ops: len(plan.Ops), Params: src.model.NumParams(), Figures: src.figures, Notes: notes}
	if rep.Notes == nil {
		rep.Notes = []string{}
	}
	for _, op := range plan.Ops {
		if op.Quant != nil {
			rep.Int8Ops++
		}
	}
	if opts.Verify {
		a, err := verifyExport(opts, plan)
		if err != nil {
			return err
		}
		rep.Verify = &a
	}
	if opts.JSON {
		return writeJSON(w, rep)
	}
	fmt.Fprintf(w, "wrote %s: %d bytes, ONNX opset %d, %d plan ops (%d int8), %d parameters, from %s\n",
		rep.Output, rep.Bytes, rep.Opset, rep.Ops, rep.Int8Ops, rep.Params, rep.Source)
	if len(notes) > 0 {
		fmt.Fprintln(w, "notes (what the file does not carry as such):")
		for _, n := range notes {
			fmt.Fprintln(w, "  -", n)
		}
	}
	if a := rep.Verify; a != nil {
		steps := ""
		if a.MaxSteps > 0 {
			steps = fmt.Sprintf(" = %.3g output quantization steps", a.MaxSteps)
		}
		fmt.Fprintf(w, "verified on %d test images of %s: onnxruntime %s and hwnas agree on the top class of %.2f%%, worst logit difference %.3g%s; test accuracy onnxruntime %.2f%%, hwnas %.2f%%\n",
			a.Images, opts.Data, onnx.RuntimeVersion(), 100*a.ArgmaxAgree, a.MaxAbsDiff, steps, 100*a.OrtAccuracy, 100*a.HwnasAccuracy)
	}
	return nil
}

// verifyExport runs the written file in onnxruntime and plan on hwnas's
// CPU backend (one thread, batch 100) over the test split of opts.Data.
func verifyExport(opts exportOptions, plan *accel.Plan) (onnx.Agreement, error) {
	d, err := loadData(opts.Data, opts.Resize)
	if err != nil {
		return onnx.Agreement{}, badInputf("--data (needed by --verify): %v", err)
	}
	test := d.Test
	model, err := os.ReadFile(opts.Out)
	if err != nil {
		return onnx.Agreement{}, err
	}
	if err := onnx.InitRuntime(); err != nil {
		return onnx.Agreement{}, err
	}
	b, err := accel.Open("cpu", accel.Options{Threads: 1})
	if err != nil {
		return onnx.Agreement{}, err
	}
	defer b.Close()
	prog, err := b.Compile(plan, 100)
	if err != nil {
		return onnx.Agreement{}, err
	}
	defer prog.Close()
	if prog.InputSize() != test.C*test.H*test.W {
		return onnx.Agreement{}, badInputf("--data %s: images of %d×%d×%d, the model takes %d values", opts.Data, test.C, test.H, test.W, prog.InputSize())
	}
	return onnx.Compare(prog, plan, model, test.Images, test.Labels, test.N, onnx.SessionOptions{Threads: 1})
}

func exportFromFiles(opts exportOptions) (*exportSource, error) {
	if opts.Weights == "" || (opts.Arch == "" && !fileExists(archBesideWeights(opts.Weights))) {
		return nil, badInputf("--arch and --weights go together: both are needed (--arch may be left out when FILE.arch.json is beside the weights)")
	}
	// A built-in name without the architecture file beside the weights
	// is built for the data set's shape (its default shape when --data is
	// empty).
	var shape nas.DataShape
	if nas.IsBuiltin(opts.Arch) && !fileExists(archBesideWeights(opts.Weights)) && opts.Data != "" {
		d, err := loadData(opts.Data, opts.Resize)
		if err != nil {
			return nil, badInputf("--data (the data set built-in --arch %s is built for): %v", opts.Arch, err)
		}
		if shape, err = dataShape(d, opts.Normalize); err != nil {
			return nil, err
		}
	}
	a, err := resolveSavedArch(opts.Arch, opts.Weights, shape)
	if err != nil {
		return nil, err
	}
	raw, err := os.ReadFile(opts.Weights)
	if err != nil {
		return nil, badInputf("--weights: %v", err)
	}
	// The source names the file by its name and contents, not by the
	// folder it was in: the same model exports to the same bytes wherever
	// it is.
	sum := sha256.Sum256(raw)
	named := fmt.Sprintf("%s (sha256 %x)", filepath.Base(opts.Weights), sum[:6])
	src := &exportSource{source: "weights file " + named, figures: map[string]float64{}, props: map[string]string{}}
	if bytes.HasPrefix(raw, []byte(compressedMagic)) {
		if src.model, err = compress.Decode(a, raw); err != nil {
			return nil, badInputf("--weights %s: %v (a compressed model goes with the architecture hwnas compress wrote beside it, FILE.arch.json)", opts.Weights, err)
		}
		src.compressed = true
		src.source = "compressed model " + named
		return src, nil
	}
	if src.model, err = nas.NewModel(a, 1); err != nil {
		return nil, badInputf("--arch %s: %v", opts.Arch, err)
	}
	if err := nas.DecodeWeightsInto(raw, src.model); err != nil {
		return nil, badInputf("--weights %s: %v", opts.Weights, err)
	}
	return src, nil
}

// trialCompressedMagic starts a trial's weights blob holding a compressed
// model (search.EncodeTrialWeights); older trials hold plain weights.
const trialCompressedMagic = "HWTW"

// compressedMagic starts a compressed model file (package compress's
// format, as hwnas compress --out writes it).
const compressedMagic = "HWNC"

// withRecipe applies opts.Recipe to plain weights (compress.Apply without
// fine-tuning, int8 ranges calibrated on opts.Data) or, for weights that
// came compressed, records it; either way Huffman coding is reported as
// not carried.
func (src *exportSource) withRecipe(ctx context.Context, opts exportOptions) error {
	r, err := compress.ParseRecipe(opts.Recipe)
	if err != nil {
		return badInputf("--recipe: %v", err)
	}
	src.recipe = []byte(r.String())
	if r.Huffman {
		src.uncarried = append(src.uncarried, "Huffman coding of the weights is not carried by ONNX: the file stores the decoded values")
	}
	if src.compressed {
		return nil
	}
	if err := r.Validate(src.model.Graph); err != nil {
		return badInputf("--recipe: %v", err)
	}
	d, err := loadData(opts.Data, opts.Resize)
	if err != nil {
		return badInputf("--data (needed to apply --recipe): %v", err)
	}
	train, val := d.Train, d.Val
	res, err := compress.Apply(ctx, src.model, r, train, val, compress.Config{NoFineTune: true})
	if err != nil {
		return badInputf("applying --recipe: %v", err)
	}
	src.model = res.Model
	src.figures["val_accuracy_before"] = res.ValAccBefore
	src.figures["val_accuracy"] = res.ValAccAfter
	src.figures["compressed_bytes"] = float64(res.Bytes)
	src.uncarried = append(src.uncarried, "the recipe was applied without fine-tuning (hwnas compress fine-tunes; export its --out file for that model)")
	return nil
}

func exportFromTrial(ctx context.Context, opts exportOptions) (*exportSource, error) {
	if opts.DB == "" || (opts.Trial == "" && opts.TrialID == 0) {
		return nil, badInputf("--db and --trial go together: both are needed")
	}
	if !store.IsURL(opts.DB) {
		if _, err := os.Stat(opts.DB); err != nil {
			return nil, badInputf("--db: %v", err)
		}
	}
	db, err := store.OpenReadOnly(opts.DB)
	if err != nil {
		return nil, badInputf("--db: %v", err)
	}
	defer db.Close()
	tr, err := resolveTrial(ctx, db, opts.Study, opts.Trial, opts.TrialID)
	if err != nil {
		return nil, err
	}
	return trialSource(ctx, db, tr)
}

// trialSource loads trial tr's stored model from db, with its recipe and
// figures, for export or a race.
func trialSource(ctx context.Context, db *store.DB, tr store.Trial) (*exportSource, error) {
	blob, err := db.TrialWeights(ctx, tr.ID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, badInputf("trial %s has no stored weights (status %s): only finished trials can be exported", tr.Name(), tr.Status)
	}
	if err != nil {
		return nil, badInputf("trial %s: %v", tr.Name(), err)
	}
	m, err := search.TrialModel(tr.Arch, blob)
	if err != nil {
		return nil, badInputf("trial %s: stored model: %v", tr.Name(), err)
	}
	src := &exportSource{model: m, compressed: true, source: fmt.Sprintf("trial %s in %s", tr.Name(), dbName(db)),
		figures: map[string]float64{}, props: map[string]string{"hwnas.trial": tr.Name()}}
	var layers []search.LayerRecipe
	if json.Unmarshal(tr.Recipe, &layers) == nil && len(layers) > 0 {
		src.recipe = tr.Recipe
		switch {
		case !bytes.HasPrefix(blob, []byte(trialCompressedMagic)):
			src.uncarried = append(src.uncarried, "the trial stored plain weights: its recipe is recorded in hwnas.recipe, the model is exported as stored")
		case search.CompressRecipe(layers, nil).Huffman: // how trials encode their weights
			src.uncarried = append(src.uncarried, "Huffman coding of the stored weights is not carried by ONNX: the file stores the decoded values")
		}
	}
	if mt := tr.Metrics; mt != nil {
		src.figures["val_accuracy"] = mt.ValAccuracy
		if mt.HasTest {
			src.figures["test_accuracy"] = mt.TestAccuracy
		}
		src.figures["params"] = float64(mt.Params)
		src.figures["compressed_bytes"] = float64(mt.CompressedBytes)
		src.figures["macs"] = float64(mt.MACs)
		src.figures["reward"] = mt.Reward
	}
	for _, l := range tr.Latencies {
		key := fmt.Sprintf("latency_us.%s.batch%d", l.Device.Fingerprint, l.Batch)
		src.figures[key] = float64(l.Stats.Median.Nanoseconds()) / 1e3
		src.props["hwnas.device."+l.Device.Fingerprint] = l.Device.Name
	}
	return src, nil
}
