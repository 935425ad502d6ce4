// Package onnx exports hwnas inference plans (accel.Plan) as ONNX models and
// runs them in onnxruntime in the same process.
//
// The exporter works from the lowered plan, not from the nas graph: batch
// norm is already folded and activations fused, channel-pruned and low-rank
// models are just smaller or extra ops, and compressed weights travel with
// each op (Op.Quant, Op.Sparse). Which ONNX operators a plan op becomes is
// defined by the layer type that lowers to it (nas.EmitONNX, in
// nas/layer_*.go); this package provides the builder they write with
// (value names, initializers, the int8, fp16, packed and sparse weight
// forms) and the file around them. The file is written with our own protobuf
// writer (proto.go) at opset 17, IR version 8.
//
// The model has one input "input", float32 [N, shape of the plan's input]
// with a symbolic batch dimension N (for MNIST models N×1×28×28, pixels in
// [0, 1]), and one output "logits".
//
// int8 ops are written in the QDQ form onnxruntime fuses into integer
// kernels (QLinearConv, QGemm): int8 weight initializers with
// per-output-channel scales feed DequantizeLinear (axis 0), and the op's
// input goes through QuantizeLinear/DequantizeLinear with the uint8 scale
// and zero point the op was calibrated with, so the file computes exactly
// what hwnas's int8 kernels compute (up to rounding ties). Weights that are
// all binary16 values (fp16 storage) are FLOAT16 initializers cast to
// float. 1-, 2- and 4-bit weights are stored packed (packedInit), and
// pruned weights, when that is smaller, as their non-zeros with 1-byte
// relative positions (weightInit); standard ops expand both, and runtimes
// fold them when loading. What ONNX cannot carry (sub-8-bit arithmetic,
// shared-weight codebooks, sparsity as compute, entropy coding) is listed by
// Notes and written into the model's metadata (hwnas.export_notes), never
// dropped silently.
package onnx

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	"hwnas/accel"
	"hwnas/internal/atomicfile"
	"hwnas/nas"
	"hwnas/nas/compress"
)

const (
	// Opset is the ai.onnx operator set version the exporter writes.
	// 17 is the newest that Debian's python3-onnx checker (1.12) knows;
	// HardSwish needs 14 and per-channel DequantizeLinear 13.
	Opset = 17
	// IRVersion is the ONNX IR version that goes with Opset.
	IRVersion = 8

	// InputName and OutputName are the names of the graph's input and
	// output.
	InputName  = "input"
	OutputName = "logits"
	// BatchDim is the symbolic name of the dynamic batch dimension.
	BatchDim = "N"
)

// Metadata describes where a model comes from; it goes into the model's
// producer fields and metadata_props.
type Metadata struct {
	Producer        string // producer_name; "hwnas" when empty
	ProducerVersion string
	Doc             string // graph doc_string
	Arch            string // architecture JSON → metadata_props "hwnas.arch"
	Recipe          string // compression recipe → "hwnas.recipe"
	// Figures are measured results (accuracy, latency_us, bytes, ...),
	// written as "hwnas.<key>" with the shortest exact decimal form.
	Figures map[string]float64
	// Props are further key/value pairs, written as given.
	Props map[string]string
	// Uncarried lists what the caller knows the file does not represent
	// and the plan cannot show (Huffman coding of the weights, say), each a
	// sentence; Notes reports them as given, after its own.
	Uncarried []string
}

// Export encodes p as an ONNX model. It validates the plan first and
// returns an error naming the op when an op has no ONNX form.
func Export(p *accel.Plan, meta Metadata) ([]byte, error) {
	if p == nil {
		return nil, errors.New("onnx: nil plan")
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("onnx: %w", err)
	}
	b := &builder{plan: p, names: make([]string, len(p.Tensors)), inits: map[string]bool{}}
	if err := b.build(); err != nil {
		return nil, fmt.Errorf("onnx: plan %q: %w", p.Name, err)
	}
	m := modelProto{
		irVersion:       IRVersion,
		opset:           Opset,
		producer:        meta.Producer,
		producerVersion: meta.ProducerVersion,
		graph:           b.g,
		props:           metadataProps(p, meta),
	}
	if m.producer == "" {
		m.producer = "hwnas"
	}
	m.graph.name = p.Name
	if m.graph.name == "" {
		m.graph.name = "hwnas"
	}
	m.graph.doc = meta.Doc
	return m.marshal(), nil
}

// WriteFile exports p to path through a temporary file in the same folder
// that is renamed into place, so an error never leaves a partial file (and
// never replaces an existing one). It returns the Notes of the export.
func WriteFile(path string, p *accel.Plan, meta Metadata) ([]string, error) {
	data, err := Export(p, meta)
	if err != nil {
		return nil, err
	}
	if err := atomicfile.WriteFile(path, data, 0o644); err != nil {
		return nil, fmt.Errorf("onnx: %w", err)
	}
	return Notes(p, meta), nil
}

// Notes lists what of p's compression (and meta.Uncarried) an ONNX file
// cannot carry, one sentence per op and kind, in plan order. An empty list
// means the file represents the plan exactly.
func Notes(p *accel.Plan, meta Metadata) []string {
	var notes []string
	if p != nil {
		for i := range p.Ops {
			op := &p.Ops[i]
			if op.Kind != accel.OpConv && op.Kind != accel.OpLinear {
				continue
			}
			if q := op.Quant; q != nil && q.Bits < 8 {
				if packable(q) {
					notes = append(notes, fmt.Sprintf("op %q: %d-bit weights are stored packed, %d to a byte, and unpacked to int8 by standard ops when the model loads (opset %d has no %d-bit type): runtimes compute them as int8", op.Name, q.Bits, 8/q.Bits, Opset, q.Bits))
				} else {
					notes = append(notes, fmt.Sprintf("op %q: %d-bit weights are stored as int8 (opset %d has no narrower integer type)", op.Name, q.Bits, Opset))
				}
			}
			if note := sparsityNote(op); note != "" {
				notes = append(notes, note)
			}
			if op.Quant == nil {
				if n := distinct(op.W, 256); n > 0 && n*4 <= len(op.W) {
					notes = append(notes, fmt.Sprintf("op %q: the %d weights take only %d distinct values (shared weights); they are stored as plain floats (float16 when every value is one): ONNX has no codebook format", op.Name, len(op.W), n))
				}
			}
		}
	}
	for _, u := range meta.Uncarried {
		notes = append(notes, u)
	}
	return notes
}

// sparsityNote describes how an op's pruned weights are stored, or returns
// "" when fewer than half are zero and the op carries no CSR form.
func sparsityNote(op *accel.Op) string {
	n := len(op.W)
	if n == 0 {
		return ""
	}
	var t tensorProto
	switch {
	case op.Quant != nil:
		t = int8Tensor("", nil, op.Quant.Q)
	case isFloat16(op.W):
		t = float16Tensor("", nil, op.W)
	default:
		t = floatTensor("", nil, op.W)
	}
	size := elemSize(t.dtype)
	deltas, values := sparseEntries(t, make([]byte, size))
	nnz := 0
	for i := 0; i < len(values); i += size {
		if string(values[i:i+size]) != string(make([]byte, size)) {
			nnz++
		}
	}
	if op.Sparse == nil && 2*nnz > n {
		return ""
	}
	what := fmt.Sprintf("op %q: unstructured sparsity (%d of %d weights non-zero, %.1f%%)", op.Name, nnz, n, 100*float64(nnz)/float64(n))
	if op.Quant != nil && packable(op.Quant) {
		return fmt.Sprintf("%s is stored in the packed %d-bit form, zeros included, and ONNX Conv/Gemm take dense weights", what, op.Quant.Bits)
	}
	if sb := sparseBytes(len(deltas), size); sb < len(t.raw) {
		return fmt.Sprintf("%s is stored sparse: 1-byte relative positions and values (%d bytes instead of %d), expanded by standard ops when the model loads; ONNX Conv/Gemm then run dense", what, sb, len(t.raw))
	}
	return fmt.Sprintf("%s is stored dense: sparse storage (a 1-byte position per non-zero) would not be smaller, and ONNX Conv/Gemm take dense weights", what)
}

// distinct returns the number of distinct values in w, or 0 when there are
// more than limit.
func distinct(w []float32, limit int) int {
	seen := map[float32]struct{}{}
	for _, v := range w {
		seen[v] = struct{}{}
		if len(seen) > limit {
			return 0
		}
	}
	return len(seen)
}

func metadataProps(p *accel.Plan, meta Metadata) [][2]string {
	var props [][2]string
	add := func(k, v string) {
		if v != "" {
			props = append(props, [2]string{k, v})
		}
	}
	add("hwnas.arch", meta.Arch)
	add("hwnas.recipe", meta.Recipe)
	keys := make([]string, 0, len(meta.Figures))
	for k := range meta.Figures {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		add("hwnas."+k, strconv.FormatFloat(meta.Figures[k], 'g', -1, 64))
	}
	keys = keys[:0]
	for k := range meta.Props {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		add(k, meta.Props[k])
	}
	add("hwnas.export_notes", strings.Join(Notes(p, meta), "\n"))
	return props
}

// builder turns plan ops into ONNX nodes and initializers.
type builder struct {
	plan  *accel.Plan
	g     graphProto
	names []string // current ONNX value name of each plan tensor
	inits map[string]bool
	// lastWrite is the index of the last op writing each tensor.
	lastWrite []int
}

// batched returns the ONNX shape of a plan tensor: [N, s...].
func batched(s accel.Shape) []dim {
	d := []dim{{param: BatchDim}}
	for _, v := range s {
		d = append(d, dim{value: int64(v)})
	}
	return d
}

func (b *builder) build() error {
	p := b.plan
	if p.Input == p.Output {
		return errors.New("the input is the output")
	}
	// Plans may update a tensor in place (Act, Add, BatchNorm); ONNX
	// values are assigned once, so every write gets a fresh name and the
	// last write of the output tensor is named OutputName.
	b.lastWrite = make([]int, len(p.Tensors))
	for i := range b.lastWrite {
		b.lastWrite[i] = -1
	}
	for i := range p.Ops {
		for _, t := range p.Ops[i].Out {
			b.lastWrite[t] = i
		}
	}
	b.names[p.Input] = InputName
	b.g.inputs = []valueInfo{{name: InputName, elem: dtFloat, shape: batched(p.Tensors[p.Input])}}
	b.g.outputs = []valueInfo{{name: OutputName, elem: dtFloat, shape: batched(p.Tensors[p.Output])}}
	for i := range p.Ops {
		if err := b.op(i, &p.Ops[i]); err != nil {
			return fmt.Errorf("op %d %q (%s): %w", i, p.Ops[i].Name, p.Ops[i].Kind, err)
		}
	}
	return nil
}

// define returns the ONNX name of op i's write of plan tensor t.
func (b *builder) define(i, t int) string {
	switch {
	case t == b.plan.Output && i == b.lastWrite[t]:
		return OutputName
	case b.names[t] == "":
		return "t" + strconv.Itoa(t)
	}
	return fmt.Sprintf("t%d_op%d", t, i)
}

// node appends an operator application.
func (b *builder) node(opType, name string, in, out []string, attrs ...attribute) {
	b.g.nodes = append(b.g.nodes, nodeProto{name: name, opType: opType, inputs: in, outputs: out, attrs: attrs})
}

// init adds an initializer once (shared constants are added by the first
// user).
func (b *builder) init(t tensorProto) string {
	if !b.inits[t.name] {
		b.inits[t.name] = true
		b.g.inits = append(b.g.inits, t)
	}
	return t.name
}

// weightInit adds a weight initializer or, when it is smaller (pruned
// weights), the tensor's non-zeros as 1-byte position deltas and values
// (sparseEntries) with the standard ops that expand them: the positions
// are CumSum(Cast(deltas)) − 1, ScatterElements writes the values into
// ConstantOfShape zeros, and Reshape restores the shape. Every input is
// constant, so runtimes fold this once when loading (inference runs the
// dense tensor). It reports whether it went sparse. The zero of the tensor
// is all zero bytes; weightInitZero takes another (a zero point's code).
func (b *builder) weightInit(t tensorProto) (string, bool) {
	return b.weightInitZero(t, make([]byte, elemSize(t.dtype)))
}

// weightInitZero is weightInit for a tensor whose pruned elements hold the
// raw bytes zero.
func (b *builder) weightInitZero(t tensorProto, zero []byte) (string, bool) {
	size := elemSize(t.dtype)
	n := len(t.raw) / size
	deltas, values := sparseEntries(t, zero)
	if sparseBytes(len(deltas), size) >= len(t.raw) {
		return b.init(t), false
	}
	m := int64(len(deltas))
	name := t.name
	d := b.init(uint8Tensor(name+".deltas", []int64{m}, deltas))
	v := b.init(tensorProto{name: name + ".values", dims: []int64{m}, dtype: t.dtype, raw: values})
	axis := b.init(int64Tensor("axis_0", nil, []int64{0}))
	one := b.init(int64Tensor("one_i64", nil, []int64{1}))
	size1 := b.init(int64Tensor(name+".size", []int64{1}, []int64{int64(n)}))
	dims := b.init(int64Tensor(name+".dims", []int64{int64(len(t.dims))}, t.dims))
	fill := tensorProto{dims: []int64{1}, dtype: t.dtype, raw: zero}
	b.node("Cast", name+"_deltas_i64", []string{d}, []string{name + ".deltas_i64"}, intAttr("to", dtInt64))
	b.node("CumSum", name+"_positions1", []string{name + ".deltas_i64", axis}, []string{name + ".positions1"})
	b.node("Sub", name+"_positions", []string{name + ".positions1", one}, []string{name + ".positions"})
	b.node("ConstantOfShape", name+"_zeros", []string{size1}, []string{name + ".zeros"}, attribute{name: "value", typ: attrTensor, t: &fill})
	b.node("ScatterElements", name+"_scatter", []string{name + ".zeros", name + ".positions", v}, []string{name + ".flat"}, intAttr("axis", 0))
	b.node("Reshape", name+"_reshape", []string{name + ".flat", dims}, []string{name})
	b.inits[name] = true
	return name, true
}

// sparseBytes is the size of m sparse entries of size-byte values plus the
// fixed cost of the expanding nodes (about 400 bytes).
func sparseBytes(m, size int) int { return m*(1+size) + 400 }

// shapeConst returns an int64 initializer holding a Reshape target
// [-1, s...].
func (b *builder) shapeConst(s accel.Shape) string {
	v := []int64{-1}
	name := "shape"
	for _, d := range s {
		v = append(v, int64(d))
		name += "_" + strconv.Itoa(d)
	}
	return b.init(int64Tensor(name, []int64{int64(len(v))}, v))
}

// as returns value in (of plan shape have) viewed with shape want,
// emitting a Reshape when the shapes differ (same size). Flattening uses
// Reshape rather than Flatten too: onnxruntime moves quantization through
// Reshape (not Flatten), so an int8 conv → pool → reshape → int8 linear
// chain runs on its integer kernels end to end.
func (b *builder) as(in string, have, want accel.Shape, prefix string) string {
	if slices.Equal(have, want) {
		return in
	}
	out := prefix + "_reshaped"
	b.node("Reshape", prefix+"_reshape", []string{in, b.shapeConst(want)}, []string{out})
	return out
}

// act emits activation a from value in to value out (an Identity when a is
// none, so out always exists).
func (b *builder) act(a accel.Act, name, in, out string) error {
	switch a {
	case accel.ActNone:
		b.node("Identity", name, []string{in}, []string{out})
	case accel.ActReLU:
		b.node("Relu", name, []string{in}, []string{out})
	case accel.ActReLU6:
		lo := b.init(floatTensor("clip_min_0", nil, []float32{0}))
		hi := b.init(floatTensor("clip_max_6", nil, []float32{6}))
		b.node("Clip", name, []string{in, lo, hi}, []string{out})
	case accel.ActHardSwish:
		// HardSwish(x) = x·max(0, min(1, x/6 + 1/2)) = x·relu6(x+3)/6.
		b.node("HardSwish", name, []string{in}, []string{out})
	default:
		return fmt.Errorf("activation %v has no ONNX form", a)
	}
	return nil
}

// withAct names the output of a node whose result goes through fused
// activation a into value out: out itself when a is none, an intermediate
// value otherwise; finish emits the activation.
func (b *builder) withAct(a accel.Act, opName, out string) (pre string, finish func() error) {
	if a == accel.ActNone {
		return out, func() error { return nil }
	}
	pre = opName + "_pre_" + a.String()
	return pre, func() error { return b.act(a, opName+"_"+a.String(), pre, out) }
}

// weights returns the value name of an op's weights with dims: a float
// initializer, or for int8 ops an int8 initializer dequantized per output
// channel (axis 0).
func (b *builder) weights(op *accel.Op, prefix string, dims []int64) (string, error) {
	q := op.Quant
	if q == nil && isFloat16(op.W) {
		// fp16 storage (compression's 16-bit form): FLOAT16 weights cast
		// to float, exact as every value is a binary16 value.
		h, _ := b.weightInit(float16Tensor(prefix+".weight_fp16", dims, op.W))
		b.node("Cast", prefix+"_weight_cast", []string{h}, []string{prefix + ".weight"}, intAttr("to", dtFloat))
		return prefix + ".weight", nil
	}
	if q == nil {
		w, _ := b.weightInit(floatTensor(prefix+".weight", dims, op.W))
		return w, nil
	}
	k := int(dims[0])
	if len(q.Q) != len(op.W) || len(q.Scale) != k {
		return "", fmt.Errorf("int8 weights: %d values and %d scales for %d weights of %d output channels", len(q.Q), len(q.Scale), len(op.W), k)
	}
	var wq, zp string
	switch {
	case packable(q):
		wq = b.packedInit(prefix+".weight_q", dims, q.Q, q.Bits)
		zp = b.init(int8Tensor(prefix+".weight_zero", []int64{int64(k)}, make([]int8, k)))
	case !accel.PairSafe(q.Q):
		// Weights beyond ±64 as uint8 codes q+128 with zero point 128:
		// the same values, but onnxruntime then multiplies them with its
		// u8·u8 kernels, exact on every x86 CPU. Its u8·s8 kernels on x86
		// without VNNI (AVX2, AVX-512BW) add pairs of products u·w in
		// 16 bits with saturation (vpmaddubsw): 255·127·2 > 32767, so
		// int8 weights there give other results than the file's
		// arithmetic, and than hwnas's exact int8 kernels.
		codes := make([]uint8, len(q.Q))
		for i, v := range q.Q {
			codes[i] = uint8(int(v) + 128)
		}
		wq, _ = b.weightInitZero(uint8Tensor(prefix+".weight_q", dims, codes), []byte{128})
		zps := make([]uint8, k)
		for i := range zps {
			zps[i] = 128
		}
		zp = b.init(uint8Tensor(prefix+".weight_zero", []int64{int64(k)}, zps))
	default:
		wq, _ = b.weightInit(int8Tensor(prefix+".weight_q", dims, q.Q))
		zp = b.init(int8Tensor(prefix+".weight_zero", []int64{int64(k)}, make([]int8, k)))
	}
	sc := b.init(floatTensor(prefix+".weight_scale", []int64{int64(k)}, q.Scale))
	out := prefix + ".weight"
	b.node("DequantizeLinear", prefix+"_weight_dequant", []string{wq, sc, zp}, []string{out}, intAttr("axis", 0))
	return out, nil
}

// input returns the value name an op reads its (first) input from: the
// tensor itself, or for int8 ops the tensor quantized to uint8 with the
// op's InScale/InZero and dequantized again (the QDQ pair onnxruntime fuses
// into its integer kernels).
func (b *builder) input(op *accel.Op, prefix, in string) (string, error) {
	q := op.Quant
	if q == nil {
		return in, nil
	}
	if !(q.InScale > 0) || math.IsInf(float64(q.InScale), 0) || q.InZero < 0 || q.InZero > 255 {
		return "", fmt.Errorf("int8 input quantization: scale %v and zero point %d, want a positive finite scale and a zero point in [0,255]", q.InScale, q.InZero)
	}
	sc := b.init(floatTensor(prefix+".in_scale", nil, []float32{q.InScale}))
	zp := b.init(uint8Tensor(prefix+".in_zero", nil, []uint8{uint8(q.InZero)}))
	b.node("QuantizeLinear", prefix+"_in_quant", []string{in, sc, zp}, []string{prefix + ".in_q"})
	b.node("DequantizeLinear", prefix+"_in_dequant", []string{prefix + ".in_q", sc, zp}, []string{prefix + ".in_dq"})
	return prefix + ".in_dq", nil
}

// packable reports whether q's integers can be stored packed: 1, 2 or 4
// bits with every value in range (b ≥ 2: −2^(b−1)..2^(b−1)−1; 1 bit: ±1).
func packable(q *accel.QuantWeights) bool {
	if q.Bits != 1 && q.Bits != 2 && q.Bits != 4 {
		return false
	}
	lo, hi := -(1 << (q.Bits - 1)), 1<<(q.Bits-1)-1
	for _, v := range q.Q {
		switch {
		case q.Bits == 1 && v != 1 && v != -1:
			return false
		case q.Bits > 1 && (int(v) < lo || int(v) > hi):
			return false
		}
	}
	return true
}

// packedInit stores b-bit integers q (b = 1, 2, 4) packed 8/b to a byte as
// codes u (q = u − 2^(b−1), or q = 2u − 1 for one bit), value i in bits
// (i mod 8/b)·b.. of byte i/(8/b), and emits the standard ops that unpack
// them to an int8 tensor named name: per slot j, BitShift left by
// 8 − (j+1)·b then right by 8 − b; the slots interleaved (Unsqueeze,
// Concat, Reshape), the padding sliced off, the codes mapped to q in
// int32 and cast to int8. All inputs are constant, so runtimes fold this
// when loading.
func (b *builder) packedInit(name string, dims []int64, q []int8, bits int) string {
	per := 8 / bits
	n := len(q)
	packed := make([]byte, (n+per-1)/per)
	for i, v := range q {
		u := int(v) + 1<<(bits-1)
		if bits == 1 {
			u = (int(v) + 1) / 2
		}
		packed[i/per] |= byte(u) << ((i % per) * bits)
	}
	src := b.init(uint8Tensor(name+".packed", []int64{int64(len(packed))}, packed))
	axis1 := b.init(int64Tensor("axes_1", []int64{1}, []int64{1}))
	var slots []string
	for j := 0; j < per; j++ {
		left := b.init(uint8Tensor(fmt.Sprintf("u8_%d", 8-(j+1)*bits), nil, []uint8{uint8(8 - (j+1)*bits)}))
		right := b.init(uint8Tensor(fmt.Sprintf("u8_%d", 8-bits), nil, []uint8{uint8(8 - bits)}))
		slot := fmt.Sprintf("%s.slot%d", name, j)
		b.node("BitShift", slot+"_left", []string{src, left}, []string{slot + "_l"}, attribute{name: "direction", typ: attrString, s: "LEFT"})
		b.node("BitShift", slot+"_right", []string{slot + "_l", right}, []string{slot + "_r"}, attribute{name: "direction", typ: attrString, s: "RIGHT"})
		b.node("Unsqueeze", slot+"_col", []string{slot + "_r", axis1}, []string{slot})
		slots = append(slots, slot)
	}
	b.node("Concat", name+"_interleave", slots, []string{name + ".codes2d"}, intAttr("axis", 1))
	flatShape := b.init(int64Tensor(fmt.Sprintf("shape_%d", len(packed)*per), []int64{1}, []int64{int64(len(packed) * per)}))
	b.node("Reshape", name+"_codes_flat", []string{name + ".codes2d", flatShape}, []string{name + ".codes_all"})
	start := b.init(int64Tensor("zero_1d", []int64{1}, []int64{0}))
	end := b.init(int64Tensor(fmt.Sprintf("%s.n", name), []int64{1}, []int64{int64(n)}))
	b.node("Slice", name+"_unpad", []string{name + ".codes_all", start, end}, []string{name + ".codes"})
	b.node("Cast", name+"_codes_i32", []string{name + ".codes"}, []string{name + ".codes_i32"}, intAttr("to", dtInt32))
	mul, off := int32(1), int32(1<<(bits-1))
	if bits == 1 {
		mul, off = 2, 1
	}
	m := b.init(int32Tensor(fmt.Sprintf("i32_%d", mul), nil, []int32{mul}))
	o := b.init(int32Tensor(fmt.Sprintf("i32_%d", off), nil, []int32{off}))
	b.node("Mul", name+"_scale_codes", []string{name + ".codes_i32", m}, []string{name + ".codes_mul"})
	b.node("Sub", name+"_center", []string{name + ".codes_mul", o}, []string{name + ".values_i32"})
	b.node("Cast", name+"_int8", []string{name + ".values_i32"}, []string{name + ".values"}, intAttr("to", dtInt8))
	shape := b.init(int64Tensor(name+".dims", []int64{int64(len(dims))}, dims))
	b.node("Reshape", name+"_reshape", []string{name + ".values", shape}, []string{name})
	return name
}

// isFloat16 reports whether every value of w is exactly an IEEE binary16
// value (weights stored as fp16 by the compression); zeros alone do not
// count.
func isFloat16(w []float32) bool {
	nonzero := false
	for _, v := range w {
		if compress.Float16ToFloat32(compress.Float32ToFloat16(v)) != v {
			return false
		}
		nonzero = nonzero || v != 0
	}
	return nonzero
}

// opPrefix is a unique, readable name stem for op i.
func opPrefix(i int, op *accel.Op) string {
	if op.Name == "" {
		return "op" + strconv.Itoa(i)
	}
	return fmt.Sprintf("op%d_%s", i, op.Name)
}

func (b *builder) op(i int, op *accel.Op) error {
	name := opPrefix(i, op)
	ins := make([]string, len(op.In))
	for k, t := range op.In {
		ins[k] = b.names[t]
	}
	outs := make([]string, len(op.Out))
	for k, t := range op.Out {
		outs[k] = b.define(i, t)
	}
	if err := nas.EmitONNX(b, op, name, ins, outs); err != nil {
		return err
	}
	for k, t := range op.Out {
		b.names[t] = outs[k]
	}
	return nil
}

// The builder is the nas.ONNXBuilder each layer type writes its plan op
// with (nas.EmitONNX); these methods expose the helpers above.

func (b *builder) Shape(t int) accel.Shape { return b.plan.Tensors[t] }

func (b *builder) Node(opType, name string, in, out []string, attrs ...nas.ONNXAttr) {
	as := make([]attribute, len(attrs))
	for i, a := range attrs {
		switch a.Kind {
		case nas.AttrInt:
			as[i] = intAttr(a.Name, a.Int)
		case nas.AttrInts:
			as[i] = intsAttr(a.Name, a.Ints...)
		case nas.AttrFloat:
			as[i] = floatAttr(a.Name, a.Float)
		case nas.AttrString:
			as[i] = attribute{name: a.Name, typ: attrString, s: a.Str}
		}
	}
	b.node(opType, name, in, out, as...)
}

func (b *builder) Floats(name string, dims []int64, v []float32) string {
	return b.init(floatTensor(name, dims, v))
}

func (b *builder) Int64s(name string, dims []int64, v []int64) string {
	return b.init(int64Tensor(name, dims, v))
}

func (b *builder) ShapeOf(s accel.Shape) string { return b.shapeConst(s) }

func (b *builder) Reshape(in string, have, want accel.Shape, prefix string) string {
	return b.as(in, have, want, prefix)
}

func (b *builder) Act(a accel.Act, name, in, out string) error { return b.act(a, name, in, out) }

func (b *builder) WithAct(a accel.Act, name, out string) (string, func() error) {
	return b.withAct(a, name, out)
}

func (b *builder) Weights(op *accel.Op, name string, dims []int64) (string, error) {
	return b.weights(op, name, dims)
}

func (b *builder) Input(op *accel.Op, name, in string) (string, error) { return b.input(op, name, in) }
