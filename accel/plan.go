package accel

import (
	"fmt"
	"strings"
)

// OpKind names an operation of an inference Plan.
type OpKind string

// The operations a Plan may contain. Per-sample shapes are [C,H,W] for
// feature maps and [F] for vectors; the batch dimension is chosen when the
// plan is compiled.
const (
	OpConv          OpKind = "conv"          // Conv (+bias, fused Act); groups and depthwise through Conv.Groups
	OpLinear        OpKind = "linear"        // y = x·Wᵀ + B, W is Out×In, fused Act
	OpBatchNorm     OpKind = "batchnorm"     // y = x·Scale[c] + Shift[c] (inference form), fused Act
	OpAct           OpKind = "act"           // y = Act(x)
	OpMaxPool       OpKind = "maxpool"       // Pool
	OpAvgPool       OpKind = "avgpool"       // Pool
	OpGlobalAvgPool OpKind = "globalavgpool" // [C,H,W] → [C]
	OpAdd           OpKind = "add"           // y = Act(In[0] + In[1])
	OpConcat        OpKind = "concat"        // channel concatenation of all inputs
	OpShuffle       OpKind = "shuffle"       // channel shuffle with Groups groups
	OpSplit         OpKind = "split"         // channel split into len(Out) parts of the output tensors' channel counts
	OpFlatten       OpKind = "flatten"       // [C,H,W] → [C·H·W], same memory
)

// Shape is the per-sample shape of a tensor: [C,H,W] or [F].
type Shape []int

// Size is the number of elements of one sample.
func (s Shape) Size() int {
	n := 1
	for _, d := range s {
		n *= d
	}
	return n
}

func (s Shape) String() string {
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = fmt.Sprint(d)
	}
	return "[" + strings.Join(parts, "×") + "]"
}

// QuantWeights carries the int8 form of a Conv or Linear op's weights:
// w ≈ Scale[o]·Q (symmetric, per output channel), with Bits ≤ 8 significant
// bits, and the activation quantization of the op's input (asymmetric, per
// tensor): x ≈ InScale·(q − InZero) with q in [0, 255].
type QuantWeights struct {
	Bits    int
	Q       []int8
	Scale   []float32
	InScale float32
	InZero  int32
}

// Float returns the float weights q stands for, Scale[o]·Q[o,i] (exact in
// float32 for ≤ 8-bit integers and fp16 scales).
func (q *QuantWeights) Float() []float32 {
	w := make([]float32, len(q.Q))
	per := len(q.Q) / max(1, len(q.Scale))
	for i, v := range q.Q {
		w[i] = q.Scale[i/per] * float32(v)
	}
	return w
}

// PairSafe reports whether every weight of q lies in [−64, 64], where the
// sum of two products u·w with uint8 activations (255·64·2 = 32640) fits
// in 16 bits: such weights run exactly on the integer kernels that add
// pairs in int16 (x86's vpmaddubsw without VNNI: onnxruntime's, and
// hwnas's AVX2 path for them). 7-bit and narrower weights always are.
func PairSafe(q []int8) bool {
	for _, v := range q {
		if v < -64 || v > 64 {
			return false
		}
	}
	return true
}

// SparseWeights carries a Conv or Linear op's weights in CSR form: rows are
// output channels, columns are (input channel, ky, kx) or input features.
type SparseWeights struct {
	Rows, Cols int
	RowPtr     []int32
	ColIdx     []int32
	Val        []float32
}

// Op is one operation of a Plan. Only the fields its Kind uses are set.
type Op struct {
	Name string
	Kind OpKind
	In   []int // tensor ids
	Out  []int // tensor ids

	Conv   ConvParams // OpConv: N is ignored (the batch is set at compile time)
	Pool   PoolParams // OpMaxPool/OpAvgPool: N is ignored
	Act    Act        // fused activation: conv, linear, batchnorm, act and add only
	Groups int        // OpShuffle

	W, B         []float32 // OpConv, OpLinear (float form, always present)
	Scale, Shift []float32 // OpBatchNorm

	Quant  *QuantWeights  // optional int8 form of W
	Sparse *SparseWeights // optional sparse form of W
}

// Plan is a device-neutral inference program: a topologically ordered list
// of ops over tensors with per-sample shapes. Backends compile it for a
// batch size.
type Plan struct {
	Name    string
	Tensors []Shape
	Input   int
	Output  int
	Ops     []Op
}

// Validate checks tensor ids, the topological order, and that each op's
// shapes agree with its attributes.
func (p *Plan) Validate() error {
	if len(p.Tensors) == 0 || len(p.Ops) == 0 {
		return fmt.Errorf("plan %q: no tensors or no ops", p.Name)
	}
	nt := len(p.Tensors)
	if p.Input < 0 || p.Input >= nt || p.Output < 0 || p.Output >= nt {
		return fmt.Errorf("plan %q: input %d or output %d is not a tensor", p.Name, p.Input, p.Output)
	}
	defined := make([]bool, nt)
	defined[p.Input] = true
	for i := range p.Ops {
		op := &p.Ops[i]
		errf := func(format string, a ...any) error {
			return fmt.Errorf("plan %q: op %d %q (%s): %s", p.Name, i, op.Name, op.Kind, fmt.Sprintf(format, a...))
		}
		for _, t := range append(append([]int{}, op.In...), op.Out...) {
			if t < 0 || t >= nt {
				return errf("tensor id %d out of range", t)
			}
		}
		for _, t := range op.In {
			if !defined[t] {
				return errf("input tensor %d is used before it is produced", t)
			}
		}
		if len(op.In) == 0 || len(op.Out) == 0 {
			return errf("needs inputs and outputs")
		}
		in, out := p.Tensors[op.In[0]], p.Tensors[op.Out[0]]
		switch op.Kind {
		case OpConv, OpLinear, OpBatchNorm, OpAct, OpAdd:
		default:
			if op.Act != ActNone {
				return errf("cannot fuse activation %s (only conv, linear, batchnorm, act and add can)", op.Act)
			}
		}
		switch op.Kind {
		case OpConv:
			c := op.Conv
			c.N = 1
			if len(in) != 3 || len(out) != 3 {
				return errf("needs [C,H,W] tensors")
			}
			c.C, c.H, c.W = in[0], in[1], in[2]
			if err := c.Validate(); err != nil {
				return errf("%v", err)
			}
			if out[0] != c.K || out[1] != c.OutH() || out[2] != c.OutW() {
				return errf("output shape %v, want [%d×%d×%d]", out, c.K, c.OutH(), c.OutW())
			}
			_, nw, _ := c.Sizes()
			if len(op.W) != nw || (op.B != nil && len(op.B) != c.K) {
				return errf("%d weights and %d biases, want %d and %d", len(op.W), len(op.B), nw, c.K)
			}
		case OpLinear:
			if len(op.W) != in.Size()*out.Size() || (op.B != nil && len(op.B) != out.Size()) {
				return errf("%d weights for %d→%d features", len(op.W), in.Size(), out.Size())
			}
		case OpBatchNorm:
			if len(op.Scale) != in[0] || len(op.Shift) != in[0] || in.Size() != out.Size() {
				return errf("scale/shift of %d/%d for %d channels", len(op.Scale), len(op.Shift), in[0])
			}
		case OpMaxPool, OpAvgPool:
			q := op.Pool
			q.N = 1
			if len(in) != 3 {
				return errf("needs a [C,H,W] input")
			}
			q.C, q.H, q.W = in[0], in[1], in[2]
			if err := q.Validate(); err != nil {
				return errf("%v", err)
			}
			if len(out) != 3 || out[0] != q.C || out[1] != q.OutH() || out[2] != q.OutW() {
				return errf("output shape %v, want [%d×%d×%d]", out, q.C, q.OutH(), q.OutW())
			}
		case OpGlobalAvgPool:
			if len(in) != 3 || out.Size() != in[0] {
				return errf("output %v for input %v", out, in)
			}
		case OpAdd:
			if len(op.In) != 2 || in.Size() != p.Tensors[op.In[1]].Size() || in.Size() != out.Size() {
				return errf("needs two inputs of the output's size")
			}
		case OpConcat, OpSplit:
			ins, outs := op.In, op.Out
			if op.Kind == OpSplit {
				ins, outs = op.Out, op.In
			}
			if len(outs) != 1 {
				return errf("wrong number of tensors")
			}
			sum := 0
			for _, t := range ins {
				s := p.Tensors[t]
				if len(s) != 3 || s[1] != p.Tensors[outs[0]][1] || s[2] != p.Tensors[outs[0]][2] {
					return errf("tensor %d shape %v does not match %v spatially", t, s, p.Tensors[outs[0]])
				}
				sum += s[0]
			}
			if sum != p.Tensors[outs[0]][0] {
				return errf("channels add up to %d, want %d", sum, p.Tensors[outs[0]][0])
			}
		case OpShuffle:
			if op.Groups <= 0 || len(in) != 3 || in[0]%op.Groups != 0 || in.Size() != out.Size() {
				return errf("cannot shuffle %v in %d groups", in, op.Groups)
			}
		case OpAct, OpFlatten:
			if in.Size() != out.Size() {
				return errf("input %v and output %v differ in size", in, out)
			}
		default:
			return errf("unknown op kind")
		}
		for _, t := range op.Out {
			defined[t] = true
		}
	}
	if !defined[p.Output] {
		return fmt.Errorf("plan %q: output tensor %d is never produced", p.Name, p.Output)
	}
	return nil
}
