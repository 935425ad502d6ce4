package cpu

import (
	"math/rand/v2"
	"testing"

	"hwnas/accel"
)

// TestKernelChoiceFollowsLevel compiles one plan, as a search stores a
// compressed trial (int8 forms, CSR forms beside dense W, no record of
// which kernels the searching machine ran), at every level this CPU has
// (HWNAS_ISA's levels, VNNI on and off): each level picks its own kernels
// from the plan alone — the int8 GEMM form of that level (VNNI's vpdpbusd,
// AVX2's vpmaddwd or, for pair-safe weights, vpmaddubsw, or the level's
// dot-product GEMM), sparse kernels only for CSR weights sparse enough to
// pay — compiling twice gives the same choice, and every level's program
// computes the same result.
func TestKernelChoiceFollowsLevel(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	conv := func(name string, in, out int, k int) accel.Op {
		w := make([]float32, out*in*k*k)
		for i := range w {
			w[i] = r.Float32() - 0.5
		}
		return accel.Op{Name: name, Kind: accel.OpConv, Conv: accel.ConvParams{K: out, KH: k, KW: k, PadH: k / 2, PadW: k / 2, Groups: 1},
			W: w, B: make([]float32, out), Act: accel.ActReLU}
	}
	quant := func(op *accel.Op, qmax int) {
		rows := op.Conv.K
		cols := len(op.W) / rows
		q := &accel.QuantWeights{Bits: 8, Q: make([]int8, len(op.W)), Scale: make([]float32, rows), InScale: 0.02, InZero: 3}
		for o := range rows {
			q.Scale[o] = 0.01
			for j := range cols {
				v := int8(r.IntN(2*qmax+1) - qmax)
				q.Q[o*cols+j], op.W[o*cols+j] = v, 0.01*float32(v)
			}
		}
		op.Quant = q
	}
	prune := func(op *accel.Op, density float64) {
		rows := op.Conv.K
		cols := len(op.W) / rows
		s := &accel.SparseWeights{Rows: rows, Cols: cols, RowPtr: make([]int32, rows+1)}
		for o := range rows {
			for j := range cols {
				if r.Float64() >= density {
					op.W[o*cols+j] = 0
					continue
				}
				s.ColIdx, s.Val = append(s.ColIdx, int32(j)), append(s.Val, op.W[o*cols+j])
			}
			s.RowPtr[o+1] = int32(len(s.Val))
		}
		op.Sparse = s
	}
	ops := []accel.Op{conv("full8", 16, 24, 3), conv("pairsafe", 24, 24, 3), conv("half", 24, 24, 3), conv("sparse", 24, 24, 3)}
	quant(&ops[0], 127)
	quant(&ops[1], 63)
	prune(&ops[2], 0.5)
	prune(&ops[3], 0.05)
	plan := &accel.Plan{Name: "trial", Input: 0, Output: 4}
	for i := range ops {
		plan.Tensors = append(plan.Tensors, accel.Shape{ops[i].Conv.K, 8, 8})
		ops[i].In, ops[i].Out = []int{i}, []int{i + 1}
	}
	plan.Tensors = append([]accel.Shape{{16, 8, 8}}, plan.Tensors...)
	plan.Ops = ops
	x := make([]float32, 2*16*8*8)
	for i := range x {
		x[i] = r.Float32()
	}
	var first []float32
	forEachQLevel(t, func(l qLevel) {
		want := map[string]string{"half": "blocked", "sparse": "sparse"}
		switch {
		case l.vnni:
			want["full8"], want["pairsafe"] = "int8/vnni", "int8/vnni"
		case l.isa == "avx2":
			want["full8"], want["pairsafe"] = "int8/avx2-s16", "int8/avx2-u8s8"
		default:
			want["full8"], want["pairsafe"] = "int8/dot-"+l.isa, "int8/dot-"+l.isa
		}
		var y []float32
		for range 2 {
			prog, err := compileProgram(NewKernels(1), plan, 2)
			if err != nil {
				t.Fatal(err)
			}
			for i, op := range plan.Ops {
				if got := prog.(*program).kernels[i]; got != want[op.Name] {
					t.Errorf("%v: op %s runs %q, want %q", l, op.Name, got, want[op.Name])
				}
			}
			y = make([]float32, 2*prog.OutputSize())
			if err := prog.Run(x, y); err != nil {
				t.Fatal(err)
			}
			prog.Close()
		}
		if first == nil {
			first = y
			return
		}
		for i := range y {
			if d := y[i] - first[i]; d > 1e-3 || d < -1e-3 {
				t.Fatalf("%v: y[%d] = %g, the first level gave %g", l, i, y[i], first[i])
			}
		}
	})
}
