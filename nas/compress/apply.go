package compress

import (
	"context"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"time"

	"hwnas/accel"
	"hwnas/nas"
	"hwnas/nas/data"
)

// Config controls Apply. Zero fields take the defaults noted.
type Config struct {
	// Train is the fine-tuning configuration (batch size, optimizer, seed,
	// subset). Its LR defaults to 0.01 (a fine-tuning rate), its epochs are
	// replaced by FineTuneEpochs, and the learning rate is constant.
	Train nas.TrainConfig
	// FineTuneEpochs of training follow each step that changes the weights
	// (channel pruning, low-rank, each pruning round, sharing, QAT);
	// default 1. Zero fine-tuning is asked for with NoFineTune.
	FineTuneEpochs int
	NoFineTune     bool
	// PruneRounds of the automated gradual pruning schedule reach the
	// recipe's sparsity, each followed by fine-tuning; default 3.
	PruneRounds int
	// CalibSamples training images calibrate the int8 activation ranges;
	// default 512.
	CalibSamples int
	// Threads for the fine-tuning kernels (0: all cores). Dense and sparse
	// layers are compared at batch 1 on one thread.
	Threads int
	// NoSparseKernels keeps every layer on the dense kernels (otherwise a
	// pruned layer runs sparse when its measured batch-1 time is lower).
	NoSparseKernels bool
	// KeepInt8 runs every quantized conv layer on the int8 kernels.
	// Otherwise a quantized conv layer without which the lowered model is
	// not slower at batch 1 (typically the depthwise, grouped, 1×1 and stem
	// convolutions of few channels, and convs whose batch norm then folds:
	// see chooseFloat) runs on the float kernels with its dequantized
	// weights Scale·Q; it is still stored as integers.
	KeepInt8 bool
	// Log, when not nil, receives one line per step.
	Log io.Writer
}

func (c Config) withDefaults() Config {
	if c.FineTuneEpochs <= 0 {
		c.FineTuneEpochs = 1
	}
	if c.PruneRounds <= 0 {
		c.PruneRounds = 3
	}
	if c.CalibSamples <= 0 {
		c.CalibSamples = 512
	}
	if c.Train.LR == 0 {
		c.Train.LR = 0.01
	}
	c.Train.ConstantLR = true
	return c
}

// LayerReport describes one conv or linear layer of the compressed model.
type LayerReport struct {
	Layer   string `json:"layer"`
	Params  int    `json:"params"`  // weights and bias after structural changes
	NonZero int    `json:"nonzero"` // non-zero weights
	Format  string `json:"format"`  // fp32, fp16, int8, int4, int2, binary, shared-5bit
	Kernel  string `json:"kernel"`  // dense, int8, sparse
}

// StageReport is the validation accuracy after one pipeline step.
type StageReport struct {
	Stage   string  `json:"stage"`
	ValAcc  float64 `json:"val_accuracy"`
	Params  int64   `json:"params"`
	Seconds float64 `json:"seconds"`
}

// Result is a compressed model and its figures.
type Result struct {
	// Model is the compressed model as Decode restores it from Encoded
	// (weights as stored, m.Quant and m.Sparse set for the kernels), less
	// the m.Quant of the layers in Float.
	Model   *nas.Model
	Encoded []byte
	// Bytes is len(Encoded); DenseBytes the original model's fp32 size
	// (4 bytes per parameter); Ratio their quotient.
	Bytes        int     `json:"bytes"`
	DenseBytes   int64   `json:"dense_bytes"`
	Ratio        float64 `json:"ratio"`
	ParamsBefore int64   `json:"params_before"`
	ParamsAfter  int64   `json:"params_after"`
	NonZero      int64   `json:"nonzero"`
	// ValAccBefore/After are measured on the lowered plans (int8 and sparse
	// kernels included) over the validation set.
	ValAccBefore float64         `json:"val_accuracy_before"`
	ValAccAfter  float64         `json:"val_accuracy_after"`
	Layers       []LayerReport   `json:"layers"`
	Stages       []StageReport   `json:"stages"`
	Recipe       string          `json:"recipe"`
	Options      EncodeOptions   `json:"-"`
	Seconds      float64         `json:"seconds"`
	Arch         *nas.Arch       `json:"arch"`
	Sparse       map[string]bool `json:"-"`
	// Float names the quantized layers that run on the float kernels
	// (their m.Quant dropped from Model, see Config.KeepInt8); a model
	// decoded from Encoded again has them on the int8 kernels.
	Float map[string]bool `json:"-"`
}

// Apply compresses a copy of m with recipe r, fine-tuning on train and
// measuring on val, in the order of DESIGN.md's trial data flow, with
// unstructured pruning placed before sharing/quantization as in Deep
// Compression (clustering only the surviving weights is what makes
// sharing pay):
//
//  1. channel pruning (physical, RemoveChannels) by the layer's criterion,
//     then fine-tuning;
//  2. low-rank factorisation (Factorize), then fine-tuning;
//  3. unstructured magnitude pruning over PruneRounds rounds of the
//     automated gradual schedule, fine-tuning after each with the pruned
//     weights held at zero;
//  4. weight sharing (k-means, then codebook fine-tuning with summed
//     gradients) or quantization (fake-quant fine-tuning with a
//     straight-through estimator below 8 bits, calibrated activation
//     ranges, int8 kernels; fp16 storage for 16 bits);
//  5. encoding (Encode): the byte count is the length of the serialisation,
//     and the result's model is the one Decode restores from it; pruned
//     layers get the sparse kernels where measurement shows they are faster.
//
// With r.Distill set every fine-tuning step uses the distillation loss.
// m itself is not changed.
func Apply(ctx context.Context, m *nas.Model, r *Recipe, train, val *data.Set, cfg Config) (*Result, error) {
	cfg = cfg.withDefaults()
	start := time.Now()
	if err := r.Validate(m.Graph); err != nil {
		return nil, err
	}
	if train == nil || val == nil {
		return nil, fmt.Errorf("compress: training and validation data are needed")
	}
	kern, closeK, err := nas.DefaultKernels(cfg.Threads)
	if err != nil {
		return nil, err
	}
	defer closeK()
	logf := func(format string, a ...any) {
		if cfg.Log != nil {
			fmt.Fprintf(cfg.Log, format+"\n", a...)
		}
	}
	res := &Result{ParamsBefore: m.NumParams(), DenseBytes: 4 * m.NumParams(), Recipe: r.String(), Sparse: map[string]bool{}, Float: map[string]bool{}}
	if res.ValAccBefore, err = EvaluatePlan(m, val, kern); err != nil {
		return nil, err
	}
	logf("compress %s with %s: %d params, val accuracy %.4f", m.Arch.Name, res.Recipe, res.ParamsBefore, res.ValAccBefore)
	cur, err := cloneModel(m)
	if err != nil {
		return nil, err
	}
	tc := cfg.Train
	tc.Epochs = cfg.FineTuneEpochs
	if r.Distill != nil {
		loss, err := distillLoss(r.Distill, m, kern)
		if err != nil {
			return nil, err
		}
		tc.Loss = loss
	}
	stage := func(name string) error {
		acc, err := EvaluatePlan(cur, val, kern)
		if err != nil {
			return err
		}
		res.Stages = append(res.Stages, StageReport{Stage: name, ValAcc: acc, Params: cur.NumParams(), Seconds: time.Since(start).Seconds()})
		logf("  %-28s val accuracy %.4f, %d params (%.0fs)", name, acc, cur.NumParams(), time.Since(start).Seconds())
		return nil
	}
	masks := map[*nas.Param][]bool{}
	fineTune := func(extra nas.TrainConfig) error {
		if cfg.NoFineTune {
			return nil
		}
		c := tc
		c.WeightTransform, c.GradHook, c.AfterStep = extra.WeightTransform, extra.GradHook, extra.AfterStep
		after := c.AfterStep
		c.AfterStep = func(mm *nas.Model, step int) error {
			for p, mask := range masks {
				ApplyMask(p.Data, mask)
			}
			if after != nil {
				return after(mm, step)
			}
			return nil
		}
		c.Seed += uint64(len(res.Stages)) // a different shuffle per step
		_, err := nas.Train(ctx, cur, train, nil, c, nil)
		return err
	}
	choice := func(layer string) LayerChoice { return r.For(strings.TrimSuffix(layer, "_lr")) }

	// 1. Channel pruning.
	keep := map[string][]int{}
	var scores map[string][]float64
	for _, nd := range weightNodes(cur) {
		c := choice(nd.Layer.Name)
		if c.Channels == 0 {
			continue
		}
		if scores == nil {
			if scores, err = channelScores(ctx, cur, r, train, tc, cfg); err != nil {
				return nil, err
			}
		}
		k, err := KeepChannels(scores[nd.Layer.Name], c.Channels, max(c.Group, 1))
		if err != nil {
			return nil, fmt.Errorf("layer %q: %w", nd.Layer.Name, err)
		}
		keep[nd.Layer.Name] = k
	}
	if len(keep) > 0 {
		if cur, err = RemoveChannels(cur, keep); err != nil {
			return nil, err
		}
		if err := fineTune(nas.TrainConfig{}); err != nil {
			return nil, err
		}
		if err := stage("channel pruning"); err != nil {
			return nil, err
		}
	}

	// 2. Low-rank.
	factored := false
	for _, nd := range weightNodes(cur) {
		name := nd.Layer.Name
		c := choice(name)
		if c.Rank == 0 && c.Energy == 0 || strings.HasSuffix(name, "_lr") {
			continue
		}
		rank := func(sv []float64) (int, error) {
			if c.Energy != 0 {
				return RankForEnergy(sv, c.Energy)
			}
			return RankForFraction(len(sv), c.Rank)
		}
		if cur, err = Factorize(cur, name, rank); err != nil {
			return nil, err
		}
		factored = true
	}
	if factored {
		if err := fineTune(nas.TrainConfig{}); err != nil {
			return nil, err
		}
		if err := stage("low-rank"); err != nil {
			return nil, err
		}
	}

	// 3. Unstructured pruning, gradually.
	for round := 1; round <= cfg.PruneRounds; round++ {
		anyPruned := false
		for _, nd := range weightNodes(cur) {
			c := choice(nd.Layer.Name)
			if c.Prune == 0 {
				continue
			}
			anyPruned = true
			w := cur.Param(nd.Layer.Name + ".w")
			s := GradualSparsity(round, 0, cfg.PruneRounds, 1, 0, c.Prune)
			th, err := MagnitudeThreshold([][]float32{w.Data}, s)
			if err != nil {
				return nil, fmt.Errorf("layer %q: %w", nd.Layer.Name, err)
			}
			masks[w] = PruneMagnitude(w.Data, th)
		}
		if !anyPruned {
			break
		}
		if err := fineTune(nas.TrainConfig{}); err != nil {
			return nil, err
		}
		if err := stage(fmt.Sprintf("pruning round %d/%d", round, cfg.PruneRounds)); err != nil {
			return nil, err
		}
	}

	// 4. Sharing and quantization.
	opt := EncodeOptions{Formats: map[string]TensorFormat{}, Huffman: r.Huffman}
	shared := map[*nas.Param]*Shared{}
	qat := map[string]int{}
	for _, nd := range weightNodes(cur) {
		name := nd.Layer.Name
		c := choice(name)
		w := cur.Param(name + ".w")
		switch {
		case c.Share > 0:
			s, err := ShareWeights(w.Data, 1<<c.Share, 50)
			if err != nil {
				return nil, fmt.Errorf("layer %q: %w", name, err)
			}
			copy(w.Data, s.Values())
			shared[w] = s
			opt.Formats[w.Name] = TensorFormat{Share: c.Share}
		case c.Bits == 16:
			opt.Formats[w.Name] = TensorFormat{Bits: 16}
		case c.Bits > 0:
			opt.Formats[w.Name] = TensorFormat{Bits: c.Bits}
			if c.Bits < 8 {
				qat[w.Name] = c.Bits
			}
		}
		if c.Share > 0 || c.Bits > 0 {
			if b := cur.Param(name + ".b"); b != nil {
				opt.Formats[b.Name] = TensorFormat{Bits: 16}
			}
		}
	}
	if len(shared) > 0 || len(qat) > 0 {
		lr := float32(tc.LR)
		ft := nas.TrainConfig{}
		if len(qat) > 0 {
			ft.WeightTransform = func(p *nas.Param, w []float32) bool {
				bits, ok := qat[p.Name]
				if !ok {
					return false
				}
				copy(w, p.Data)
				return FakeQuant(w, p.Shape[0], bits) == nil
			}
		}
		if len(shared) > 0 {
			counts := map[*nas.Param][]int{}
			for p, s := range shared {
				c := make([]int, len(s.Codebook))
				for _, a := range s.Assign {
					if a >= 0 {
						c[a]++
					}
				}
				counts[p] = c
			}
			ft.GradHook = func(mm *nas.Model) error {
				for p, s := range shared {
					g, err := s.CodebookGrad(p.Grad)
					if err != nil {
						return err
					}
					// The exact gradient of c_j sums over its cluster; its
					// curvature grows with the cluster size too, so the step
					// divides by it (a diagonal preconditioner) to stay
					// stable for clusters of thousands of weights.
					for j := range s.Codebook {
						s.Codebook[j] -= lr * g[j] / float32(max(counts[p][j], 1))
					}
					clear(p.Grad) // the codebook moves; the weights follow in AfterStep
				}
				return nil
			}
			ft.AfterStep = func(mm *nas.Model, _ int) error {
				for p, s := range shared {
					copy(p.Data, s.Values())
				}
				return nil
			}
		}
		if err := fineTune(ft); err != nil {
			return nil, err
		}
		// Weight decay and momentum cannot move shared weights off their
		// codebook: AfterStep rewrote them after every step.
		if err := stage("sharing/QAT fine-tuning"); err != nil {
			return nil, err
		}
	}
	if err := finishQuant(cur, opt, train, cfg.CalibSamples, kern); err != nil {
		return nil, err
	}

	// 5. Encode, and take the decoded model as the result.
	enc, err := Encode(cur, opt)
	if err != nil {
		return nil, err
	}
	final, err := Decode(cur.Arch, enc)
	if err != nil {
		return nil, fmt.Errorf("compress: the encoded model does not decode: %w", err)
	}
	if !cfg.NoSparseKernels || !cfg.KeepInt8 {
		// Decide at batch 1 on one thread, the setting latency is reported in.
		k1, close1, err := nas.DefaultKernels(1)
		if err != nil {
			return nil, err
		}
		if !cfg.KeepInt8 {
			err = chooseFloat(final, k1, res.Float)
		}
		if err == nil && !cfg.NoSparseKernels {
			err = chooseSparse(final, k1, res.Sparse)
		}
		close1()
		if err != nil {
			return nil, err
		}
	}
	res.Model, res.Encoded, res.Bytes, res.Options, res.Arch = final, enc, len(enc), opt, final.Arch
	res.Ratio = float64(res.DenseBytes) / float64(res.Bytes)
	res.ParamsAfter = final.NumParams()
	if res.ValAccAfter, err = EvaluatePlan(final, val, kern); err != nil {
		return nil, err
	}
	res.Layers = layerReports(final, opt, res.Sparse)
	for _, l := range res.Layers {
		res.NonZero += int64(l.NonZero)
	}
	res.Seconds = time.Since(start).Seconds()
	logf("  %-28s val accuracy %.4f, %d bytes (%.1f× smaller than %d), %.0fs", "encoded", res.ValAccAfter, res.Bytes, res.Ratio, res.DenseBytes, res.Seconds)
	return res, nil
}

// weightNodes lists the conv and linear nodes of m in order.
func weightNodes(m *nas.Model) []*nas.Node {
	var out []*nas.Node
	for _, nd := range m.Graph.Nodes {
		if nd.Weighted() {
			out = append(out, nd)
		}
	}
	return out
}

// cloneModel returns an independent copy of m's architecture and tensors.
func cloneModel(m *nas.Model) (*nas.Model, error) {
	c, err := nas.NewModel(m.Arch.Clone(), 0)
	if err != nil {
		return nil, err
	}
	c.CopyWeightsFrom(m)
	return c, nil
}

// finishQuant rounds fp16 tensors and quantizes the integer layers with
// activation ranges calibrated on n training images.
func finishQuant(m *nas.Model, opt EncodeOptions, train *data.Set, n int, k accel.Kernels) error {
	var intLayers []string
	for name, f := range opt.Formats {
		p := m.Param(name)
		switch {
		case f.Bits == 16:
			for i, v := range p.Data {
				p.Data[i] = Float16ToFloat32(Float32ToFloat16(v))
			}
		case f.Bits > 0:
			intLayers = append(intLayers, strings.TrimSuffix(name, ".w"))
		}
	}
	if len(intLayers) == 0 {
		return nil
	}
	sort.Strings(intLayers)
	ranges, err := CalibrateInputs(m, train.Subset(n), intLayers, k)
	if err != nil {
		return err
	}
	for _, layer := range intLayers {
		scale, zero := ranges[layer].Params()
		q, err := quantizeWeights(m.Param(layer+".w"), opt.Formats[layer+".w"].Bits, scale, zero)
		if err != nil {
			return err
		}
		m.Quant[layer] = q
	}
	return nil
}

// CalibrateInputs runs set through m's lowered plan and returns the range
// of the input activations of each named conv or linear layer.
func CalibrateInputs(m *nas.Model, set *data.Set, layers []string, k accel.Kernels) (map[string]*ActRange, error) {
	plan, err := nas.Lower(m)
	if err != nil {
		return nil, err
	}
	// Quantized layers must calibrate on float inputs: run without the
	// integer forms.
	for i := range plan.Ops {
		plan.Ops[i].Quant, plan.Ops[i].Sparse = nil, nil
	}
	out := map[string]*ActRange{}
	const batch = 128
	for _, layer := range layers {
		var op *accel.Op
		for i := range plan.Ops {
			if plan.Ops[i].Name == layer {
				op = &plan.Ops[i]
			}
		}
		if op == nil {
			return nil, fmt.Errorf("calibrate: layer %q is not in the plan", layer)
		}
		sub := *plan
		sub.Output = op.In[0]
		r := &ActRange{}
		if sub.Output == sub.Input {
			// The layer reads the input: normalised, as it will once
			// quantized (the normalisation is folded only into float
			// layers).
			x := set.Images
			if nz := m.Arch.Normalize; nz != nil {
				x = append([]float32(nil), x...)
				nz.Apply(x, set.SampleSize()/len(nz.Mean))
			}
			r.Observe(x)
			out[layer] = r
			continue
		}
		for from := 0; from < set.N; from += batch {
			n := min(batch, set.N-from)
			prog, err := accel.NewHostProgram(k, &sub, n)
			if err != nil {
				return nil, fmt.Errorf("calibrate %q: %w", layer, err)
			}
			y := make([]float32, n*prog.OutputSize())
			if err := prog.Run(set.Images[from*set.SampleSize():(from+n)*set.SampleSize()], y); err != nil {
				return nil, fmt.Errorf("calibrate %q: %w", layer, err)
			}
			prog.Close()
			r.Observe(y)
		}
		out[layer] = r
	}
	return out, nil
}

// EvaluatePlan lowers m and returns its top-1 accuracy on set, run through
// the host program on k (so int8 and sparse layers run as deployed).
func EvaluatePlan(m *nas.Model, set *data.Set, k accel.Kernels) (float64, error) {
	plan, err := nas.Lower(m)
	if err != nil {
		return 0, err
	}
	const batch = 256
	var progs = map[int]accel.Program{}
	defer func() {
		for _, p := range progs {
			p.Close()
		}
	}()
	correct := 0
	classes := plan.Tensors[plan.Output].Size()
	for from := 0; from < set.N; from += batch {
		n := min(batch, set.N-from)
		prog := progs[n]
		if prog == nil {
			if prog, err = accel.NewHostProgram(k, plan, n); err != nil {
				return 0, err
			}
			progs[n] = prog
		}
		y := make([]float32, n*classes)
		if err := prog.Run(set.Images[from*set.SampleSize():(from+n)*set.SampleSize()], y); err != nil {
			return 0, err
		}
		for i := 0; i < n; i++ {
			row := y[i*classes : (i+1)*classes]
			best := 0
			for j, v := range row {
				if v > row[best] {
					best = j
				}
			}
			if int32(best) == set.Labels[from+i] {
				correct++
			}
		}
	}
	return float64(correct) / float64(set.N), nil
}

// CSR returns the rows×(len(w)/rows) matrix w in CSR form.
func CSR(w []float32, rows int) *accel.SparseWeights {
	cols := len(w) / rows
	s := &accel.SparseWeights{Rows: rows, Cols: cols, RowPtr: make([]int32, 1, rows+1)}
	for r := 0; r < rows; r++ {
		for c, v := range w[r*cols : (r+1)*cols] {
			if v != 0 {
				s.ColIdx = append(s.ColIdx, int32(c))
				s.Val = append(s.Val, v)
			}
		}
		s.RowPtr = append(s.RowPtr, int32(len(s.Val)))
	}
	return s
}

// chooseSparse gives each float conv or linear layer with at least half
// its weights zero the sparse form when its batch-1 time on the sparse
// kernels is below the dense one (median of repeated runs), and records
// the choice in chosen.
func chooseSparse(m *nas.Model, k accel.Kernels, chosen map[string]bool) error {
	sk, ok := k.(accel.SparseKernels)
	if !ok {
		return nil
	}
	for _, nd := range weightNodes(m) {
		name := nd.Layer.Name
		w := m.Param(name + ".w")
		if m.Quant[name] != nil || Sparsity(w.Data) < 0.5 {
			continue
		}
		s := CSR(w.Data, w.Shape[0])
		var b []float32
		if bp := m.Param(name + ".b"); bp != nil {
			b = bp.Data
		}
		var dense, sparse func() error
		if nd.Kind == nas.TypeConv {
			p := nd.Conv
			p.N = 1
			nx, _, ny := p.Sizes()
			x, y := randInput(nx), make([]float32, ny)
			dense = func() error { return k.Conv2D(p, x, w.Data, b, nd.Act, y) }
			sparse = func() error { return sk.SpConv2D(p, x, s, b, nd.Act, y) }
		} else {
			in, out := w.Shape[1], w.Shape[0]
			x, y := randInput(in), make([]float32, out)
			dense = func() error {
				if err := k.Sgemm(false, true, 1, out, in, 1, x, in, w.Data, in, 0, y, out); err != nil {
					return err
				}
				return k.BiasAct(1, out, 1, y, b, nd.Act, y)
			}
			sparse = func() error { return sk.SpLinear(1, in, out, x, s, b, nd.Act, y) }
		}
		td, err := medianTime(dense)
		if err != nil {
			return err
		}
		ts, err := medianTime(sparse)
		if err != nil {
			return err
		}
		if ts < td {
			m.Sparse[name] = s
			chosen[name] = true
		}
	}
	return nil
}

// chooseFloat moves each quantized conv layer of m to the float kernels
// (dropping m.Quant[layer]; the decoded model holds the dequantized
// weights Scale·Q) when m's whole lowered plan runs no slower at batch 1
// that way, and records it in chosen. Layers are tried in order, each
// against the plan as decided so far. The whole plan is timed, not the op
// alone, because a float conv also lets lowering fold the batch norm that
// follows it (an int8 conv keeps its batch norm as a separate op) and fuse
// activations. The int8 kernels pay for long reductions over many output
// channels; the small depthwise, grouped, 1×1 and stem convolutions of
// compact blocks run faster in float, where the input needs no quantizing
// pass. Linear layers keep their int8 form (QLinear is at least even with
// Sgemm at batch 1).
func chooseFloat(m *nas.Model, k accel.Kernels, chosen map[string]bool) error {
	if _, ok := k.(accel.Int8Kernels); !ok {
		return nil
	}
	planTime := func() (time.Duration, error) {
		plan, err := nas.Lower(m)
		if err != nil {
			return 0, err
		}
		prog, err := accel.NewHostProgram(k, plan, 1)
		if err != nil {
			return 0, err
		}
		defer prog.Close()
		x, y := randInput(prog.InputSize()), make([]float32, prog.OutputSize())
		return medianTime(func() error { return prog.Run(x, y) })
	}
	for _, nd := range weightNodes(m) {
		name := nd.Layer.Name
		q := m.Quant[name]
		if q == nil || nd.Kind != nas.TypeConv {
			continue
		}
		tq, err := planTime()
		if err != nil {
			return fmt.Errorf("layer %q: %w", name, err)
		}
		delete(m.Quant, name)
		tf, err := planTime()
		if err != nil {
			return fmt.Errorf("layer %q: %w", name, err)
		}
		if tq < tf {
			m.Quant[name] = q
		} else {
			chosen[name] = true
		}
	}
	return nil
}

func randInput(n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(math.Sin(float64(i)))
	}
	return x
}

// medianTime runs f a few times for warm-up and returns the median of 31
// timed runs.
func medianTime(f func() error) (time.Duration, error) {
	for i := 0; i < 5; i++ {
		if err := f(); err != nil {
			return 0, err
		}
	}
	t := make([]time.Duration, 31)
	for i := range t {
		s := time.Now()
		if err := f(); err != nil {
			return 0, err
		}
		t[i] = time.Since(s)
	}
	sort.Slice(t, func(a, b int) bool { return t[a] < t[b] })
	return t[len(t)/2], nil
}

func layerReports(m *nas.Model, opt EncodeOptions, sparse map[string]bool) []LayerReport {
	var out []LayerReport
	for _, nd := range weightNodes(m) {
		name := nd.Layer.Name
		w := m.Param(name + ".w")
		lr := LayerReport{Layer: name, Params: len(w.Data), Format: "fp32", Kernel: "dense"}
		if b := m.Param(name + ".b"); b != nil {
			lr.Params += len(b.Data)
		}
		for _, v := range w.Data {
			if v != 0 {
				lr.NonZero++
			}
		}
		f := opt.Formats[w.Name]
		switch {
		case f.Share > 0:
			lr.Format = fmt.Sprintf("shared-%dbit", f.Share)
		case f.Bits > 0:
			lr.Format = map[int]string{16: "fp16", 8: "int8", 7: "int7", 4: "int4", 2: "int2", 1: "binary"}[f.Bits]
		}
		switch {
		case m.Quant[name] != nil:
			lr.Kernel = "int8"
		case sparse[name]:
			lr.Kernel = "sparse"
		}
		out = append(out, lr)
	}
	return out
}
