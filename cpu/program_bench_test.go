package cpu

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"hwnas/accel"
)

// benchShapes are single convolutions of the shapes searches propose on
// 28×28 inputs: a 1-channel stem, strided and unstrided depthwise 3×3,
// pointwise 1×1 on small maps, small 5×5 convolutions, 3×3 ones on the
// 4×4 and 2×2 maps of deep blocks, LeNet-5's.
var benchShapes = []struct {
	name    string
	in      accel.Shape
	k, ks   int
	stride  int
	pad     int
	groups  int // 0: 1; −1: depthwise
	actName string
}{
	{"stem_c1_k16_5x5s2", accel.Shape{1, 28, 28}, 16, 5, 2, 2, 0, "relu"},
	{"dw_c1_3x3s2", accel.Shape{1, 28, 28}, 1, 3, 2, 1, -1, "relu"},
	{"dw_c16_14_3x3s2", accel.Shape{16, 14, 14}, 16, 3, 2, 1, -1, "relu"},
	{"dw_c12_14_3x3s2", accel.Shape{12, 14, 14}, 12, 3, 2, 1, -1, "relu"},
	{"dw_c12_15_3x3s2_nopad", accel.Shape{12, 15, 15}, 12, 3, 2, 0, -1, "relu"},
	{"dw_c24_7_3x3s1", accel.Shape{24, 7, 7}, 24, 3, 1, 1, -1, "relu"},
	{"pw_c16_7_k24", accel.Shape{16, 7, 7}, 24, 1, 1, 0, 0, "relu"},
	{"conv_c16_14_k32_5x5s2", accel.Shape{16, 14, 14}, 32, 5, 2, 2, 0, "relu"},
	{"conv_c32_4_k64_3x3", accel.Shape{32, 4, 4}, 64, 3, 1, 1, 0, "relu"},
	{"conv_c64_2_k64_3x3", accel.Shape{64, 2, 2}, 64, 3, 1, 1, 0, "relu"},
	{"lenet_conv1", accel.Shape{1, 28, 28}, 20, 5, 1, 0, 0, "none"},
	{"lenet_conv2", accel.Shape{20, 12, 12}, 50, 5, 1, 0, 0, "none"},
}

// BenchmarkProgramConv times one convolution compiled by the backend (the
// blocked program) and, as its naive twin, the same plan on the host
// program over the plain NCHW kernels, at batch 1 and 64, at every level,
// reporting µs per image.
func BenchmarkProgramConv(b *testing.B) {
	for _, s := range benchShapes {
		act, _ := accel.ParseAct(s.actName)
		g := s.groups
		if g < 0 {
			g = s.in[0]
		}
		cp := accel.ConvParams{N: 1, C: s.in[0], H: s.in[1], W: s.in[2], K: s.k, KH: s.ks, KW: s.ks,
			StrideH: s.stride, StrideW: s.stride, PadH: s.pad, PadW: s.pad, Groups: max(g, 1)}
		r := rand.New(rand.NewPCG(1, 2))
		_, nw, _ := cp.Sizes()
		w := make([]float32, nw)
		for i := range w {
			w[i] = r.Float32() - 0.5
		}
		bias := make([]float32, s.k)
		plan := &accel.Plan{Name: s.name, Tensors: []accel.Shape{s.in, {s.k, cp.OutH(), cp.OutW()}}, Input: 0, Output: 1,
			Ops: []accel.Op{{Name: "conv", Kind: accel.OpConv, In: []int{0}, Out: []int{1}, Conv: accel.ConvParams{K: s.k, KH: s.ks, KW: s.ks,
				StrideH: s.stride, StrideW: s.stride, PadH: s.pad, PadW: s.pad, Groups: max(g, 1)}, W: w, B: bias, Act: act}}}
		benchPlan(b, plan, programAndHost)
	}
}

// BenchmarkProgramLinear does the same for linear layers: LeNet-5's
// fc1 (800→500, 1.6 MB of weights) and a classifier over a flattened
// 32×4×4 map.
func BenchmarkProgramLinear(b *testing.B) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, s := range []struct {
		name    string
		in, out int
	}{{"fc_800_500", 800, 500}, {"fc_512_10", 512, 10}} {
		w := make([]float32, s.in*s.out)
		for i := range w {
			w[i] = r.Float32() - 0.5
		}
		benchPlan(b, &accel.Plan{Name: s.name, Tensors: []accel.Shape{{s.in}, {s.out}}, Input: 0, Output: 1,
			Ops: []accel.Op{{Name: "fc", Kind: accel.OpLinear, In: []int{0}, Out: []int{1}, W: w, B: make([]float32, s.out)}}}, programAndHost)
	}
}

// benchTwin is one way of compiling a plan that benchPlan times.
type benchTwin struct {
	name    string
	compile func(k *Kernels, p *accel.Plan, batch int) (accel.Program, error)
}

// programAndHost are the twins of BenchmarkProgramConv/Linear: the plan
// compiled by the backend, and on the host program over the plain NCHW
// kernels (the naive twin).
var programAndHost = []benchTwin{
	{"program", compileProgram},
	{"nchw", func(k *Kernels, p *accel.Plan, batch int) (accel.Program, error) {
		return accel.NewHostProgram(k, p, batch)
	}},
}

// benchPlan times plan compiled by each twin at batch 1 and 64, at every
// level, reporting µs per image.
func benchPlan(b *testing.B, plan *accel.Plan, twins []benchTwin) {
	old := ISA()
	defer SetISA(old)
	r := rand.New(rand.NewPCG(5, 6))
	for _, level := range SupportedISAs() {
		for _, batch := range []int{1, 64} {
			for _, twin := range twins {
				b.Run(fmt.Sprintf("%s/%s/b%d/%s", plan.Name, level, batch, twin.name), func(b *testing.B) {
					if err := SetISA(level); err != nil {
						b.Fatal(err)
					}
					prog, err := twin.compile(NewKernels(1), plan, batch)
					if err != nil {
						b.Fatal(err)
					}
					in := make([]float32, batch*prog.InputSize())
					for i := range in {
						in[i] = r.Float32()
					}
					out := make([]float32, batch*prog.OutputSize())
					b.ResetTimer()
					for range b.N {
						if err := prog.Run(in, out); err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(float64(b.Elapsed().Nanoseconds())/1e3/float64(b.N*batch), "µs/image")
				})
			}
		}
	}
}

// BenchmarkProgramSparse times convolutions and a linear layer whose
// weights are pruned to a given density, compiled once to run on the
// sparse kernels ("sparse") and once dense ("dense"), at batch 1 and 64
// and every level: the crossover is where sparseMaxDensity belongs.
func BenchmarkProgramSparse(b *testing.B) {
	r := rand.New(rand.NewPCG(7, 8))
	type shape struct {
		name  string
		in    accel.Shape
		k, ks int
		s, p  int
	}
	for _, s := range []shape{
		{"conv_c16_14_k32_5x5s2", accel.Shape{16, 14, 14}, 32, 5, 2, 2},
		{"lenet_conv2", accel.Shape{20, 12, 12}, 50, 5, 1, 0},
		{"pw_c32_7_k64", accel.Shape{32, 7, 7}, 64, 1, 1, 0},
		{"fc_800_500", accel.Shape{800}, 500, 0, 0, 0},
	} {
		for _, density := range []float64{0.5, 0.3, 0.2, 0.1} {
			var op accel.Op
			var out accel.Shape
			var rows, cols int
			if s.ks == 0 {
				rows, cols, out = s.k, s.in[0], accel.Shape{s.k}
				op = accel.Op{Name: "fc", Kind: accel.OpLinear, In: []int{0}, Out: []int{1}}
			} else {
				cp := accel.ConvParams{N: 1, C: s.in[0], H: s.in[1], W: s.in[2], K: s.k, KH: s.ks, KW: s.ks, StrideH: s.s, StrideW: s.s, PadH: s.p, PadW: s.p, Groups: 1}
				rows, cols, out = s.k, s.in[0]*s.ks*s.ks, accel.Shape{s.k, cp.OutH(), cp.OutW()}
				op = accel.Op{Name: "conv", Kind: accel.OpConv, In: []int{0}, Out: []int{1}, Act: accel.ActReLU,
					Conv: accel.ConvParams{K: s.k, KH: s.ks, KW: s.ks, StrideH: s.s, StrideW: s.s, PadH: s.p, PadW: s.p, Groups: 1}}
			}
			op.W, op.B = make([]float32, rows*cols), make([]float32, rows)
			sw := &accel.SparseWeights{Rows: rows, Cols: cols, RowPtr: make([]int32, rows+1)}
			for o := range rows {
				for j := range cols {
					if r.Float64() < density {
						v := r.Float32() - 0.5
						op.W[o*cols+j] = v
						sw.ColIdx = append(sw.ColIdx, int32(j))
						sw.Val = append(sw.Val, v)
					}
				}
				sw.RowPtr[o+1] = int32(len(sw.Val))
			}
			op.Sparse = sw
			plan := &accel.Plan{Name: fmt.Sprintf("%s/d%.1f", s.name, density), Tensors: []accel.Shape{s.in, out}, Input: 0, Output: 1, Ops: []accel.Op{op}}
			benchPlan(b, plan, sparseAndDense)
		}
	}
}

// sparseAndDense compile a pruned plan forced onto the sparse kernels, and
// onto the dense ones.
var sparseAndDense = []benchTwin{{"sparse", compileWithSparseMax(1)}, {"dense", compileWithSparseMax(0)}}

func compileWithSparseMax(limit float64) func(k *Kernels, p *accel.Plan, batch int) (accel.Program, error) {
	return func(k *Kernels, p *accel.Plan, batch int) (accel.Program, error) {
		old := sparseMaxDensity
		defer func() { sparseMaxDensity = old }()
		sparseMaxDensity.spatial, sparseMaxDensity.matmul = limit, limit
		return compileProgram(k, p, batch)
	}
}
