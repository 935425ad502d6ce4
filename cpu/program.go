//go:build cgo

package cpu

/*
#include "act.h"
#include "nchwc.h"
#include "qgemm.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"time"
	"unsafe"

	"hwnas/accel"
)

// program is a Plan compiled for this CPU (Backend.Compile). Feature maps
// that float convolutions, depthwise convolutions, pooling, batch norm,
// activations and residual adds touch are kept in the blocked layout of
// nchwc.h, at the kernel level current at compile time; the weights those
// ops need are repacked for it here, once. Ops without blocked kernels —
// int8 and sparse layers (the Int8/Sparse kernels), grouped convolutions,
// linear layers — run on the plain NCHW kernels of Kernels, and the
// program converts a tensor between the layouts where a consumer needs
// the other one (once per tensor version, shared by its consumers). The
// input and output are plain.
//
// A batch runs in groups of a few samples, each group through every op
// before the next group starts, so that a group's feature maps stay in the
// core's cache instead of the whole batch's streaming through memory at
// every op; only linear layers run on the whole batch at once (a GEMM wants
// rows). The ops between two whole-batch steps form a phase; a tensor used
// within one phase only lives in a group-sized buffer reused by every
// group (one per thread), the others (input, output, what a whole-batch
// step reads or writes, what crosses phases) in a batch-sized one. With
// more samples than threads the groups are shared out among the threads
// (each running single-threaded kernels); otherwise each kernel call splits
// its work across the threads. Every buffer is allocated at compile time.
// Run copies the input in, runs the steps and copies the output out; it is
// not safe for concurrent use, so compile one program per goroutine.
type program struct {
	k      *Kernels
	single []*Kernels // one single-threaded Kernels per thread
	plan   *accel.Plan
	batch  int
	group  int // samples a group
	isa    C.int
	block  int
	in     *tbuf // the plan input (plain)
	// inWritten says a step writes the input's storage (an op writing
	// it, or a view of it, in place): Run then copies the caller's input
	// rather than reading it where it lies.
	inWritten bool
	out       *tbuf // the plan output, plain (a conversion of the last value when that is blocked)
	steps     []step
	closed    bool
	// kernels names, per conv and linear op (by plan op index), the
	// kernel the compiler chose for this level (see kernelChoice).
	kernels map[int]string
}

// span is the part of the batch a step runs on: samples [n0,n1) of the
// group that starts at sample g0, run by worker w (whose group buffers it
// uses) with kernels k (all threads, or one).
type span struct {
	n0, n1, g0, w int
	k             *Kernels
}

// n is the number of samples of the span.
func (sp span) n() int { return sp.n1 - sp.n0 }

// of returns the span's samples of buffer b.
func (sp span) of(b *tbuf) []float32 { return b.at(sp) }

// tbuf is one tensor's storage in one layout: batch-sized (data) or
// group-sized per worker (group), or a view of another tbuf's storage.
type tbuf struct {
	data    []float32
	group   [][]float32
	view    *tbuf // storage shared with this one (a flattened tensor)
	blocked bool
	c, hw   int // channels and pixels per channel (a vector: c features, hw 1)
	stride  int // floats per sample
	// phase is the only phase whose steps use the buffer, or −1 when no
	// step has yet; batch says it needs batch-sized storage.
	phase int
	batch bool
	// alt is the tensor in the other layout, valid while altOK (until the
	// tensor is written again).
	alt   *tbuf
	altOK bool
	// pads are zero-bordered copies of this buffer for convolutions with
	// padding, by (pad rows, pad columns), valid while padOK.
	pads  map[[2]int]*tbuf
	padOK map[[2]int]bool
}

// root returns the tbuf that owns b's storage.
func (b *tbuf) root() *tbuf {
	for b.view != nil {
		b = b.view
	}
	return b
}

// at returns the span's samples of b.
func (b *tbuf) at(sp span) []float32 {
	r := b.root()
	if r.group != nil {
		d := r.group[sp.w]
		return d[(sp.n0-sp.g0)*b.stride : (sp.n1-sp.g0)*b.stride]
	}
	return r.data[sp.n0*b.stride : sp.n1*b.stride]
}

// step is one kernel call (or conversion) of the program over a span of
// samples; its time is charged to plan op op. whole steps run once on the
// whole batch (linear layers), the others group by group.
type step struct {
	op    int
	whole bool
	run   func(sp span)
}

var _ accel.OpTimedProgram = (*program)(nil)

// compiler builds a program op by op.
type compiler struct {
	*program
	bufs  []*tbuf       // current buffer of each plan tensor
	users [][]*accel.Op // the ops reading each plan tensor
	all   []*tbuf       // every buffer that owns storage
	phase int           // whole-batch steps so far
}

// compileProgram compiles p for batch samples per Run on k.
func compileProgram(k *Kernels, p *accel.Plan, batch int) (accel.Program, error) {
	if p == nil {
		return nil, errors.New("cpu: nil plan")
	}
	if batch <= 0 {
		return nil, fmt.Errorf("plan %q: batch %d must be positive", p.Name, batch)
	}
	if err := accel.CheckHostPlan(p); err != nil {
		return nil, err
	}
	isa := cISA()
	c := &compiler{program: &program{k: k, plan: p, batch: batch, isa: isa, block: blockOf(isa), kernels: map[int]string{}},
		bufs: make([]*tbuf, len(p.Tensors)), users: make([][]*accel.Op, len(p.Tensors))}
	for i := range p.Ops {
		for _, t := range p.Ops[i].In {
			c.users[t] = append(c.users[t], &p.Ops[i])
		}
	}
	c.in = c.alloc(p.Tensors[p.Input], false)
	c.in.batch = true
	c.bufs[p.Input] = c.in
	for i := range p.Ops {
		if err := c.op(i, &p.Ops[i]); err != nil {
			return nil, fmt.Errorf("plan %q: op %d %q (%s): %w", p.Name, i, p.Ops[i].Name, p.Ops[i].Kind, err)
		}
	}
	c.out = c.need(p.Output, false, len(p.Ops)-1)
	c.out.root().batch = true
	for range k.threads() {
		c.single = append(c.single, NewKernels(1))
	}
	c.group = groupSize(c.all, batch)
	for _, b := range c.all {
		if b.batch || b.phase < 0 {
			b.data = make([]float32, batch*b.stride)
			continue
		}
		b.group = make([][]float32, len(c.single))
		for w := range b.group {
			b.group[w] = make([]float32, c.group*b.stride)
		}
	}
	return c.program, nil
}

// groupBytes is the cache budget of a group: the feature maps a group's
// largest op reads and writes should fit about half a typical per-core L2.
const groupBytes = 256 << 10

// groupSize returns how many samples a group holds: as many as keep twice
// the largest tensor of a sample within groupBytes, at least one.
func groupSize(bufs []*tbuf, batch int) int {
	largest := 1
	for _, b := range bufs {
		largest = max(largest, b.stride)
	}
	return max(1, min(batch, groupBytes/(8*largest)))
}

// dims returns the channels and pixels of a per-sample shape.
func dims(s accel.Shape) (c, hw int) {
	if len(s) == 3 {
		return s[0], s[1] * s[2]
	}
	return s.Size(), 1
}

// alloc returns a buffer for a tensor of shape s in a layout (a blocked
// vector is its features padded to whole blocks); its storage, zeroed,
// comes when compiling ends and it is known whether it is batch- or
// group-sized.
func (c *compiler) alloc(s accel.Shape, blocked bool) *tbuf {
	ch, hw := dims(s)
	t := &tbuf{blocked: blocked, c: ch, hw: hw, stride: ch * hw, phase: -1}
	if t.blocked {
		t.stride = blocks(ch, c.block) * c.block * hw
	}
	c.all = append(c.all, t)
	return t
}

// need returns tensor id's current value in the wanted layout, adding a
// conversion step (charged to op) when it is held in the other one and
// has not been converted since its last write.
func (c *compiler) need(id int, blocked bool, op int) *tbuf {
	b := c.bufs[id]
	if b.blocked == blocked {
		return b
	}
	if b.alt != nil && b.altOK {
		return b.alt
	}
	if b.alt == nil {
		b.alt = c.alloc(c.plan.Tensors[id], blocked)
	}
	b.altOK = true
	c.convert(b, b.alt, op)
	return b.alt
}

// convert adds a step copying src into dst (the same tensor in the other
// layout).
func (c *compiler) convert(src, dst *tbuf, op int) {
	isa, ch, hw, xs, ys := c.isa, C.int(src.c), C.long(src.hw), C.long(src.stride), C.long(dst.stride)
	c.add(op, c.tasks(1, minItems(int64(src.stride)), func(sp span, n0, n1 C.long) {
		x, y := fptr(src.at(sp)), fptr(dst.at(sp))
		if src.blocked {
			C.hw_nc_from_blocked(isa, ch, hw, x, xs, y, ys, n0, n1)
		} else {
			C.hw_nc_to_blocked(isa, ch, hw, x, xs, y, ys, n0, n1)
		}
	}), src, dst)
}

// define returns the buffer op writes tensor id into: a new one in the
// layout asked, or, for an op writing a tensor that exists (in place), its
// buffer, whose other-layout copy becomes stale.
func (c *compiler) define(id int, blocked bool) *tbuf {
	if b := c.bufs[id]; b != nil {
		if b.root() == c.in {
			c.inWritten = true
		}
		b.altOK = false
		if b.alt != nil {
			clear(b.alt.padOK)
		}
		clear(b.padOK)
		return b
	}
	b := c.alloc(c.plan.Tensors[id], blocked)
	c.bufs[id] = b
	return b
}

// padded returns x (a tensor's current buffer in either layout) with a
// zero border of ph rows and pw columns, adding a step that copies x into
// the middle of a buffer whose border stays zero (once per tensor version
// and padding, shared by the convolutions that read it).
func (c *compiler) padded(x *tbuf, s accel.Shape, ph, pw, op int) *tbuf {
	key := [2]int{ph, pw}
	if x.pads == nil {
		x.pads, x.padOK = map[[2]int]*tbuf{}, map[[2]int]bool{}
	}
	if x.padOK[key] {
		return x.pads[key]
	}
	y := x.pads[key]
	if y == nil {
		y = c.alloc(accel.Shape{s[0], s[1] + 2*ph, s[2] + 2*pw}, x.blocked)
		x.pads[key] = y
	}
	x.padOK[key] = true
	isa, xb := c.isa, C.int(0)
	if x.blocked {
		xb = 1
	}
	ch, h, w := C.int(s[0]), C.int(s[1]), C.int(s[2])
	c.add(op, c.tasks(1, minItems(int64(x.stride)), func(sp span, n0, n1 C.long) {
		C.hw_nc_pad(isa, xb, ch, h, w, C.int(ph), C.int(pw), fptr(x.at(sp)), C.long(x.stride), fptr(y.at(sp)), C.long(y.stride), n0, n1)
	}), x, y)
	return y
}

// add appends a step run group by group, which uses buffers bufs.
func (c *compiler) add(op int, f func(sp span), bufs ...*tbuf) {
	for _, b := range bufs {
		r := b.root()
		if r.phase >= 0 && r.phase != c.phase {
			r.batch = true // used in two phases: it must hold the batch
		}
		r.phase = c.phase
	}
	c.steps = append(c.steps, step{op: op, run: f})
}

// addWhole appends a step run once on the whole batch, which uses
// buffers bufs (batch-sized for it), and starts a new phase.
func (c *compiler) addWhole(op int, f func(sp span), bufs ...*tbuf) {
	for _, b := range bufs {
		b.root().batch = true
	}
	c.steps = append(c.steps, step{op: op, whole: true, run: f})
	c.phase++
}

// tasks returns a step running f over the span's tasks, per tasks a
// sample, split across the span's kernels' goroutines (at least minTasks a
// chunk). The C kernels count tasks over a batch from its first sample
// (nchwc.h); f gets the span, to pass the buffers from its first sample
// (tbuf.at), and task numbers from there, one cgo call a chunk.
func (c *compiler) tasks(per, minTasks int, f func(sp span, t0, t1 C.long)) func(sp span) {
	return func(sp span) {
		sp.k.parallel(sp.n()*per, minTasks, func(lo, hi, _ int) { f(sp, C.long(lo), C.long(hi)) })
	}
}

// op compiles plan op i.
func (c *compiler) op(i int, op *accel.Op) error {
	p := c.plan
	inShape := p.Tensors[op.In[0]]
	switch op.Kind {
	case accel.OpConv:
		return c.conv(i, op)
	case accel.OpLinear:
		c.linear(i, op)
	case accel.OpBatchNorm:
		x := c.bufs[op.In[0]]
		y := c.define(op.Out[0], x.blocked)
		if x.blocked {
			scale, shift := padChannels(op.Scale, c.block), padChannels(op.Shift, c.block)
			cb, isa, act, hw := blocks(x.c, c.block), c.isa, C.int(op.Act), C.long(x.hw)
			c.add(i, c.tasks(cb, minItems(int64(x.hw*c.block)), func(sp span, b0, b1 C.long) {
				C.hw_nc_affine(isa, C.int(cb), hw, fptr(x.at(sp)), fptr(scale), fptr(shift), act, fptr(y.at(sp)), b0, b1)
			}), x, y)
			break
		}
		ch, hw := x.c, x.hw
		c.add(i, func(sp span) {
			xs, ys := sp.of(x), sp.of(y)
			for j := range xs {
				ys[j] = xs[j] * op.Scale[(j/hw)%ch]
			}
			must(sp.k.BiasAct(sp.n(), ch, hw, ys, op.Shift, op.Act, ys))
		}, x, y)
	case accel.OpAct:
		x := c.bufs[op.In[0]]
		y := c.define(op.Out[0], x.blocked)
		c.add(i, func(sp span) { must(sp.k.BiasAct(sp.n(), 1, x.stride, sp.of(x), nil, op.Act, sp.of(y))) }, x, y)
	case accel.OpAdd:
		a := c.bufs[op.In[0]]
		b := c.need(op.In[1], a.blocked, i)
		y := c.define(op.Out[0], a.blocked)
		isa, act := c.isa, C.int(op.Act)
		c.add(i, c.tasks(a.stride, 1<<14, func(sp span, lo, hi C.long) {
			C.hw_nc_add(isa, fptr(a.at(sp)), fptr(b.at(sp)), act, fptr(y.at(sp)), lo, hi)
		}), a, b, y)
	case accel.OpMaxPool, accel.OpAvgPool:
		x := c.bufs[op.In[0]]
		y := c.define(op.Out[0], x.blocked)
		q := op.Pool
		q.C, q.H, q.W = inShape[0], inShape[1], inShape[2]
		if !x.blocked {
			isMax := op.Kind == accel.OpMaxPool
			c.add(i, func(sp span) {
				q := q
				q.N = sp.n()
				if isMax {
					must(sp.k.MaxPool2D(q, sp.of(x), sp.of(y), nil))
				} else {
					must(sp.k.AvgPool2D(q, sp.of(x), sp.of(y)))
				}
			}, x, y)
			break
		}
		cp := C.hw_conv_t{C: C.int(q.C), H: C.int(q.H), W: C.int(q.W), K: C.int(q.C), KH: C.int(q.KH), KW: C.int(q.KW),
			sh: C.int(one(q.StrideH)), sw: C.int(one(q.StrideW)), ph: C.int(q.PadH), pw: C.int(q.PadW), dh: 1, dw: 1, G: 1,
			OH: C.int(q.OutH()), OW: C.int(q.OutW())}
		avg := C.int(0)
		if op.Kind == accel.OpAvgPool {
			avg = 1
		}
		isa := c.isa
		c.add(i, c.tasks(blocks(q.C, c.block)*q.OutH(), minItems(int64(q.OutW()*q.KH*q.KW*c.block)), func(sp span, r0, r1 C.long) {
			C.hw_nc_pool(isa, &cp, avg, fptr(x.at(sp)), C.long(x.stride), fptr(y.at(sp)), C.long(y.stride), r0, r1)
		}), x, y)
	case accel.OpGlobalAvgPool:
		x := c.bufs[op.In[0]]
		y := c.define(op.Out[0], false)
		if !x.blocked {
			c.add(i, func(sp span) { must(sp.k.GlobalAvgPool(sp.n(), x.c, x.hw, sp.of(x), sp.of(y))) }, x, y)
			break
		}
		isa, ch, hw := c.isa, C.int(x.c), C.long(x.hw)
		c.add(i, c.tasks(1, minItems(int64(x.stride)), func(sp span, n0, n1 C.long) {
			C.hw_nc_gap(isa, ch, hw, fptr(x.at(sp)), C.long(x.stride), fptr(y.at(sp)), C.long(y.stride), n0, n1)
		}), x, y)
	case accel.OpConcat, accel.OpSplit:
		c.channels(i, op)
	case accel.OpShuffle:
		x := c.bufs[op.In[0]]
		y := c.define(op.Out[0], x.blocked)
		g, ch, hw := op.Groups, x.c, x.hw
		if x.blocked {
			isa := c.isa
			c.add(i, func(sp span) {
				xs, ys := x.at(sp), y.at(sp)
				for s := range sp.n() {
					C.hw_nc_shuffle(isa, C.int(ch), C.int(g), C.long(hw), fptr(xs[s*x.stride:]), fptr(ys[s*y.stride:]))
				}
			}, x, y)
			break
		}
		cg := ch / g
		c.add(i, func(sp span) {
			// out channel j·g+i = in channel i·cg+j.
			xs, ys := x.at(sp), y.at(sp)
			for s := range sp.n() {
				base := s * ch * hw
				for a := 0; a < g; a++ {
					for b := 0; b < cg; b++ {
						src, dst := base+(a*cg+b)*hw, base+(b*g+a)*hw
						copy(ys[dst:dst+hw], xs[src:src+hw])
					}
				}
			}
		}, x, y)
	case accel.OpFlatten:
		x := c.bufs[op.In[0]]
		if x.blocked && c.linearOnly(op.Out[0]) {
			// Read by dense linear layers only: they take the blocked
			// order as it is, their weights permuted to match
			// (linearTaps, linearQuantWeights), and nothing is copied.
			c.bufs[op.Out[0]] = &tbuf{view: x, blocked: true, c: x.c, hw: x.hw, stride: x.stride}
			break
		}
		if x.blocked {
			// Flattening is in plain (C, H, W) order: the plain copy
			// goes straight into the output's own buffer.
			y := c.define(op.Out[0], false)
			c.convert(x, &tbuf{view: y, c: x.c, hw: x.hw, stride: y.stride}, i)
			break
		}
		// Same memory, as the host program does.
		c.bufs[op.Out[0]] = &tbuf{view: x, c: p.Tensors[op.Out[0]].Size(), hw: 1, stride: x.stride}
	default:
		return fmt.Errorf("op kind %q has no CPU implementation", op.Kind)
	}
	return nil
}

// conv compiles a convolution: int8 and sparse ones, and grouped ones that
// are not depthwise, on the plain kernels; the others blocked.
func (c *compiler) conv(i int, op *accel.Op) error {
	p, n := c.plan, c.batch
	s := p.Tensors[op.In[0]]
	cp := op.Conv.Norm()
	cp.N, cp.C, cp.H, cp.W = n, s[0], s[1], s[2]
	dw := cp.Groups > 1 && depthwise(cp)
	sparse := c.sparse(op)
	// An int8 convolution whose integer GEMM does not pay (the "grid"
	// form: depthwise, 1×1 and stem convolutions) runs as qConv2DGrid
	// computes it, on the blocked float kernels: its input put on the
	// uint8 grid (fakeQuant) and its weights Scale[o]·Q[o,i].
	var grid *accel.QuantWeights
	form := ""
	if op.Quant != nil {
		if form = qconvForm(cp, op.Quant); form == "grid" {
			grid = op.Quant
		}
	}
	switch {
	case grid != nil:
		c.kernels[i] = "int8/grid-blocked"
		if dw {
			c.kernels[i] = "int8/grid-blocked-depthwise"
		}
	case op.Quant != nil:
		c.kernels[i] = "int8/" + form
	case sparse != nil:
		c.kernels[i] = "sparse"
	case cp.Groups > 1 && !dw:
		c.kernels[i] = "grouped"
	case dw:
		c.kernels[i] = "blocked-depthwise"
	default:
		c.kernels[i] = "blocked"
	}
	if op.Quant != nil && grid == nil && levelPacking() != packNone {
		// The integer GEMM on blocked tensors (qConv2DBlocked): no
		// layout conversion on either side.
		x := c.need(op.In[0], true, i)
		y := c.define(op.Out[0], true)
		block := c.block
		c.add(i, func(sp span) {
			cp := cp
			cp.N = sp.n()
			must(qConv2DBlocked(sp.k.threads(), cp, block, sp.of(x), x.stride, op.Quant, op.B, op.Act, sp.of(y), y.stride))
		}, x, y)
		return nil
	}
	if (op.Quant != nil && grid == nil) || sparse != nil || (cp.Groups > 1 && !dw) {
		x := c.need(op.In[0], false, i)
		y := c.define(op.Out[0], false)
		c.add(i, func(sp span) {
			cp := cp
			cp.N = sp.n()
			switch {
			case op.Quant != nil:
				must(sp.k.QConv2D(cp, sp.of(x), op.Quant, op.B, op.Act, sp.of(y)))
			case sparse != nil:
				must(sp.k.SpConv2D(cp, sp.of(x), sparse, op.B, op.Act, sp.of(y)))
			default:
				must(sp.k.Conv2D(cp, sp.of(x), op.W, op.B, op.Act, sp.of(y)))
			}
		}, x, y)
		return nil
	}
	ccp := convC(cp)
	bias := padChannels(op.B, c.block)
	isa, act, oh := c.isa, C.int(op.Act), cp.OutH()
	macsSample := cp.MACs() / int64(n)
	// input returns x as the kernel reads it: with a padded convolution's
	// border materialised (ccp then has no padding: every output pixel is
	// an interior one, no bounds checks), and a 1×1 stride-1 convolution
	// seen as one row of H·W pixels (register tiles then span rows).
	input := func(x *tbuf) *tbuf {
		if cp.PadH > 0 || cp.PadW > 0 {
			x = c.padded(x, s, cp.PadH, cp.PadW, i)
			ccp.H, ccp.W, ccp.ph, ccp.pw = C.int(cp.H+2*cp.PadH), C.int(cp.W+2*cp.PadW), 0, 0
		}
		if cp.KH == 1 && cp.KW == 1 && cp.StrideH == 1 && cp.StrideW == 1 && ccp.ph == 0 && ccp.pw == 0 {
			ccp.W, ccp.H, ccp.OW, ccp.OH = ccp.H*ccp.W, 1, ccp.OH*ccp.OW, 1
			oh = 1
		}
		return x
	}
	w := op.W
	if grid != nil {
		w = grid.Float()
	}
	if dw {
		// The depthwise kernel handles padding itself, which pays where
		// the stride makes the input larger than the output: a padded
		// copy costs in proportion to the input, the edge pixels the
		// kernel runs one by one in proportion to the output. At stride
		// 1 on small maps (24 channels, 7×7) the copy was the cheaper.
		x := c.fakeQuant(c.need(op.In[0], true, i), s, grid, i)
		if cp.StrideH == 1 && cp.StrideW == 1 {
			x = input(x)
		}
		y := c.define(op.Out[0], true)
		w := packDepthwiseWeights(w, cp.C, cp.KH, cp.KW, c.block)
		taps := make([]C.int, 2*cp.KH*cp.KW)
		C.hw_nc_dwconv_taps(isa, &ccp, &taps[0])
		cb := blocks(cp.C, c.block)
		c.add(i, c.tasks(cb*oh, minItems(macsSample/int64(cb*oh)), func(sp span, r0, r1 C.long) {
			C.hw_nc_dwconv(isa, &ccp, fptr(x.at(sp)), C.long(x.stride), fptr(w), &taps[0], fptr(bias), act, fptr(y.at(sp)), C.long(y.stride), r0, r1)
		}), x, y)
		return nil
	}
	if x := c.bufs[op.In[0]]; pixelConv(cp, x.blocked, c.block) {
		// Too few output channels to fill a block's lanes (a depthwise
		// convolution of a one-channel image is a 1→1 convolution): the
		// vectors run along output rows, plain in and plain out.
		c.kernels[i] = "plain-pixels"
		x = c.fakeQuant(x, s, grid, i)
		y := c.define(op.Out[0], false)
		c.add(i, c.tasks(1, minItems(macsSample), func(sp span, n0, n1 C.long) {
			if C.hw_nc_conv_px(isa, &ccp, fptr(x.at(sp)), C.long(x.stride), fptr(w), fptr(op.B), act, fptr(y.at(sp)), C.long(y.stride), n0, n1) != 0 {
				must(fmt.Errorf("conv %s: no memory for its input's phase rows", op.Name))
			}
		}), x, y)
		return nil
	}
	// A plain input of fewer channels than a block (a first layer) is read
	// as it is; anything else blocked.
	x := c.bufs[op.In[0]]
	if x.blocked || cp.C >= c.block {
		x = c.need(op.In[0], true, i)
	}
	x = input(c.fakeQuant(x, s, grid, i))
	y := c.define(op.Out[0], true)
	xb := C.int(0)
	if x.blocked {
		xb = 1
		w = packConvWeights(w, cp.K, cp.C, cp.KH, cp.KW, c.block)
	} else {
		// [Kb][C][KH][KW][B]: a kernel row's weight vectors consecutive,
		// as its input values are (hw_nc_conv_taps); the linear layout of
		// K rows of C·KH·KW.
		w = packLinearWeights(w, cp.K, cp.C*cp.KH*cp.KW, c.block, nil)
	}
	taps := make([]C.int, 3*cp.C*cp.KH*cp.KW)
	nt := C.hw_nc_conv_taps(isa, &ccp, xb, &taps[0])
	// A task is one output row of a pair of output blocks (the tile).
	tasks := int(C.hw_nc_conv_tasks(isa, &ccp))
	c.add(i, c.tasks(tasks, minItems(macsSample/int64(tasks)), func(sp span, r0, r1 C.long) {
		C.hw_nc_conv(isa, &ccp, xb, fptr(x.at(sp)), C.long(x.stride), fptr(w), &taps[0], nt, fptr(bias), act, fptr(y.at(sp)), C.long(y.stride), r0, r1)
	}), x, y)
	return nil
}

// pixelConv reports whether a convolution that is not depthwise runs on
// hw_nc_conv_px, whose vectors hold output pixels rather than channels:
// one group, a plain input (fewer channels than a block, not yet
// blocked) and at most a quarter of a block of output channels, where
// the blocked kernel would leave three lanes in four empty. On the 3×3
// stride-2 depthwise convolution of a 28×28 one-channel image that half
// the quick-start study's candidates begin with (BenchmarkProgramConv
// dw_c1_3x3s2, batch 64, AMD EPYC Zen 5, alternating builds) it took
// 0.49–0.52 against 0.92–1.23 µs an image at AVX2, 0.51–0.56 against
// 0.95–0.98 at AVX-512.
func pixelConv(cp accel.ConvParams, blocked bool, block int) bool {
	return cp.Groups <= 1 && !blocked && cp.C < block && cp.K*4 <= block
}

// fakeQuant returns x (of per-sample shape s) put on q's uint8 input grid,
// x̂ = (clamp(rint(x/InScale) + InZero, 0, 255) − InZero)·InScale, in a new
// buffer of x's layout (a step charged to op), or x itself when q is nil.
// Zeros stay zeros, so the padding lanes of a blocked tensor and the
// border a padded convolution adds later are on the grid too.
func (c *compiler) fakeQuant(x *tbuf, s accel.Shape, q *accel.QuantWeights, op int) *tbuf {
	if q == nil {
		return x
	}
	y := c.alloc(s, x.blocked)
	isa, stride, scale, zero := c.isa, C.long(x.stride), C.float(q.InScale), C.int(q.InZero)
	c.add(op, c.tasks(1, minItems(int64(x.stride)), func(sp span, n0, n1 C.long) {
		xs, ys := x.at(sp), y.at(sp)
		C.hw_fakequant_f32(isa, (n1-n0)*stride, fptr(xs[n0*stride:]), scale, zero, fptr(ys[n0*stride:]))
	}), x, y)
	return y
}

// sparseMaxDensity is the largest fraction of non-zero weights at which a
// conv or linear op that carries a CSR form (accel.Op.Sparse) runs on the
// sparse kernels; a denser one runs on the dense kernels with its float W,
// which holds the same values (the zeros included), so the choice changes
// speed only, never the result. The dense blocked kernels do several times
// more multiply-adds per second than the sparse ones do non-zeros, most of
// all for k×k convolutions, whose taps the blocked kernel reuses from
// registers (BenchmarkProgramSparse measures both sides: a 5×5 conv of 16
// channels stays faster dense even at 10% density on AVX-512, LeNet-5's
// conv2 and 1×1 convs cross near 10–20%, a linear layer near 20–30%). The
// rule reads the weights alone, so a plan compiles to the same kernels on
// every run; the thresholds are the same at every x86 level.
var sparseMaxDensity = struct{ spatial, matmul float64 }{0.1, 0.2}

// sparse returns the CSR weights op runs on, or nil when it runs dense
// (no CSR form, an int8 one, or one denser than sparseMaxDensity allows).
func (c *compiler) sparse(op *accel.Op) *accel.SparseWeights {
	s := op.Sparse
	if s == nil || op.Quant != nil || s.Rows <= 0 || s.Cols <= 0 {
		return nil
	}
	limit := sparseMaxDensity.matmul
	if op.Kind == accel.OpConv && op.Conv.KH*op.Conv.KW > 1 {
		limit = sparseMaxDensity.spatial
	}
	if float64(len(s.Val)) > limit*float64(s.Rows)*float64(s.Cols) {
		return nil
	}
	return s
}

// linear compiles a linear layer. A float one runs on the blocked tile
// kernel (hw_nc_linear) over the whole batch at once (each weight vector
// then serves a tile of samples), reading its input in whichever layout it
// comes (a blocked one through permuted weights: linearTaps, and
// linearQuantWeights for int8) and writing a blocked vector; int8 and
// sparse ones run on their own plain kernels.
func (c *compiler) linear(i int, op *accel.Op) {
	p := c.plan
	fo := p.Tensors[op.Out[0]].Size()
	sparse := c.sparse(op)
	c.kernels[i] = map[bool]string{true: "sparse", false: "blocked"}[sparse != nil]
	if op.Quant != nil {
		c.kernels[i] = "int8/" + qlinearForm(c.batch, op.Quant)
	}
	if op.Quant != nil || sparse != nil {
		x := c.bufs[op.In[0]]
		q := op.Quant
		var li linearInput
		if !x.blocked || sparse != nil {
			x = c.need(op.In[0], false, i)
		} else {
			q, li = c.linearQuantWeights(op, x), linearInput{stride: x.stride, c: x.c, hw: x.hw, b: c.block}
		}
		y := c.define(op.Out[0], false)
		fi := x.c * x.hw // features: a plain x's stride, a blocked one's without padding
		if sparse != nil {
			c.addWhole(i, func(sp span) { must(sp.k.SpLinear(sp.n(), fi, fo, sp.of(x), sparse, op.B, op.Act, sp.of(y))) }, x, y)
			return
		}
		c.addWhole(i, func(sp span) {
			must(qLinearFrom(sp.k.threads(), sp.n(), fi, fo, sp.of(x), li, q, op.B, op.Act, sp.of(y)))
		}, x, y)
		return
	}
	x := c.bufs[op.In[0]]
	fi := len(op.W) / fo
	cols, taps := linearTaps(x, fi, c.block)
	y := c.define(op.Out[0], true)
	wp := packLinearWeights(op.W, fo, fi, c.block, cols)
	nt := C.int(len(taps) / 3)
	bias := padChannels(op.B, c.block)
	isa, act, wblock := c.isa, C.int(op.Act), C.long(len(cols)*c.block)
	c.addWhole(i, func(sp span) {
		n := C.long(sp.n())
		tasks := int(C.hw_nc_linear_tasks(isa, n, C.int(fo)))
		xs, ys := sp.of(x), sp.of(y)
		sp.k.parallel(tasks, 1, func(lo, hi, _ int) {
			C.hw_nc_linear(isa, n, C.int(fo), fptr(xs), C.long(x.stride), fptr(wp), wblock, &taps[0], nt, fptr(bias), act,
				fptr(ys), C.long(y.stride), C.long(lo), C.long(hi))
		})
	}, x, y)
}

// linearTaps lays out a float linear layer's fi inputs for hw_nc_linear:
// cols lists the plain feature index of each packed weight column, in the
// order the kernel reads the input x, and taps its (x offset, weight
// offset, features) triples, at most b features each. A blocked x (a
// flattened feature map, or a blocked vector) is read block by block and
// pixel by pixel, without the padding lanes of a last partial channel
// block: at 8 lanes LeNet-5's 50 channels would be 56, and fc1 would read
// and multiply 12% more weights, all zero.
func linearTaps(x *tbuf, fi, b int) (cols []int, taps []C.int) {
	if !x.blocked {
		cols = make([]int, fi)
		for i := range cols {
			cols[i] = i
		}
		for i := 0; i < fi; i += b {
			taps = append(taps, C.int(i), C.int(i*b), C.int(min(b, fi-i)))
		}
		return cols, taps
	}
	for cb := 0; cb < blocks(x.c, b); cb++ {
		n := min(b, x.c-cb*b)
		for p := 0; p < x.hw; p++ {
			taps = append(taps, C.int((cb*x.hw+p)*b), C.int(len(cols)*b), C.int(n))
			for l := 0; l < n; l++ {
				cols = append(cols, (cb*b+l)*x.hw+p)
			}
		}
	}
	return cols, taps
}

// linearOnly reports whether every reader of tensor id is a dense
// (float or int8) linear layer and id is not the plan's output.
func (c *compiler) linearOnly(id int) bool {
	if id == c.plan.Output || len(c.users[id]) == 0 {
		return false
	}
	for _, u := range c.users[id] {
		if u.Kind != accel.OpLinear || u.Sparse != nil {
			return false
		}
	}
	return true
}

// linearQuantWeights returns op's int8 weights with columns in the order
// qLinearFrom reads x, a blocked tensor (a flattened feature map, or a
// vector), in: channels-last, plain column ch·hw + p moves to p·c + ch, and
// the padding lanes of a last partial channel block are left out.
func (c *compiler) linearQuantWeights(op *accel.Op, x *tbuf) *accel.QuantWeights {
	fi := x.c * x.hw
	q := *op.Quant
	q.Q = channelsLast(op.Quant.Q, len(op.Quant.Q)/fi, fi, x.hw)
	return &q
}

// channels compiles a concatenation or split: blocked when every part
// and the whole are blocked-capable and the parts are blocked now.
func (c *compiler) channels(i int, op *accel.Op) {
	p := c.plan
	parts, whole := op.In, op.Out[0]
	if op.Kind == accel.OpSplit {
		parts, whole = op.Out, op.In[0]
	}
	blocked := len(p.Tensors[whole]) == 3
	if op.Kind == accel.OpConcat {
		for _, t := range parts {
			blocked = blocked && c.bufs[t].blocked
		}
	} else {
		blocked = blocked && c.bufs[whole].blocked
	}
	var wb *tbuf
	pb := make([]*tbuf, len(parts))
	if op.Kind == accel.OpConcat {
		for j, t := range parts {
			pb[j] = c.need(t, blocked, i)
		}
		wb = c.define(whole, blocked)
	} else {
		wb = c.need(whole, blocked, i)
		for j, t := range parts {
			pb[j] = c.define(t, blocked)
		}
	}
	concat := op.Kind == accel.OpConcat
	if blocked {
		isa, hw := c.isa, C.long(wb.hw)
		c.add(i, func(sp span) {
			ws := wb.at(sp)
			for s := range sp.n() {
				w := fptr(ws[s*wb.stride:])
				off := 0
				for _, b := range pb {
					x := fptr(b.at(sp)[s*b.stride:])
					if concat {
						C.hw_nc_copy_channels(isa, hw, x, 0, w, C.int(off), C.int(b.c))
					} else {
						C.hw_nc_copy_channels(isa, hw, w, C.int(off), x, 0, C.int(b.c))
					}
					off += b.c
				}
			}
		}, append(pb, wb)...)
		return
	}
	c.add(i, func(sp span) {
		ws := wb.at(sp)
		for s := range sp.n() {
			off := s * wb.stride
			for _, b := range pb {
				m := b.stride
				bs := b.at(sp)
				if concat {
					copy(ws[off:off+m], bs[s*m:(s+1)*m])
				} else {
					copy(bs[s*m:(s+1)*m], ws[off:off+m])
				}
				off += m
			}
		}
	}, append(pb, wb)...)
}

// one returns v, or 1 for 0 (a stride left unset).
func one(v int) int {
	if v == 0 {
		return 1
	}
	return v
}

// must panics on a kernel error: the program checked every size when it
// was compiled, so a kernel refusing its arguments is a bug, and Run turns
// the panic back into an error.
func must(err error) {
	if err != nil {
		panic(kernelError{err})
	}
}

type kernelError struct{ err error }

func (p *program) Batch() int      { return p.batch }
func (p *program) InputSize() int  { return p.plan.Tensors[p.plan.Input].Size() }
func (p *program) OutputSize() int { return p.plan.Tensors[p.plan.Output].Size() }

// Run copies in to the input tensor, runs every step and copies the output
// tensor to out.
func (p *program) Run(in, out []float32) error { return p.run(in, out, nil) }

// RunOpTimed is Run with the time of each plan op (its conversions
// included) stored in perOp.
func (p *program) RunOpTimed(in, out []float32, perOp []time.Duration) error {
	if len(perOp) != len(p.plan.Ops) {
		return fmt.Errorf("plan %q: %d per-op timings for %d ops", p.plan.Name, len(perOp), len(p.plan.Ops))
	}
	clear(perOp)
	return p.run(in, out, perOp)
}

func (p *program) run(in, out []float32, perOp []time.Duration) (err error) {
	if err := accel.CheckRun(p.plan, p.batch, p.closed, in, out); err != nil {
		return err
	}
	defer func() {
		if r := recover(); r != nil {
			ke, ok := r.(kernelError)
			if !ok {
				panic(r)
			}
			err = fmt.Errorf("plan %q: %w", p.plan.Name, ke.err)
		}
	}()
	ir, or := p.in.root(), p.out.root()
	own := [2][]float32{ir.data, or.data}
	defer func() { ir.data, or.data = own[0], own[1] }()
	// The steps read the caller's input and write its output where they
	// lie when they can (no copy at either end): the input when no step
	// writes it, the output when its storage is a plain batch of its own;
	// neither when the caller's slices overlap.
	apart := !overlap(in, out)
	if apart && !p.inWritten {
		ir.data = in
	} else {
		copy(ir.data, in)
	}
	direct := apart && or != ir && !or.blocked && len(or.data) == len(out)
	if direct {
		or.data = out
	}
	p.schedule(perOp)
	if !direct {
		copy(out, or.data)
	}
	return nil
}

// overlap reports whether slices a and b share memory.
func overlap(a, b []float32) bool {
	if len(a) == 0 || len(b) == 0 {
		return false
	}
	a0, b0 := uintptr(unsafe.Pointer(&a[0])), uintptr(unsafe.Pointer(&b[0]))
	return a0 < b0+uintptr(len(b))*4 && b0 < a0+uintptr(len(a))*4
}

// schedule runs the steps: whole steps on the whole batch, runs of the
// other steps group by group. With at least as many samples as threads and
// no per-op timing asked, the groups of a run are shared out among the
// threads, each with single-threaded kernels; otherwise groups run one
// after the other with kernels using every thread.
func (p *program) schedule(perOp []time.Duration) {
	for i := 0; i < len(p.steps); {
		if p.steps[i].whole {
			p.timed(p.steps[i], span{0, p.batch, 0, 0, p.k}, perOp)
			i++
			continue
		}
		j := i
		for j < len(p.steps) && !p.steps[j].whole {
			j++
		}
		run := p.steps[i:j]
		i = j
		workers := len(p.single)
		if workers > 1 && p.batch >= workers && perOp == nil {
			p.k.parallel(p.batch, 1, func(lo, hi, w int) {
				for g := lo; g < hi; g += p.group {
					for _, s := range run {
						s.run(span{g, min(g+p.group, hi), g, w, p.single[w]})
					}
				}
			})
			continue
		}
		for g := 0; g < p.batch; g += p.group {
			for _, s := range run {
				p.timed(s, span{g, min(g+p.group, p.batch), g, 0, p.k}, perOp)
			}
		}
	}
}

// timed runs s on sp, adding its time to perOp[s.op] when perOp is set.
func (p *program) timed(s step, sp span, perOp []time.Duration) {
	if perOp == nil {
		s.run(sp)
		return
	}
	t0 := time.Now()
	s.run(sp)
	perOp[s.op] += time.Since(t0)
}

// Close releases the buffers; Run fails afterwards.
func (p *program) Close() error {
	p.closed = true
	p.steps, p.in, p.out = nil, nil, nil
	return nil
}
