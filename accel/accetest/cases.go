package accetest

import (
	"math"
	"math/rand/v2"

	"hwnas/accel"
)

// Case is one conformance plan: a small network with seeded random weights.
type Case struct {
	Name string
	Plan *accel.Plan
	// Input returns n samples of input; int8 cases draw it from the
	// quantization grid of their first op so that the int8 and float paths
	// agree exactly.
	Input func(n int) []float32
}

// builder assembles a Plan with random weights.
type builder struct {
	p     *accel.Plan
	r     *rand.Rand
	scale float64 // input amplitude
	grid  float32 // when > 0, inputs are multiples of grid in [−128, 127]·grid
}

func newBuilder(name string, seed uint64, in ...int) *builder {
	return &builder{
		p:     &accel.Plan{Name: name, Tensors: []accel.Shape{append(accel.Shape(nil), in...)}},
		r:     rand.New(rand.NewPCG(seed, 0x5eed)),
		scale: 1,
	}
}

func (b *builder) uniform(n int, amp float64) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32((b.r.Float64()*2 - 1) * amp)
	}
	return s
}

func (b *builder) tensor(s accel.Shape) int {
	b.p.Tensors = append(b.p.Tensors, s)
	return len(b.p.Tensors) - 1
}

func (b *builder) op(op accel.Op, out accel.Shape) int {
	t := b.tensor(out)
	op.Out = []int{t}
	b.p.Ops = append(b.p.Ops, op)
	return t
}

// conv adds a convolution of tensor in with weights scaled by 1/√fan-in
// (times gain) and, when bias is set, a bias.
func (b *builder) conv(in int, cp accel.ConvParams, act accel.Act, bias bool, gain float64) int {
	s := b.p.Tensors[in]
	cp.N, cp.C, cp.H, cp.W = 1, s[0], s[1], s[2]
	_, nw, _ := cp.Sizes()
	fan := float64(nw / cp.K)
	op := accel.Op{Name: "conv", Kind: accel.OpConv, In: []int{in}, Conv: cp, Act: act,
		W: b.uniform(nw, gain*math.Sqrt(3/fan))}
	if bias {
		op.B = b.uniform(cp.K, 0.5)
	}
	op.Conv.N, op.Conv.C, op.Conv.H, op.Conv.W = 0, 0, 0, 0 // taken from the input tensor
	return b.op(op, accel.Shape{cp.K, cp.OutH(), cp.OutW()})
}

func (b *builder) linear(in, out int, act accel.Act, bias bool) int {
	fi := b.p.Tensors[in].Size()
	op := accel.Op{Name: "linear", Kind: accel.OpLinear, In: []int{in}, Act: act,
		W: b.uniform(out*fi, math.Sqrt(3/float64(fi)))}
	if bias {
		op.B = b.uniform(out, 0.5)
	}
	return b.op(op, accel.Shape{out})
}

func (b *builder) pool(in int, kind accel.OpKind, pp accel.PoolParams) int {
	s := b.p.Tensors[in]
	q := pp
	q.N, q.C, q.H, q.W = 1, s[0], s[1], s[2]
	return b.op(accel.Op{Name: string(kind), Kind: kind, In: []int{in}, Pool: pp}, accel.Shape{s[0], q.OutH(), q.OutW()})
}

func (b *builder) simple(kind accel.OpKind, ins []int, out accel.Shape, act accel.Act) int {
	return b.op(accel.Op{Name: string(kind), Kind: kind, In: ins, Act: act}, out)
}

func (b *builder) batchnorm(in int, act accel.Act) int {
	c := b.p.Tensors[in][0]
	op := accel.Op{Name: "batchnorm", Kind: accel.OpBatchNorm, In: []int{in}, Act: act,
		Scale: b.uniform(c, 2), Shift: b.uniform(c, 1)}
	return b.op(op, b.p.Tensors[in])
}

func (b *builder) concat(ins ...int) int {
	s := b.p.Tensors[ins[0]]
	c := 0
	for _, t := range ins {
		c += b.p.Tensors[t][0]
	}
	return b.simple(accel.OpConcat, ins, accel.Shape{c, s[1], s[2]}, accel.ActNone)
}

func (b *builder) split(in int, parts ...int) []int {
	s := b.p.Tensors[in]
	var outs []int
	for _, c := range parts {
		outs = append(outs, b.tensor(accel.Shape{c, s[1], s[2]}))
	}
	b.p.Ops = append(b.p.Ops, accel.Op{Name: "split", Kind: accel.OpSplit, In: []int{in}, Out: outs})
	return outs
}

func (b *builder) shuffle(in, groups int) int {
	return b.op(accel.Op{Name: "shuffle", Kind: accel.OpShuffle, In: []int{in}, Groups: groups}, b.p.Tensors[in])
}

func (b *builder) flatten(in int) int {
	return b.simple(accel.OpFlatten, []int{in}, accel.Shape{b.p.Tensors[in].Size()}, accel.ActNone)
}

// quantize gives the last op int8 weights: W is replaced by Scale·Q so
// that the float and int8 forms are the same numbers, and the input grid
// is InScale = 1/32 (exact in binary) with zero point 128.
func (b *builder) quantize() {
	op := &b.p.Ops[len(b.p.Ops)-1]
	rows := b.p.Tensors[op.Out[0]].Size()
	if op.Kind == accel.OpConv {
		rows = op.Conv.K
	}
	cols := len(op.W) / rows
	q := &accel.QuantWeights{Bits: 8, Q: make([]int8, len(op.W)), Scale: make([]float32, rows), InScale: 1.0 / 32, InZero: 128}
	for r := 0; r < rows; r++ {
		var mx float64
		for _, v := range op.W[r*cols : (r+1)*cols] {
			mx = math.Max(mx, math.Abs(float64(v)))
		}
		q.Scale[r] = float32(mx / 127)
		for i := r * cols; i < (r+1)*cols; i++ {
			q.Q[i] = int8(math.Round(float64(op.W[i]) / float64(q.Scale[r])))
			op.W[i] = q.Scale[r] * float32(q.Q[i])
		}
	}
	op.Quant = q
	b.grid = q.InScale
}

// sparsify prunes about frac of the last op's weights and gives it the CSR
// form of what is left (W keeps the zeros, so both forms agree).
func (b *builder) sparsify(frac float64) {
	op := &b.p.Ops[len(b.p.Ops)-1]
	rows := b.p.Tensors[op.Out[0]].Size()
	if op.Kind == accel.OpConv {
		rows = op.Conv.K
	}
	cols := len(op.W) / rows
	s := &accel.SparseWeights{Rows: rows, Cols: cols, RowPtr: []int32{0}}
	for r := 0; r < rows; r++ {
		for c := 0; c < cols; c++ {
			i := r*cols + c
			if b.r.Float64() < frac {
				op.W[i] = 0
				continue
			}
			s.ColIdx = append(s.ColIdx, int32(c))
			s.Val = append(s.Val, op.W[i])
		}
		s.RowPtr = append(s.RowPtr, int32(len(s.Val)))
	}
	op.Sparse = s
}

func (b *builder) done(out int) Case {
	b.p.Output = out
	seed := b.r.Uint64()
	size := b.p.Tensors[0].Size()
	scale, grid := b.scale, b.grid
	return Case{Name: b.p.Name, Plan: b.p, Input: func(n int) []float32 {
		r := rand.New(rand.NewPCG(seed, uint64(n)))
		x := make([]float32, n*size)
		for i := range x {
			if grid > 0 {
				x[i] = grid * float32(r.IntN(256)-128)
			} else {
				x[i] = float32((r.Float64()*2 - 1) * scale)
			}
		}
		return x
	}}
}

// Cases returns the conformance table: every op kind, conv with odd sizes,
// strides, padding, dilation, groups, depthwise and every activation, the
// int8 and sparse forms, and small multi-op networks. Each call builds
// fresh plans with the same seeded weights.
func Cases() []Case {
	cp := func(k, kh, kw, sh, sw, ph, pw, dh, dw, g int) accel.ConvParams {
		return accel.ConvParams{K: k, KH: kh, KW: kw, StrideH: sh, StrideW: sw, PadH: ph, PadW: pw, DilH: dh, DilW: dw, Groups: g}
	}
	var cs []Case
	convCase := func(name string, in accel.Shape, p accel.ConvParams, act accel.Act, bias bool, amp float64) {
		b := newBuilder(name, uint64(len(cs)+1), in...)
		b.scale = amp
		cs = append(cs, b.done(b.conv(0, p, act, bias, 1)))
	}
	convCase("conv3x3_pad1", accel.Shape{3, 7, 6}, cp(5, 3, 3, 1, 1, 1, 1, 1, 1, 1), accel.ActNone, true, 1)
	convCase("conv5x5_stride2_relu", accel.Shape{2, 11, 9}, cp(4, 5, 5, 2, 2, 0, 0, 1, 1, 1), accel.ActReLU, true, 1)
	convCase("conv3x2_dil2_relu6", accel.Shape{3, 9, 10}, cp(6, 3, 2, 1, 2, 2, 1, 2, 3, 1), accel.ActReLU6, true, 6)
	convCase("conv_groups2_hardswish", accel.Shape{4, 8, 7}, cp(6, 3, 3, 2, 1, 1, 0, 1, 1, 2), accel.ActHardSwish, true, 4)
	convCase("conv_groups3_nobias", accel.Shape{6, 5, 5}, cp(9, 3, 3, 1, 1, 1, 1, 1, 1, 3), accel.ActNone, false, 1)
	convCase("conv1x1_direct_relu", accel.Shape{16, 9, 7}, cp(8, 1, 1, 1, 1, 0, 0, 1, 1, 1), accel.ActReLU, true, 1)
	convCase("conv1x1_stride2", accel.Shape{5, 9, 9}, cp(7, 1, 1, 2, 2, 0, 0, 1, 1, 1), accel.ActNone, true, 1)
	convCase("conv1x1_pad1", accel.Shape{3, 4, 5}, cp(2, 1, 1, 1, 1, 1, 1, 1, 1, 1), accel.ActReLU6, true, 8)
	convCase("dw3x3_relu6", accel.Shape{8, 10, 10}, cp(8, 3, 3, 1, 1, 1, 1, 1, 1, 8), accel.ActReLU6, true, 8)
	convCase("dw3x3_stride2_odd", accel.Shape{7, 11, 13}, cp(7, 3, 3, 2, 2, 1, 1, 1, 1, 7), accel.ActHardSwish, true, 4)
	convCase("dw5x5_dil2_nobias", accel.Shape{5, 12, 9}, cp(5, 5, 5, 1, 1, 4, 4, 2, 2, 5), accel.ActNone, false, 1)
	convCase("dw3x3_asym_pad", accel.Shape{3, 6, 5}, cp(3, 3, 3, 1, 2, 0, 1, 1, 1, 3), accel.ActReLU, true, 1)

	add := func(name string, build func(b *builder) int, in ...int) {
		b := newBuilder(name, uint64(len(cs)+1), in...)
		cs = append(cs, b.done(build(b)))
	}
	add("linear_relu", func(b *builder) int { return b.linear(0, 13, accel.ActReLU, true) }, 37)
	add("linear_nobias", func(b *builder) int { return b.linear(0, 10, accel.ActNone, false) }, 5, 3, 3)
	add("batchnorm_hardswish", func(b *builder) int { b.scale = 3; return b.batchnorm(0, accel.ActHardSwish) }, 5, 6, 7)
	add("batchnorm_vector", func(b *builder) int { return b.batchnorm(0, accel.ActNone) }, 9)
	for _, a := range []accel.Act{accel.ActReLU, accel.ActReLU6, accel.ActHardSwish} {
		add("act_"+a.String(), func(b *builder) int {
			b.scale = 8
			return b.simple(accel.OpAct, []int{0}, b.p.Tensors[0], a)
		}, 3, 5, 4)
	}
	add("maxpool3x3_s2_p1", func(b *builder) int {
		return b.pool(0, accel.OpMaxPool, accel.PoolParams{KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1})
	}, 3, 9, 8)
	add("maxpool2x2_odd", func(b *builder) int {
		return b.pool(0, accel.OpMaxPool, accel.PoolParams{KH: 2, KW: 2, StrideH: 2, StrideW: 2})
	}, 4, 7, 9)
	add("avgpool3x3_s2_p1", func(b *builder) int {
		return b.pool(0, accel.OpAvgPool, accel.PoolParams{KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1})
	}, 3, 9, 8)
	add("avgpool2x3_s1", func(b *builder) int {
		return b.pool(0, accel.OpAvgPool, accel.PoolParams{KH: 2, KW: 3, StrideH: 1, StrideW: 1})
	}, 2, 5, 6)
	add("globalavgpool", func(b *builder) int { return b.simple(accel.OpGlobalAvgPool, []int{0}, accel.Shape{6}, accel.ActNone) }, 6, 5, 3)
	add("add_relu", func(b *builder) int {
		c := b.conv(0, cp(4, 3, 3, 1, 1, 1, 1, 1, 1, 1), accel.ActNone, true, 1)
		return b.simple(accel.OpAdd, []int{c, 0}, b.p.Tensors[0], accel.ActReLU)
	}, 4, 5, 5)
	add("concat3", func(b *builder) int {
		c := b.conv(0, cp(3, 1, 1, 1, 1, 0, 0, 1, 1, 1), accel.ActNone, true, 1)
		return b.concat(c, 0, c)
	}, 2, 3, 5)
	// The plan input written in place (the program must not write the
	// caller's slice), and an output that is the input's own storage.
	add("relu_inplace_input_conv", func(b *builder) int {
		b.p.Ops = append(b.p.Ops, accel.Op{Name: "relu", Kind: accel.OpAct, In: []int{0}, Out: []int{0}, Act: accel.ActReLU})
		return b.conv(0, cp(4, 3, 3, 1, 1, 1, 1, 1, 1, 1), accel.ActNone, true, 1)
	}, 3, 6, 5)
	add("flatten_input", func(b *builder) int { return b.flatten(0) }, 3, 4, 5)
	add("shuffle3", func(b *builder) int { return b.shuffle(0, 3) }, 9, 2, 3)
	add("split_concat", func(b *builder) int {
		parts := b.split(0, 2, 4, 1)
		return b.concat(parts[2], parts[0], parts[1])
	}, 7, 3, 2)
	add("flatten_linear", func(b *builder) int { return b.linear(b.flatten(0), 6, accel.ActNone, true) }, 3, 4, 5)
	add("int8_conv", func(b *builder) int {
		c := b.conv(0, cp(6, 3, 3, 1, 1, 1, 1, 1, 1, 1), accel.ActReLU, true, 1)
		b.quantize()
		return c
	}, 3, 7, 6)
	add("int8_linear", func(b *builder) int {
		l := b.linear(0, 11, accel.ActNone, true)
		b.quantize()
		return l
	}, 40)
	add("sparse_conv", func(b *builder) int {
		c := b.conv(0, cp(8, 3, 3, 2, 2, 1, 1, 1, 1, 2), accel.ActReLU6, true, 2)
		b.sparsify(0.7)
		return c
	}, 4, 9, 9)
	add("sparse_linear", func(b *builder) int {
		l := b.linear(0, 12, accel.ActReLU, true)
		b.sparsify(0.8)
		return l
	}, 50)
	// Backends may run a CSR form only when it is sparse enough to pay
	// (the cpu program: ≤ 10% non-zeros for k×k convs, ≤ 20% for 1×1 and
	// linear) and the float W otherwise: the cases above test the dense
	// path of a pruned layer, these the sparse kernels inside a program.
	add("very_sparse_conv", func(b *builder) int {
		c := b.conv(0, cp(16, 3, 3, 1, 1, 1, 1, 1, 1, 1), accel.ActReLU, true, 1)
		b.sparsify(0.95)
		return c
	}, 8, 7, 7)
	add("very_sparse_pointwise_linear", func(b *builder) int {
		c := b.conv(0, cp(24, 1, 1, 1, 1, 0, 0, 1, 1, 1), accel.ActReLU, true, 1)
		b.sparsify(0.9)
		l := b.linear(b.flatten(c), 10, accel.ActNone, true)
		b.sparsify(0.9)
		return l
	}, 16, 5, 5)
	add("lenet_like", func(b *builder) int {
		c1 := b.conv(0, cp(6, 5, 5, 1, 1, 0, 0, 1, 1, 1), accel.ActNone, true, 1)
		p1 := b.pool(c1, accel.OpMaxPool, accel.PoolParams{KH: 2, KW: 2, StrideH: 2, StrideW: 2})
		c2 := b.conv(p1, cp(12, 5, 5, 1, 1, 0, 0, 1, 1, 1), accel.ActNone, true, 1)
		p2 := b.pool(c2, accel.OpMaxPool, accel.PoolParams{KH: 2, KW: 2, StrideH: 2, StrideW: 2})
		f := b.linear(b.flatten(p2), 32, accel.ActReLU, true)
		return b.linear(f, 10, accel.ActNone, true)
	}, 1, 28, 28)
	add("mobilenet_block", func(b *builder) int {
		e := b.conv(0, cp(16, 1, 1, 1, 1, 0, 0, 1, 1, 1), accel.ActNone, false, 1)
		e = b.batchnorm(e, accel.ActReLU6)
		d := b.conv(e, cp(16, 3, 3, 1, 1, 1, 1, 1, 1, 16), accel.ActReLU6, true, 1)
		pj := b.conv(d, cp(8, 1, 1, 1, 1, 0, 0, 1, 1, 1), accel.ActNone, true, 1)
		r := b.simple(accel.OpAdd, []int{pj, 0}, b.p.Tensors[0], accel.ActNone)
		g := b.simple(accel.OpGlobalAvgPool, []int{r}, accel.Shape{8}, accel.ActNone)
		return b.linear(g, 5, accel.ActNone, true)
	}, 8, 9, 9)
	add("shufflenet_unit", func(b *builder) int {
		parts := b.split(0, 4, 4)
		c := b.conv(parts[1], cp(4, 1, 1, 1, 1, 0, 0, 1, 1, 1), accel.ActReLU, true, 1)
		c = b.conv(c, cp(4, 3, 3, 1, 1, 1, 1, 1, 1, 4), accel.ActNone, true, 1)
		c = b.conv(c, cp(4, 1, 1, 1, 1, 0, 0, 1, 1, 1), accel.ActHardSwish, true, 1)
		return b.shuffle(b.concat(parts[0], c), 2)
	}, 8, 6, 5)
	// Chains that keep feature maps in a backend's own layout between ops
	// (package cpu's blocked NCHWc): odd channel counts that leave a
	// partial block, inputs of fewer and of more channels than a block,
	// rows wider than any register tile, layout changes around ops that
	// have no blocked kernel, in-place ops, and a blocked last op.
	add("blocked_chain", func(b *builder) int {
		c := b.conv(0, cp(20, 5, 5, 1, 1, 2, 2, 1, 1, 1), accel.ActNone, true, 1)
		c = b.batchnorm(c, accel.ActReLU)
		c = b.pool(c, accel.OpMaxPool, accel.PoolParams{KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1})
		c = b.pool(c, accel.OpAvgPool, accel.PoolParams{KH: 2, KW: 3, StrideH: 1, StrideW: 1, PadW: 1})
		c = b.simple(accel.OpAct, []int{c}, b.p.Tensors[c], accel.ActHardSwish)
		g := b.simple(accel.OpGlobalAvgPool, []int{c}, accel.Shape{20}, accel.ActNone)
		return b.linear(g, 7, accel.ActNone, true)
	}, 3, 12, 11)
	add("blocked_wide_rows", func(b *builder) int {
		// 29 columns: interiors of 27 take tiles of every width.
		c := b.conv(0, cp(5, 3, 3, 1, 1, 1, 1, 1, 1, 1), accel.ActReLU, true, 1)
		d := b.conv(c, cp(5, 3, 3, 1, 1, 1, 1, 1, 1, 5), accel.ActNone, true, 1)
		return b.conv(d, cp(3, 1, 3, 1, 1, 0, 1, 1, 1, 1), accel.ActNone, true, 1)
	}, 2, 4, 29)
	add("blocked_input_conv_last", func(b *builder) int {
		c := b.conv(0, cp(9, 3, 3, 2, 2, 1, 1, 1, 1, 1), accel.ActReLU6, true, 1)
		c = b.conv(c, cp(9, 3, 3, 1, 1, 1, 1, 1, 1, 9), accel.ActNone, true, 1)
		return b.conv(c, cp(33, 1, 1, 1, 1, 0, 0, 1, 1, 1), accel.ActNone, false, 1)
	}, 17, 7, 8)
	add("blocked_concat_shuffle_split", func(b *builder) int {
		c1 := b.conv(0, cp(11, 3, 3, 1, 1, 1, 1, 1, 1, 1), accel.ActReLU, true, 1)
		c2 := b.conv(0, cp(7, 1, 1, 1, 1, 0, 0, 1, 1, 1), accel.ActNone, true, 1)
		sh := b.shuffle(b.concat(c1, c2), 3)
		parts := b.split(sh, 5, 13)
		return b.linear(b.flatten(b.concat(parts[1], parts[0])), 6, accel.ActNone, true)
	}, 5, 6, 7)
	add("blocked_residual_with_plain", func(b *builder) int {
		c := b.conv(0, cp(8, 3, 3, 1, 1, 1, 1, 1, 1, 1), accel.ActNone, true, 1)
		return b.simple(accel.OpAdd, []int{c, 0}, b.p.Tensors[0], accel.ActReLU)
	}, 8, 6, 6)
	add("blocked_in_place", func(b *builder) int {
		c := b.conv(0, cp(10, 3, 3, 1, 1, 1, 1, 1, 1, 1), accel.ActNone, true, 1)
		d := b.conv(c, cp(10, 3, 3, 1, 1, 1, 1, 1, 1, 10), accel.ActNone, true, 1)
		// The flattened c is read before the in-place ops change c (a host
		// program's Flatten aliases its input; a backend may copy).
		l := b.linear(b.flatten(c), 10, accel.ActNone, true)
		b.p.Ops = append(b.p.Ops,
			accel.Op{Name: "relu", Kind: accel.OpAct, In: []int{c}, Out: []int{c}, Act: accel.ActReLU},
			accel.Op{Name: "bn", Kind: accel.OpBatchNorm, In: []int{c}, Out: []int{c}, Act: accel.ActReLU6,
				Scale: b.uniform(10, 2), Shift: b.uniform(10, 1)},
			accel.Op{Name: "add", Kind: accel.OpAdd, In: []int{c, d}, Out: []int{c}, Act: accel.ActNone})
		g := b.simple(accel.OpGlobalAvgPool, []int{c}, accel.Shape{10}, accel.ActNone)
		return b.simple(accel.OpAdd, []int{l, g}, accel.Shape{10}, accel.ActNone)
	}, 3, 5, 6)
	add("int8_then_blocked", func(b *builder) int {
		c := b.conv(0, cp(18, 3, 3, 1, 1, 1, 1, 1, 1, 1), accel.ActReLU, true, 1)
		b.quantize()
		d := b.conv(c, cp(6, 3, 3, 2, 2, 1, 1, 1, 1, 1), accel.ActNone, true, 1)
		return b.pool(d, accel.OpMaxPool, accel.PoolParams{KH: 2, KW: 2, StrideH: 2, StrideW: 2})
	}, 3, 8, 8)
	return cs
}
