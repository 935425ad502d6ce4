//go:build cgo

package cpu

import (
	"math"
	"math/rand/v2"
	"testing"

	"hwnas/accel"
)

// TestProgramInt8Blocked compiles a chain of int8 convolutions of the
// shapes search candidates have (channel counts that are not whole
// blocks, on both sides, a strided 3×3, depthwise, 1×1 on both sides of
// the integer GEMM's threshold, grouped 3×3s of 20 and of 10 channels a
// group; full 8-bit and pair-safe weights) and
// checks, at every level this CPU has, that the program — which runs the
// integer GEMM on blocked tensors (qConv2DBlocked) and the grid forms on
// the blocked float kernels — computes what the host program computes
// with the plain int8 kernels (QConv2D), over a batch split across
// workers.
func TestProgramInt8Blocked(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	type spec struct {
		name                   string
		in, out, k, s, g, qmax int
		act                    accel.Act
	}
	specs := []spec{
		{"int-s2", 20, 26, 3, 2, 1, 127, accel.ActReLU},
		{"dw", 26, 26, 3, 1, 26, 127, accel.ActReLU6},
		{"pw-grid", 26, 64, 1, 1, 1, 63, accel.ActReLU},
		{"pw-int", 64, 40, 1, 1, 1, 127, accel.ActNone},
		{"grouped", 40, 30, 3, 1, 2, 63, accel.ActReLU},
		{"int-g3", 30, 30, 3, 1, 3, 127, accel.ActHardSwish},
	}
	plan := &accel.Plan{Name: "int8", Tensors: []accel.Shape{{20, 9, 9}}}
	h := 9
	for i, s := range specs {
		cg := s.in / s.g
		per := cg * s.k * s.k
		op := accel.Op{Name: s.name, Kind: accel.OpConv, In: []int{i}, Out: []int{i + 1}, Act: s.act,
			Conv: accel.ConvParams{K: s.out, KH: s.k, KW: s.k, StrideH: s.s, StrideW: s.s, PadH: s.k / 2, PadW: s.k / 2, Groups: s.g},
			W:    make([]float32, s.out*per), B: make([]float32, s.out),
			Quant: &accel.QuantWeights{Bits: 8, Q: make([]int8, s.out*per), Scale: make([]float32, s.out), InScale: 0.03, InZero: int32(r.IntN(40))}}
		for o := range s.out {
			op.B[o] = float32(r.NormFloat64())
			op.Quant.Scale[o] = float32(0.5+r.Float64()) / float32(per*s.qmax) * 8
			for j := range per {
				v := int8(r.IntN(2*s.qmax+1) - s.qmax)
				op.Quant.Q[o*per+j], op.W[o*per+j] = v, op.Quant.Scale[o]*float32(v)
			}
		}
		h = (h+2*(s.k/2)-s.k)/s.s + 1
		plan.Tensors = append(plan.Tensors, accel.Shape{s.out, h, h})
		plan.Ops = append(plan.Ops, op)
	}
	// Then int8 linear layers: one on the flattened feature map of 30
	// channels (not whole blocks at any level: its padding lanes are left
	// out, qLinearFrom), one on the vector it writes.
	last := len(plan.Tensors) - 1
	plan.Tensors = append(plan.Tensors, accel.Shape{30 * h * h})
	plan.Ops = append(plan.Ops, accel.Op{Name: "flat", Kind: accel.OpFlatten, In: []int{last}, Out: []int{last + 1}})
	in := 30 * h * h
	for j, out := range []int{13, 7} {
		op := accel.Op{Name: "fc", Kind: accel.OpLinear, In: []int{last + 1 + j}, Out: []int{last + 2 + j}, Act: accel.ActReLU,
			W: make([]float32, out*in), B: make([]float32, out),
			Quant: &accel.QuantWeights{Bits: 8, Q: make([]int8, out*in), Scale: make([]float32, out), InScale: 0.05, InZero: int32(r.IntN(40))}}
		for o := range out {
			op.B[o] = float32(r.NormFloat64())
			op.Quant.Scale[o] = float32(0.5+r.Float64()) / float32(in*127) * 8
			for i := range in {
				v := int8(r.IntN(255) - 127)
				op.Quant.Q[o*in+i], op.W[o*in+i] = v, op.Quant.Scale[o]*float32(v)
			}
		}
		plan.Tensors = append(plan.Tensors, accel.Shape{out})
		plan.Ops = append(plan.Ops, op)
		in = out
	}
	plan.Output = len(plan.Tensors) - 1
	const n = 9 // AVX2 runs int8 linear layers of 8 and more rows on its broadcast GEMM
	x := make([]float32, n*plan.Tensors[0].Size())
	for i := range x {
		x[i] = float32(r.Float64()*3 - 0.5)
	}
	forEachQLevel(t, func(l qLevel) {
		for _, threads := range []int{1, 2} {
			host, err := accel.NewHostProgram(NewKernels(threads), plan, n)
			if err != nil {
				t.Fatal(err)
			}
			want := make([]float32, n*host.OutputSize())
			if err := host.Run(x, want); err != nil {
				t.Fatal(err)
			}
			prog, err := compileProgram(NewKernels(threads), plan, n)
			if err != nil {
				t.Fatal(err)
			}
			got := make([]float32, len(want))
			if err := prog.Run(x, got); err != nil {
				t.Fatal(err)
			}
			prog.Close()
			var d, m float64
			for i := range want {
				d = math.Max(d, math.Abs(float64(got[i]-want[i])))
				m = math.Max(m, math.Abs(float64(want[i])))
			}
			if m == 0 || d > 1e-5*m {
				t.Errorf("%v, %d threads: program differs from the plain int8 kernels by %.3g (largest output %.3g); kernels %v",
					l, threads, d, m, prog.(*program).kernels)
			}
		}
	})
}
