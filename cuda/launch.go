package cuda

import (
	"fmt"
	"math"

	"hwnas/accel"
)

// This file turns an accel.Plan into a list of kernel launches for one batch
// size: which kernel of kernels.cu runs each op, its grid and block, and
// its arguments as references to buffers (activations, constants, scratch)
// that the device side binds to addresses. It needs no GPU, so the planning
// is tested on any machine.

// argKind says where a kernel argument's value comes from.
type argKind uint8

const (
	argInt     argKind = iota // V itself (a 64-bit integer or float bits)
	argTensor                 // address of tensor V's activation buffer
	argConst                  // address of constant buffer V (weights, biases, scales)
	argScratch                // address of the scratch buffer plus V bytes
	argNull                   // a null pointer (no bias)
)

// arg is one kernel argument.
type arg struct {
	Kind argKind
	V    int64
}

func iarg(v int) arg           { return arg{argInt, int64(v)} }
func tensorArg(t int) arg      { return arg{argTensor, int64(t)} }
func constArg(c int) arg       { return arg{argConst, int64(c)} }
func scratchArg(off int64) arg { return arg{argScratch, off} }
func floatArg(f float32) arg   { return arg{argInt, int64(math.Float32bits(f))} }

// launch is one kernel launch of a compiled plan.
type launch struct {
	Op     int // index of the plan op it belongs to
	Kernel string
	Grid   [3]int
	Block  [3]int
	Args   []arg
}

// constBuf is device data uploaded once at compile time: float32 or int32
// values (exactly one of the two is set).
type constBuf struct {
	Name string
	F32  []float32
	I32  []int32
}

// Bytes is the buffer's size.
func (c constBuf) Bytes() int64 { return 4 * int64(len(c.F32)+len(c.I32)) }

// launchPlan is a plan compiled into launches for one batch size.
type launchPlan struct {
	Batch     int
	Launches  []launch
	Consts    []constBuf
	Scratch   int64   // bytes of the one scratch buffer ops share
	Root      []int   // tensor → the tensor whose buffer it uses (flatten aliases its input)
	Bytes     []int64 // bytes of each tensor for the batch (its root's size)
	OpsOfKind map[string]int
}

// deviceLimits are the facts of the device that planning uses.
type deviceLimits struct {
	SMs int // streaming multiprocessors
}

// blockThreads is the block size of every kernel.
const blockThreads = 256

// gemmTile is one tile configuration of kernels.cu's GEMM_CONFIGS.
type gemmTile struct{ BM, BN int }

func (t gemmTile) String() string { return fmt.Sprintf("%dx%d", t.BM, t.BN) }

// gemmTiles are kernels.cu's tile configurations, largest first.
var gemmTiles = []gemmTile{{128, 128}, {128, 64}, {64, 64}, {32, 32}}

// chooseTile picks the largest tile that gives at least 3/4 of a block
// per SM over an m×n (×groups) output and wastes at most 40% of its work on
// padding (m = 20 output channels in 128-row tiles would compute 84% zeros),
// so big products run on register-rich tiles and small ones spread over the
// GPU; when none qualifies, the smallest tile (most blocks) wins.
func chooseTile(m, n, groups, sms int) gemmTile {
	if sms <= 0 {
		sms = 1
	}
	for _, t := range gemmTiles {
		bm, bn := ceilDiv(m, t.BM), ceilDiv(n, t.BN)
		blocks := bm * bn * groups
		useful := float64(m) * float64(n) / (float64(bm*t.BM) * float64(bn*t.BN))
		if 4*blocks >= 3*sms && useful >= 0.6 {
			return t
		}
	}
	return gemmTiles[len(gemmTiles)-1]
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// elementwiseGrid is the grid of a grid-stride kernel over total elements:
// enough blocks for one element per thread, at most 8 blocks per SM.
func elementwiseGrid(total, sms int) [3]int {
	g := ceilDiv(total, blockThreads)
	if limit := 8 * max(sms, 1); g > limit {
		g = limit
	}
	return [3]int{max(g, 1), 1, 1}
}

var block256 = [3]int{blockThreads, 1, 1}

// sgemmLaunch is the launch of C = A·B (row-major, dense) for the SGEMM
// benchmark; A, B and C are tensors 0, 1 and 2.
func sgemmLaunch(m, n, k int, lim deviceLimits) launch {
	t := chooseTile(m, n, 1, lim.SMs)
	return launch{Kernel: "sgemm_nn_" + t.String(), Grid: [3]int{ceilDiv(n, t.BN), ceilDiv(m, t.BM), 1}, Block: block256,
		Args: []arg{tensorArg(0), tensorArg(1), tensorArg(2), iarg(m), iarg(n), iarg(k)}}
}

// planLaunches compiles p for batch samples per run.
func planLaunches(p *accel.Plan, batch int, lim deviceLimits) (*launchPlan, error) {
	if p == nil {
		return nil, fmt.Errorf("cuda: nil plan")
	}
	if batch <= 0 {
		return nil, fmt.Errorf("cuda: plan %q: batch %d must be positive", p.Name, batch)
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	lp := &launchPlan{Batch: batch, Root: make([]int, len(p.Tensors)), Bytes: make([]int64, len(p.Tensors)), OpsOfKind: map[string]int{}}
	for t := range p.Tensors {
		lp.Root[t] = t
	}
	b := &planBuilder{lp: lp, p: p, n: batch, lim: lim}
	for i := range p.Ops {
		b.op = i
		if err := b.add(&p.Ops[i]); err != nil {
			return nil, fmt.Errorf("cuda: plan %q: op %d %q (%s): %w", p.Name, i, p.Ops[i].Name, p.Ops[i].Kind, err)
		}
	}
	for t, s := range p.Tensors {
		lp.Bytes[t] = 4 * int64(s.Size()) * int64(batch)
	}
	return lp, nil
}

type planBuilder struct {
	lp  *launchPlan
	p   *accel.Plan
	n   int
	lim deviceLimits
	op  int
}

func (b *planBuilder) emit(kernel string, grid [3]int, args ...arg) {
	b.lp.Launches = append(b.lp.Launches, launch{Op: b.op, Kernel: kernel, Grid: grid, Block: block256, Args: args})
	b.lp.OpsOfKind[kernel]++
}

func (b *planBuilder) addConst(name string, f []float32, i []int32) arg {
	b.lp.Consts = append(b.lp.Consts, constBuf{Name: fmt.Sprintf("op%d.%s", b.op, name), F32: f, I32: i})
	return constArg(len(b.lp.Consts) - 1)
}

// optConst uploads f, or passes a null pointer when it is empty.
func (b *planBuilder) optConst(name string, f []float32) arg {
	if len(f) == 0 {
		return arg{Kind: argNull}
	}
	return b.addConst(name, f, nil)
}

func (b *planBuilder) needScratch(bytes int64) {
	if bytes > b.lp.Scratch {
		b.lp.Scratch = bytes
	}
}

func (b *planBuilder) shape(t int) accel.Shape { return b.p.Tensors[t] }

func (b *planBuilder) add(op *accel.Op) error {
	in, out := op.In[0], op.Out[0]
	sms := b.lim.SMs
	switch op.Kind {
	case accel.OpFlatten:
		b.lp.Root[out] = b.lp.Root[in]
	case accel.OpConv:
		return b.conv(op)
	case accel.OpLinear:
		return b.linear(op)
	case accel.OpBatchNorm:
		s := b.shape(in)
		hw := s.Size() / s[0]
		total := b.n * s.Size()
		b.emit("scale_shift", elementwiseGrid(total, sms), tensorArg(in), b.addConst("scale", op.Scale, nil), b.addConst("shift", op.Shift, nil),
			tensorArg(out), iarg(total), iarg(s[0]), iarg(hw), iarg(int(op.Act)))
	case accel.OpAct:
		total := b.n * b.shape(in).Size()
		b.emit("act_only", elementwiseGrid(total, sms), tensorArg(in), tensorArg(out), iarg(total), iarg(int(op.Act)))
	case accel.OpAdd:
		total := b.n * b.shape(in).Size()
		b.emit("add_act", elementwiseGrid(total, sms), tensorArg(in), tensorArg(op.In[1]), tensorArg(out), iarg(total), iarg(int(op.Act)))
	case accel.OpMaxPool, accel.OpAvgPool:
		s := b.shape(in)
		q := op.Pool
		q.N, q.C, q.H, q.W = b.n, s[0], s[1], s[2]
		total := b.n * s[0] * q.OutH() * q.OutW()
		isMax := 0
		if op.Kind == accel.OpMaxPool {
			isMax = 1
		}
		b.emit("pool", elementwiseGrid(total, sms), tensorArg(in), tensorArg(out), iarg(b.n*s[0]), iarg(q.H), iarg(q.W), iarg(q.KH), iarg(q.KW),
			iarg(max(q.StrideH, 1)), iarg(max(q.StrideW, 1)), iarg(q.PadH), iarg(q.PadW), iarg(q.OutH()), iarg(q.OutW()), iarg(isMax))
		if op.Act != accel.ActNone {
			b.emit("act_only", elementwiseGrid(total, sms), tensorArg(out), tensorArg(out), iarg(total), iarg(int(op.Act)))
		}
	case accel.OpGlobalAvgPool:
		s := b.shape(in)
		planes := b.n * s[0]
		b.emit("global_avgpool", [3]int{ceilDiv(planes, 8), 1, 1}, tensorArg(in), tensorArg(out), iarg(planes), iarg(s[1]*s[2]))
	case accel.OpConcat, accel.OpSplit:
		// One copy per part: concat copies part i to its channel offset
		// of the output, split copies that range of the input to part i.
		whole, parts := out, op.In
		if op.Kind == accel.OpSplit {
			whole, parts = in, op.Out
		}
		ws := b.shape(whole)
		hw := ws[1] * ws[2]
		off := 0
		for _, t := range parts {
			c := b.shape(t)[0]
			grid := elementwiseGrid(b.n*c*hw, sms)
			if op.Kind == accel.OpConcat {
				b.emit("copy_channels", grid, tensorArg(t), tensorArg(whole), iarg(b.n), iarg(c), iarg(hw), iarg(c), iarg(0), iarg(ws[0]), iarg(off))
			} else {
				b.emit("copy_channels", grid, tensorArg(whole), tensorArg(t), iarg(b.n), iarg(c), iarg(hw), iarg(ws[0]), iarg(off), iarg(c), iarg(0))
			}
			off += c
		}
	case accel.OpShuffle:
		s := b.shape(in)
		total := b.n * s.Size()
		b.emit("shuffle", elementwiseGrid(total, sms), tensorArg(in), tensorArg(out), iarg(b.n), iarg(s[0]), iarg(s[1]*s[2]), iarg(op.Groups))
	default:
		return fmt.Errorf("no CUDA kernel for op kind %q", op.Kind)
	}
	return nil
}

// convGeom returns the op's ConvParams for the batch, normalised.
func (b *planBuilder) convGeom(op *accel.Op) accel.ConvParams {
	s := b.shape(op.In[0])
	c := op.Conv
	c.N, c.C, c.H, c.W = b.n, s[0], s[1], s[2]
	return c.Norm()
}

func (b *planBuilder) conv(op *accel.Op) error {
	c := b.convGeom(op)
	in, out := op.In[0], op.Out[0]
	w, x := op.W, tensorArg(in)
	if op.Quant != nil {
		if err := checkQuant(op.Quant, len(op.W), c.K); err != nil {
			return err
		}
		if c.Groups == 1 {
			return b.qgemm(op, c)
		}
		// Grouped int8: fake-quantize the input, dequantize the weights.
		total := c.N * c.C * c.H * c.W
		b.needScratch(4 * int64(total))
		b.emit("fake_quant", elementwiseGrid(total, b.lim.SMs), x, scratchArg(0), iarg(total), floatArg(op.Quant.InScale), iarg(int(op.Quant.InZero)))
		x, w = scratchArg(0), op.Quant.Float()
	}
	bias := b.optConst("bias", op.B)
	oh, ow := c.OutH(), c.OutW()
	if c.Depthwise() {
		total := c.N * c.K * oh * ow
		b.emit("depthwise", elementwiseGrid(total, b.lim.SMs), x, b.addConst("w", w, nil), bias, tensorArg(out),
			iarg(c.N), iarg(c.C), iarg(c.H), iarg(c.W), iarg(c.KH), iarg(c.KW), iarg(c.StrideH), iarg(c.StrideW),
			iarg(c.PadH), iarg(c.PadW), iarg(c.DilH), iarg(c.DilW), iarg(oh), iarg(ow), iarg(int(op.Act)))
		return nil
	}
	m, n := c.K/c.Groups, c.N*oh*ow
	t := chooseTile(m, n, c.Groups, b.lim.SMs)
	kernel, grid := "conv_"+t.String(), [3]int{ceilDiv(n, t.BN), ceilDiv(m, t.BM), c.Groups}
	if kd := c.C / c.Groups * c.KH * c.KW; fewBlocks(grid, b.lim.SMs) && kd >= warpTerms {
		kernel, grid = "conv_warp", [3]int{min(ceilDiv(c.K*n, 8), 64*max(b.lim.SMs, 1)), 1, 1}
	}
	b.emit(kernel, grid, x, b.addConst("w", w, nil), bias, tensorArg(out),
		iarg(c.N), iarg(c.C), iarg(c.H), iarg(c.W), iarg(c.K), iarg(c.KH), iarg(c.KW), iarg(c.StrideH), iarg(c.StrideW),
		iarg(c.PadH), iarg(c.PadW), iarg(c.DilH), iarg(c.DilW), iarg(c.Groups), iarg(oh), iarg(ow), iarg(int(op.Act)))
	return nil
}

// warpTerms is the shortest dot product worth a warp (conv_warp,
// linear_small): below it most lanes would idle.
const warpTerms = 64

// fewBlocks reports whether a tiled grid would occupy fewer than half the
// SMs, so that warp-per-output kernels keep more of the GPU busy.
func fewBlocks(grid [3]int, sms int) bool {
	return 2*grid[0]*grid[1]*grid[2] < max(sms, 1)
}

func (b *planBuilder) linear(op *accel.Op) error {
	in, out := op.In[0], op.Out[0]
	k, n := b.shape(in).Size(), b.shape(out).Size()
	if op.Quant != nil {
		if err := checkQuant(op.Quant, len(op.W), n); err != nil {
			return err
		}
		// A linear layer is a 1×1 convolution over a 1×1 image.
		c := accel.ConvParams{N: b.n, C: k, H: 1, W: 1, K: n, KH: 1, KW: 1}.Norm()
		return b.qgemm(op, c)
	}
	bias := b.optConst("bias", op.B)
	w := b.addConst("w", op.W, nil)
	t := chooseTile(b.n, n, 1, b.lim.SMs)
	kernel, grid := "linear_"+t.String(), [3]int{ceilDiv(n, t.BN), ceilDiv(b.n, t.BM), 1}
	if b.n <= 8 || (fewBlocks(grid, b.lim.SMs) && k >= warpTerms) {
		// A warp per output feature and 8 rows.
		kernel, grid = "linear_small", [3]int{ceilDiv(n, 8), ceilDiv(b.n, 8), 1}
	}
	b.emit(kernel, grid, tensorArg(in), w, bias, tensorArg(out), iarg(b.n), iarg(n), iarg(k), iarg(int(op.Act)))
	return nil
}

// qgemm emits the int8 path of a groups-1 convolution (a linear layer
// being the 1×1 case): quantize and im2col the input into scratch, then
// igemm with dp4a against the packed weights.
func (b *planBuilder) qgemm(op *accel.Op, c accel.ConvParams) error {
	q := op.Quant
	kd := c.C * c.KH * c.KW
	kpad := (kd + 3) &^ 3
	oh, ow := c.OutH(), c.OutW()
	j := c.N * oh * ow
	words := kpad / 4
	b.needScratch(4 * int64(j) * int64(words))
	packed, rowScale, rowCorr := packQuant(q, c.K, kd)
	b.emit("quant_im2col", elementwiseGrid(j*words, b.lim.SMs), tensorArg(op.In[0]), scratchArg(0),
		iarg(c.N), iarg(c.C), iarg(c.H), iarg(c.W), iarg(c.KH), iarg(c.KW), iarg(c.StrideH), iarg(c.StrideW),
		iarg(c.PadH), iarg(c.PadW), iarg(c.DilH), iarg(c.DilW), iarg(oh), iarg(ow), iarg(kpad), floatArg(q.InScale), iarg(int(q.InZero)))
	b.emit("igemm", [3]int{ceilDiv(j, 64), ceilDiv(c.K, 64), 1}, b.addConst("wq", nil, packed), scratchArg(0),
		b.addConst("rowscale", rowScale, nil), b.addConst("rowcorr", nil, rowCorr), b.optConst("bias", op.B), tensorArg(op.Out[0]),
		iarg(c.K), iarg(j), iarg(words), iarg(oh*ow), iarg(int(op.Act)))
	return nil
}

// checkQuant validates an op's int8 weights against nw float weights and
// rows output channels.
func checkQuant(q *accel.QuantWeights, nw, rows int) error {
	switch {
	case q.Bits < 1 || q.Bits > 8:
		return fmt.Errorf("int8 weights: %d bits, want 1..8", q.Bits)
	case len(q.Q) != nw:
		return fmt.Errorf("int8 weights: %d values, want %d", len(q.Q), nw)
	case len(q.Scale) != rows:
		return fmt.Errorf("int8 weights: %d scales, want one per output channel (%d)", len(q.Scale), rows)
	case !(q.InScale > 0) || math.IsInf(float64(q.InScale), 0):
		return fmt.Errorf("int8 weights: input scale %v must be positive and finite", q.InScale)
	case q.InZero < 0 || q.InZero > 255:
		return fmt.Errorf("int8 weights: input zero point %d outside [0,255]", q.InZero)
	}
	return nil
}

// packQuant lays q's rows (rows × kd int8) out as rows of kpad/4 int32
// words, four consecutive k per word (little-endian, zero beyond kd), and
// computes rowScale[o] = Scale[o]·InScale and rowCorr[o] = (128 − InZero)·ΣQ[o]
// (see kernels.cu's int8 section).
func packQuant(q *accel.QuantWeights, rows, kd int) (packed []int32, rowScale []float32, rowCorr []int32) {
	words := (kd + 3) / 4
	packed = make([]int32, rows*words)
	rowScale = make([]float32, rows)
	rowCorr = make([]int32, rows)
	for o := 0; o < rows; o++ {
		sum := int32(0)
		for k := 0; k < kd; k++ {
			v := q.Q[o*kd+k]
			sum += int32(v)
			packed[o*words+k/4] |= int32(uint32(uint8(v)) << (8 * uint(k%4)))
		}
		rowScale[o] = q.Scale[o] * q.InScale
		rowCorr[o] = (128 - q.InZero) * sum
	}
	return packed, rowScale, rowCorr
}
