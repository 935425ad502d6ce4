//go:build cgo

package onnx

import (
	"math"
	"testing"

	"hwnas/accel"
)

// saturatingPlan is an int8 op (a 3×3 conv, or a linear layer) whose
// weights and inputs are the worst case for onnxruntime's u8·s8 kernels
// on x86 without VNNI — weights ±127 in adjacent pairs, input codes 255
// (conv) or 0 and 255 (linear, zero point 128), so pairs of products u·w
// sum to ±64,770, twice what vpmaddubsw's saturating 16-bit pair sum
// holds — followed by an int8 linear layer that selects some of its
// outputs (one weight of 127 per row), so onnxruntime requantizes the
// first op's result (it fuses it into QLinearConv or QGemm) and a
// saturated sum shows in the logits as many output steps. Exact integer
// arithmetic (hwnas's kernels, and onnxruntime's u8·u8 kernels, which the
// exporter targets) agrees. sparse prunes 80% of the first op's weights
// in pairs, so the sparse storage path is covered too. It returns the
// plan and an input of batch 16.
func saturatingPlan(kind accel.OpKind, sparse bool) (*accel.Plan, []float32) {
	var b *planBuilder
	var x int
	if kind == accel.OpConv {
		b = newPlan("saturating-conv", 3, accel.Shape{8, 6, 6})
		x = b.flatten(b.conv("conv", b.p.Input, 8, 3, 0, 1, 1, 1, accel.ActNone))
	} else {
		b = newPlan("saturating-linear", 3, accel.Shape{64})
		x = b.linear("fc", b.p.Input, 32, accel.ActNone, true)
	}
	p := b.done(b.linear("select", x, 10, accel.ActNone, false))
	first, sel := &p.Ops[0], &p.Ops[len(p.Ops)-1]
	rows := len(first.B)
	cols := len(first.W) / rows
	q := make([]int8, len(first.W))
	for j := range q {
		q[j] = 127
		if (j/2)%3 == 2 {
			q[j] = -127
		}
		if sparse && (j/2)%5 != 0 {
			q[j] = 0
		}
	}
	scale := make([]float32, rows)
	for o := range scale {
		scale[o] = 1.0 / 127 / float32(cols)
	}
	for j := range first.W {
		first.W[j] = float32(q[j]) * scale[j/cols]
	}
	first.Quant = &accel.QuantWeights{Bits: 8, Q: q, Scale: scale, InScale: 1.0 / 255}
	if kind == accel.OpLinear {
		first.Quant.InScale, first.Quant.InZero = 2.0/255, 128 // codes 0 and 255 for ∓1
	}
	// The selector: logit o = 127·(1/127)·x[7·o mod n], its input (the
	// first op's outputs, within about ±0.4) quantized at 1/255 around 128.
	n := len(sel.W) / 10
	sq := make([]int8, len(sel.W))
	sscale := make([]float32, 10)
	for o := range sscale {
		sq[o*n+(7*o)%n] = 127
		sscale[o] = 1.0 / 127
	}
	for j := range sel.W {
		sel.W[j] = float32(sq[j]) * sscale[j/n]
	}
	sel.Quant = &accel.QuantWeights{Bits: 8, Q: sq, Scale: sscale, InScale: 1.0 / 255, InZero: 128}
	in := make([]float32, 16*p.Tensors[p.Input].Size())
	for i := range in {
		in[i] = 1 // code 255
		if kind == accel.OpLinear && (i/2)%3 == 2 {
			in[i] = -1.008 // code 0: the pair −127·(0−128) adds up too
		}
	}
	return p, in
}

// TestInt8NoSaturation exports saturatingPlan (conv and linear, dense and
// pruned) and checks that onnxruntime's integer kernels give what hwnas's
// exact int8 kernels give, within one output quantization step: on an x86
// CPU without VNNI this fails if 8-bit weights travel as int8 (`make
// test-avx2` runs it on an emulated AVX2-only CPU). It also checks the
// exporter's invariant that makes this hold on every CPU: no INT8 weight
// initializer holds a value beyond ±64.
func TestInt8NoSaturation(t *testing.T) {
	for _, kind := range []accel.OpKind{accel.OpConv, accel.OpLinear} {
		for _, sparse := range []bool{false, true} {
			p, in := saturatingPlan(kind, sparse)
			model, err := Export(p, Metadata{})
			if err != nil {
				t.Fatal(err)
			}
			checkPairSafe(t, p)
			b, err := accel.Open("cpu", accel.Options{Threads: 1})
			if err != nil {
				t.Fatal(err)
			}
			prog, err := b.Compile(p, 16)
			if err != nil {
				t.Fatal(err)
			}
			a, err := Compare(prog, p, model, in, nil, 16, SessionOptions{Threads: 1})
			prog.Close()
			b.Close()
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s sparse=%v: max |Δ| %.3g = %.3g output steps", kind, sparse, a.MaxAbsDiff, a.MaxSteps)
			if a.MaxSteps > 1 || math.IsNaN(a.MaxSteps) {
				t.Errorf("%s sparse=%v: onnxruntime's int8 result is %.3g output steps from hwnas's, want ≤ 1 (saturated pair sums?)", kind, sparse, a.MaxSteps)
			}
		}
	}
}

// checkPairSafe builds p's graph and fails when an INT8 initializer holds
// a value beyond ±64, the range whose u8·s8 pair sums fit 16 bits.
func checkPairSafe(t *testing.T, p *accel.Plan) {
	t.Helper()
	b := &builder{plan: p, names: make([]string, len(p.Tensors)), inits: map[string]bool{}}
	if err := b.build(); err != nil {
		t.Fatal(err)
	}
	u8 := 0
	for _, in := range b.g.inits {
		switch in.dtype {
		case dtInt8:
			for _, v := range in.raw {
				if q := int8(v); q < -64 || q > 64 {
					t.Errorf("initializer %q: INT8 value %d beyond ±64 (saturates onnxruntime's u8·s8 kernels without VNNI)", in.name, q)
					break
				}
			}
		case dtUint8:
			u8++
		}
	}
	if u8 == 0 {
		t.Errorf("no UINT8 initializer: the 8-bit weights should be uint8 codes with zero point 128")
	}
}
