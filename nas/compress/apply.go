package compress

import (
	"context"
	"fmt"
	"io"
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
	// RecalibrateBN, with NoFineTune, takes the fine-tuning's place after
	// each step that changes the weights: the batch-norm running
	// statistics are recomputed on the first RecalibrateBN training
	// images (0: left as they are). Pruning, sharing or a narrower layer
	// shift what every later layer sees, and statistics collected before
	// the change no longer normalise it: a sub-network of a supernet,
	// pruned to half its weights, scored 40% with its old statistics and
	// 94% with recalibrated ones.
	RecalibrateBN int
	// PruneRounds of the automated gradual pruning schedule reach the
	// recipe's sparsity, each followed by fine-tuning; default 3.
	PruneRounds int
	// CalibSamples training images calibrate the int8 activation ranges;
	// default 512.
	CalibSamples int
	// Threads for the fine-tuning and evaluation kernels (0: all cores).
	Threads int
	// Log, when not nil, receives one line per step.
	Log io.Writer
	// FinalOnly evaluates the compressed model alone: ValAccBefore and
	// the stages' accuracies are left 0 (a caller that ranks many
	// candidates by ValAccAfter saves a validation pass per stage).
	FinalOnly bool
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
	// Kernel is the form the layer's plan op carries for the backend:
	// int8 (accel.Op.Quant), sparse (accel.Op.Sparse, at least SparseMin
	// of the weights zero, not int8) or dense. The backend decides at
	// compile time which kernels run it on its device.
	Kernel string `json:"kernel"`
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
	// Model is the compressed model as Decode restores it from Encoded:
	// weights as stored, the int8 forms in m.Quant and the sparse ones in
	// m.Sparse, which nas.Lower carries into the plan. It says what the
	// model is; which kernels run it is the backend's choice.
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
	// ValAccBefore/After are measured on the lowered plans (the int8 and
	// sparse forms included) over the validation set.
	ValAccBefore float64       `json:"val_accuracy_before"`
	ValAccAfter  float64       `json:"val_accuracy_after"`
	Layers       []LayerReport `json:"layers"`
	Stages       []StageReport `json:"stages"`
	Recipe       string        `json:"recipe"`
	// Notes say what the recipe asked that was left alone, and why (a
	// global channel ratio does not narrow the network's outputs).
	Notes   []string      `json:"notes,omitempty"`
	Options EncodeOptions `json:"-"`
	Seconds float64       `json:"seconds"`
	Arch    *nas.Arch     `json:"arch"`
}

// A stage is one named step of Apply: it changes the working model (and
// fine-tunes it) or leaves it as it is when the recipe asks nothing of it.
type stage struct {
	name string
	run  func(*applier) error
}

// stages are Apply's steps, in the order of DESIGN.md's trial data flow,
// with unstructured pruning placed before sharing/quantization as in Deep
// Compression (clustering only the surviving weights is what makes
// sharing pay).
var stages = []stage{
	{"channel pruning", (*applier).pruneChannels},
	{"low-rank", (*applier).lowRank},
	{"pruning", (*applier).pruneWeights},
	{"sharing/quantization", (*applier).shareQuantize},
	{"encoding", (*applier).encode},
}

// applier is what Apply's stages share: the recipe, the data, the model
// being compressed (cur), the pruning masks held through fine-tuning, the
// encoding options and the result filled in as they go.
type applier struct {
	ctx        context.Context
	cfg        Config
	r          *Recipe
	train, val *data.Set
	kern       accel.Kernels
	tc         nas.TrainConfig // fine-tuning
	cur        *nas.Model
	masks      map[*nas.Param][]bool
	opt        EncodeOptions
	res        *Result
	start      time.Time
}

// Apply compresses a copy of m with recipe r, fine-tuning on train and
// measuring on val, through its stages:
//
//  1. channel pruning (physical, RemoveChannels) by the layer's criterion,
//     then fine-tuning; a channel ratio that a layer inherits from the
//     recipe's default leaves alone the layers whose width is fixed (the
//     network's outputs, layers feeding a residual add, a channel shuffle
//     or a grouped convolution, depthwise and grouped convolutions
//     themselves) and says so in Result.Notes;
//  2. low-rank factorisation (Factorize), then fine-tuning;
//  3. unstructured magnitude pruning over PruneRounds rounds of the
//     automated gradual schedule, fine-tuning after each with the pruned
//     weights held at zero;
//  4. weight sharing (k-means, then codebook fine-tuning with summed
//     gradients) or quantization (fake-quant fine-tuning with a
//     straight-through estimator below 8 bits, calibrated activation
//     ranges); fp16 storage for 16 bits;
//  5. encoding (Encode): the byte count is the length of the serialisation,
//     and the result's model is the one Decode restores from it, int8 and
//     sparse forms included.
//
// Nothing is timed: the result is a function of m, r, the data and cfg
// (the same inputs and seed give the same bytes), and which kernels run
// the int8 and sparse forms is the backend's decision at compile time.
// With r.Distill set every fine-tuning step uses the distillation loss.
// m itself is not changed.
func Apply(ctx context.Context, m *nas.Model, r *Recipe, train, val *data.Set, cfg Config) (*Result, error) {
	cfg = cfg.withDefaults()
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
	a := &applier{ctx: ctx, cfg: cfg, r: r, train: train, val: val, kern: kern, masks: map[*nas.Param][]bool{},
		opt:   EncodeOptions{Formats: map[string]TensorFormat{}, Huffman: r.Huffman},
		res:   &Result{ParamsBefore: m.NumParams(), DenseBytes: 4 * m.NumParams(), Recipe: r.String()},
		start: time.Now()}
	if !cfg.FinalOnly {
		if a.res.ValAccBefore, err = EvaluatePlan(m, val, kern); err != nil {
			return nil, err
		}
	}
	a.logf("compress %s with %s: %d params, val accuracy %.4f", m.Arch.Name, a.res.Recipe, a.res.ParamsBefore, a.res.ValAccBefore)
	if a.cur, err = cloneModel(m); err != nil {
		return nil, err
	}
	a.tc = cfg.Train
	a.tc.Epochs = cfg.FineTuneEpochs
	if r.Distill != nil {
		if a.tc.Loss, err = DistillLossFunc(r.Distill, m, kern); err != nil {
			return nil, err
		}
	}
	for _, st := range stages {
		if err := st.run(a); err != nil {
			return nil, err
		}
	}
	a.res.Seconds = time.Since(a.start).Seconds()
	a.logf("  %-28s val accuracy %.4f, %d bytes (%.1f× smaller than %d), %.0fs", "encoded", a.res.ValAccAfter, a.res.Bytes, a.res.Ratio, a.res.DenseBytes, a.res.Seconds)
	return a.res, nil
}

func (a *applier) logf(format string, args ...any) {
	if a.cfg.Log != nil {
		fmt.Fprintf(a.cfg.Log, format+"\n", args...)
	}
}

// choice is the recipe's choice for a layer (a low-rank factor "x_lr"
// follows its layer's).
func (a *applier) choice(layer string) LayerChoice { return a.r.For(strings.TrimSuffix(layer, "_lr")) }

// report evaluates the working model and records the step.
func (a *applier) report(step string) error {
	var acc float64
	var err error
	if !a.cfg.FinalOnly {
		if acc, err = EvaluatePlan(a.cur, a.val, a.kern); err != nil {
			return err
		}
	}
	el := time.Since(a.start).Seconds()
	a.res.Stages = append(a.res.Stages, StageReport{Stage: step, ValAcc: acc, Params: a.cur.NumParams(), Seconds: el})
	a.logf("  %-28s val accuracy %.4f, %d params (%.0fs)", step, acc, a.cur.NumParams(), el)
	return nil
}

// fineTune trains the working model for the fine-tuning epochs with the
// hooks of extra, holding the pruned weights at zero; the shuffle differs
// per step.
func (a *applier) fineTune(extra nas.TrainConfig) error {
	if a.cfg.NoFineTune {
		return a.recalibrateBN(extra.WeightTransform)
	}
	c := a.tc
	c.WeightTransform, c.GradHook = extra.WeightTransform, extra.GradHook
	after := extra.AfterStep
	c.AfterStep = func(mm *nas.Model, step int) error {
		for p, mask := range a.masks {
			ApplyMask(p.Data, mask)
		}
		if after != nil {
			return after(mm, step)
		}
		return nil
	}
	c.Seed += uint64(len(a.res.Stages))
	_, err := nas.Train(a.ctx, a.cur, a.train, nil, c, nil)
	return err
}

// recalibrateBN recomputes the working model's batch-norm statistics on
// the first RecalibrateBN training images, the forward passes seeing the
// weights as fine-tuning would (wt: fake quantization), when the config
// asks for it.
func (a *applier) recalibrateBN(wt nas.WeightTransform) error {
	n := min(a.cfg.RecalibrateBN, a.train.N)
	if n <= 0 {
		return nil
	}
	prev := a.cur.WeightTransform
	a.cur.WeightTransform = wt
	defer func() { a.cur.WeightTransform = prev }()
	return a.cur.RecalibrateBN(a.train.Images[:n*a.train.SampleSize()], n, nas.EvalBatch)
}

// pruneChannels is stage 1: channel pruning by each layer's criterion.
func (a *applier) pruneChannels() error {
	var layers []string
	for _, nd := range weightNodes(a.cur) {
		name := nd.Layer.Name
		if a.choice(name).Channels == 0 {
			continue
		}
		if !a.r.setsChannels(name) {
			if why := fixedWidth(a.cur.Graph, nd); why != "" {
				a.res.Notes = append(a.res.Notes, fmt.Sprintf("channel pruning left layer %q alone: %s (name the layer in the recipe to insist)", name, why))
				continue
			}
		}
		layers = append(layers, name)
	}
	if len(layers) == 0 {
		return nil
	}
	scores, err := channelScores(a.ctx, a.cur, layers, a.r, a.train, a.tc, a.cfg)
	if err != nil {
		return err
	}
	keep := map[string][]int{}
	for _, name := range layers {
		c := a.choice(name)
		if keep[name], err = KeepChannels(scores[name], c.Channels, max(c.Group, 1)); err != nil {
			return fmt.Errorf("layer %q: %w", name, err)
		}
	}
	if a.cur, err = RemoveChannels(a.cur, keep); err != nil {
		return err
	}
	if err := a.fineTune(nas.TrainConfig{}); err != nil {
		return err
	}
	return a.report("channel pruning")
}

// lowRank is stage 2: low-rank factorisation of the layers that ask for it.
func (a *applier) lowRank() error {
	factored := false
	for _, nd := range weightNodes(a.cur) {
		name := nd.Layer.Name
		c := a.choice(name)
		if c.Rank == 0 && c.Energy == 0 || strings.HasSuffix(name, "_lr") {
			continue
		}
		rank := func(sv []float64) (int, error) {
			if c.Energy != 0 {
				return RankForEnergy(sv, c.Energy)
			}
			return RankForFraction(len(sv), c.Rank)
		}
		var err error
		if a.cur, err = Factorize(a.cur, name, rank); err != nil {
			return err
		}
		factored = true
	}
	if !factored {
		return nil
	}
	if err := a.fineTune(nas.TrainConfig{}); err != nil {
		return err
	}
	return a.report("low-rank")
}

// pruneWeights is stage 3: unstructured magnitude pruning, gradually over
// PruneRounds rounds.
func (a *applier) pruneWeights() error {
	rounds := a.cfg.PruneRounds
	for round := 1; round <= rounds; round++ {
		pruned := false
		for _, nd := range weightNodes(a.cur) {
			c := a.choice(nd.Layer.Name)
			if c.Prune == 0 {
				continue
			}
			pruned = true
			w := a.cur.Param(nd.Layer.Name + ".w")
			th, err := MagnitudeThreshold([][]float32{w.Data}, GradualSparsity(round, 0, rounds, 1, 0, c.Prune))
			if err != nil {
				return fmt.Errorf("layer %q: %w", nd.Layer.Name, err)
			}
			a.masks[w] = PruneMagnitude(w.Data, th)
		}
		if !pruned {
			return nil
		}
		if err := a.fineTune(nas.TrainConfig{}); err != nil {
			return err
		}
		if err := a.report(fmt.Sprintf("pruning round %d/%d", round, rounds)); err != nil {
			return err
		}
	}
	return nil
}

// shareQuantize is stage 4: k-means weight sharing or quantization, each
// with its fine-tuning (codebook gradients, fake quantization below 8
// bits), then fp16 rounding and the int8 forms with calibrated input
// ranges.
func (a *applier) shareQuantize() error {
	cur, opt := a.cur, a.opt
	shared := map[*nas.Param]*Shared{}
	qat := map[string]int{}
	for _, nd := range weightNodes(cur) {
		name := nd.Layer.Name
		c := a.choice(name)
		w := cur.Param(name + ".w")
		switch {
		case c.Share > 0:
			s, err := ShareWeights(w.Data, 1<<c.Share, 50)
			if err != nil {
				return fmt.Errorf("layer %q: %w", name, err)
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
		if err := a.fineTune(shareQuantTraining(shared, qat, float32(a.tc.LR))); err != nil {
			return err
		}
		// Weight decay and momentum cannot move shared weights off their
		// codebook: AfterStep rewrote them after every step.
		if err := a.report("sharing/QAT fine-tuning"); err != nil {
			return err
		}
	}
	return finishQuant(cur, opt, a.train, a.cfg.CalibSamples, a.kern)
}

// shareQuantTraining returns the fine-tuning hooks of sharing and
// quantization-aware training: fake quantization of the qat tensors in the
// forward pass (straight-through gradients), and for shared tensors a
// codebook step from the summed gradients of each cluster after which the
// weights follow their codebook.
func shareQuantTraining(shared map[*nas.Param]*Shared, qat map[string]int, lr float32) nas.TrainConfig {
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
	if len(shared) == 0 {
		return ft
	}
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
			// divides by it (a diagonal preconditioner) to stay stable
			// for clusters of thousands of weights.
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
	return ft
}

// encode is stage 5: the model encoded, and the result the model its
// bytes decode to.
func (a *applier) encode() error {
	res := a.res
	enc, err := Encode(a.cur, a.opt)
	if err != nil {
		return err
	}
	final, err := Decode(a.cur.Arch, enc)
	if err != nil {
		return fmt.Errorf("compress: the encoded model does not decode: %w", err)
	}
	res.Model, res.Encoded, res.Bytes, res.Options, res.Arch = final, enc, len(enc), a.opt, final.Arch
	res.Ratio = float64(res.DenseBytes) / float64(res.Bytes)
	res.ParamsAfter = final.NumParams()
	if res.ValAccAfter, err = EvaluatePlan(final, a.val, a.kern); err != nil {
		return err
	}
	res.Layers = layerReports(final, a.opt)
	for _, l := range res.Layers {
		res.NonZero += int64(l.NonZero)
	}
	return nil
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

func layerReports(m *nas.Model, opt EncodeOptions) []LayerReport {
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
		case m.Sparse[name] != nil:
			lr.Kernel = "sparse"
		}
		out = append(out, lr)
	}
	return out
}
