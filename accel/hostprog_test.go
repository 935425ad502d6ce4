package accel_test

import (
	"math"
	"strings"
	"testing"
	"time"

	"hwnas/accel"
	"hwnas/accel/ref"
)

func near(t *testing.T, name string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", name, len(got), len(want))
	}
	for i := range want {
		if math.Abs(float64(got[i]-want[i])) > 1e-5*(1+math.Abs(float64(want[i]))) {
			t.Fatalf("%s = %v, want %v", name, got, want)
		}
	}
}

func run(t *testing.T, k accel.Kernels, p *accel.Plan, batch int, in []float32) []float32 {
	t.Helper()
	prog, err := accel.NewHostProgram(k, p, batch)
	if err != nil {
		t.Fatal(err)
	}
	defer prog.Close()
	out := make([]float32, batch*prog.OutputSize())
	if err := prog.Run(in, out); err != nil {
		t.Fatal(err)
	}
	return out
}

// tinyNet: [1,2,2] → conv 1×1 to 2 channels (+bias, relu) → flatten → linear 8→2.
func tinyNet() *accel.Plan {
	return &accel.Plan{
		Name:    "tiny",
		Tensors: []accel.Shape{{1, 2, 2}, {2, 2, 2}, {8}, {2}},
		Input:   0, Output: 3,
		Ops: []accel.Op{
			{Name: "c1", Kind: accel.OpConv, In: []int{0}, Out: []int{1},
				Conv: accel.ConvParams{K: 2, KH: 1, KW: 1}, W: []float32{1, -1}, B: []float32{0, 1}, Act: accel.ActReLU},
			{Name: "flat", Kind: accel.OpFlatten, In: []int{1}, Out: []int{2}},
			{Name: "fc", Kind: accel.OpLinear, In: []int{2}, Out: []int{3},
				W: []float32{1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1}, B: []float32{0.5, 0}},
		},
	}
}

func TestHostProgramHandComputed(t *testing.T) {
	var k ref.Kernels
	// x = [1, −2, 3, 0.5]: channel 0 = relu(x) = [1,0,3,0.5] (sum 4.5),
	// channel 1 = relu(1−x) = [0,3,0,0.5] (sum 3.5).
	out := run(t, k, tinyNet(), 2, []float32{1, -2, 3, 0.5, 0, 0, 0, 0})
	near(t, "tiny", out, []float32{5, 3.5, 0.5, 4})

	// Concat, shuffle, split, batchnorm, add, act, pools, gap on a [2,2,2] input.
	p := &accel.Plan{
		Name: "shapes",
		Tensors: []accel.Shape{
			{2, 2, 2},            // 0 input
			{4, 2, 2},            // 1 concat(x, x)
			{4, 2, 2},            // 2 shuffle 2 groups
			{1, 2, 2}, {3, 2, 2}, // 3, 4 split 1+3
			{3, 2, 2}, // 5 batchnorm(4), relu
			{3, 2, 2}, // 6 add(5, 4), relu6
			{3, 1, 1}, // 7 maxpool 2×2
			{3, 1, 1}, // 8 avgpool 2×2
			{3},       // 9 gap(6)
		},
		Input: 0, Output: 9,
		Ops: []accel.Op{
			{Name: "cat", Kind: accel.OpConcat, In: []int{0, 0}, Out: []int{1}},
			{Name: "shuf", Kind: accel.OpShuffle, In: []int{1}, Out: []int{2}, Groups: 2},
			{Name: "split", Kind: accel.OpSplit, In: []int{2}, Out: []int{3, 4}},
			{Name: "bn", Kind: accel.OpBatchNorm, In: []int{4}, Out: []int{5}, Scale: []float32{2, -1, 1}, Shift: []float32{0, 0, -3}, Act: accel.ActReLU},
			{Name: "add", Kind: accel.OpAdd, In: []int{5, 4}, Out: []int{6}, Act: accel.ActReLU6},
			{Name: "max", Kind: accel.OpMaxPool, In: []int{6}, Out: []int{7}, Pool: accel.PoolParams{KH: 2, KW: 2, StrideH: 2, StrideW: 2}},
			{Name: "avg", Kind: accel.OpAvgPool, In: []int{6}, Out: []int{8}, Pool: accel.PoolParams{KH: 2, KW: 2, StrideH: 2, StrideW: 2}},
			{Name: "gap", Kind: accel.OpGlobalAvgPool, In: []int{6}, Out: []int{9}},
		},
	}
	// Input channels a = [1,2,3,4], b = [−1,5,0,2]. concat: a b a b;
	// shuffle (2 groups of 2, transposed): a a b b; split: [a] and [a b b].
	// bn: relu(2a) = [2,4,6,8], relu(−b) = [1,0,0,0], relu(b−3) = [0,2,0,0].
	// add + relu6: [3,6,6,6] (2a+a capped), [0,5,0,2], [−1+0,5+2,0,2]→[0,6,0,2].
	in := []float32{1, 2, 3, 4, -1, 5, 0, 2}
	want := map[int][]float32{
		6: {3, 6, 6, 6, 0, 5, 0, 2, 0, 6, 0, 2},
		7: {6, 5, 6},
		8: {5.25, 1.75, 2},
		9: {5.25, 1.75, 2},
	}
	for tensor, w := range want {
		p.Output = tensor
		near(t, p.Ops[len(p.Ops)-1].Name+" tensor", run(t, k, p, 1, in), w)
	}
}

func TestHostProgramOpTimed(t *testing.T) {
	prog, err := accel.NewHostProgram(ref.Kernels{}, tinyNet(), 1)
	if err != nil {
		t.Fatal(err)
	}
	ot, ok := prog.(accel.OpTimedProgram)
	if !ok {
		t.Fatal("host program does not implement OpTimedProgram")
	}
	per := make([]time.Duration, 3)
	out := make([]float32, 2)
	if err := ot.RunOpTimed([]float32{1, -2, 3, 0.5}, out, per); err != nil {
		t.Fatal(err)
	}
	near(t, "timed", out, []float32{5, 3.5})
	if per[0] <= 0 || per[2] <= 0 {
		t.Errorf("per-op times %v: conv and linear must take time", per)
	}
	if err := ot.RunOpTimed([]float32{1, -2, 3, 0.5}, out, per[:2]); err == nil {
		t.Error("wrong per-op length: want an error")
	}
	if err := prog.Run(make([]float32, 3), out); err == nil || !strings.Contains(err.Error(), "input has 3") {
		t.Errorf("short input: err %v", err)
	}
	prog.Close()
	if err := prog.Run(make([]float32, 4), out); err == nil {
		t.Error("run after close: want an error")
	}
}

// floatOnly hides the Int8Kernels and SparseKernels methods of ref.Kernels.
type floatOnly struct{ accel.Kernels }

func TestHostProgramCompressedWeights(t *testing.T) {
	p := &accel.Plan{
		Name: "q", Tensors: []accel.Shape{{2}, {1}}, Input: 0, Output: 1,
		Ops: []accel.Op{{Name: "fc", Kind: accel.OpLinear, In: []int{0}, Out: []int{1},
			W: []float32{1, -2}, B: []float32{1},
			Quant: &accel.QuantWeights{Bits: 8, Q: []int8{2, -4}, Scale: []float32{0.5}, InScale: 0.1, InZero: 128}}},
	}
	x := []float32{0.5, -0.26}
	// Float W: 0.5 + 0.52 + 1 = 2.02; int8: x̂ = [0.5, −0.3] → 0.5 + 0.6 + 1 = 2.1.
	near(t, "float path", run(t, floatOnly{ref.Kernels{}}, p, 1, x), []float32{2.02})
	near(t, "int8 path", run(t, ref.Kernels{}, p, 1, x), []float32{2.1})

	p.Ops[0].Quant = nil
	p.Ops[0].Sparse = &accel.SparseWeights{Rows: 1, Cols: 2, RowPtr: []int32{0, 1}, ColIdx: []int32{1}, Val: []float32{-2}}
	near(t, "sparse path", run(t, ref.Kernels{}, p, 1, x), []float32{1.52})
}

func TestHostProgramRejectsBadPlans(t *testing.T) {
	cases := []struct {
		name, want string
		edit       func(p *accel.Plan)
	}{
		{"conv output shape", `"c1"`, func(p *accel.Plan) { p.Tensors[1] = accel.Shape{3, 2, 2} }},
		{"linear weights", `"fc"`, func(p *accel.Plan) { p.Ops[2].W = p.Ops[2].W[:5] }},
		{"in-place conv", "writes tensor", func(p *accel.Plan) {
			p.Tensors[1] = accel.Shape{1, 2, 2}
			p.Ops[0].Out = []int{0}
			p.Ops[0].Conv.K = 1
			p.Ops[0].W, p.Ops[0].B = []float32{1}, nil
			p.Ops[1].In = []int{0}
			p.Ops[2].In = []int{2}
			p.Tensors[2] = accel.Shape{4}
			p.Ops[2].W = make([]float32, 8)
		}},
		{"bad int8 scales", "int8 weights", func(p *accel.Plan) {
			p.Ops[2].Quant = &accel.QuantWeights{Bits: 8, Q: make([]int8, 16), Scale: []float32{1}, InScale: 1}
		}},
		{"bad csr", "CSR", func(p *accel.Plan) {
			p.Ops[0].Sparse = &accel.SparseWeights{Rows: 2, Cols: 1, RowPtr: []int32{0, 1}, ColIdx: []int32{0}, Val: []float32{1}}
		}},
		{"unknown kind", "unknown op kind", func(p *accel.Plan) { p.Ops[1].Kind = "transpose" }},
		{"zero features", "no output features", func(p *accel.Plan) {
			p.Tensors[3] = accel.Shape{0}
			p.Ops[2].W, p.Ops[2].B = nil, nil
		}},
	}
	for _, c := range cases {
		p := tinyNet()
		c.edit(p)
		_, err := accel.NewHostProgram(ref.Kernels{}, p, 2)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want one mentioning %s", c.name, err, c.want)
		}
	}
	if _, err := accel.NewHostProgram(ref.Kernels{}, tinyNet(), 0); err == nil {
		t.Error("batch 0: want an error")
	}
}
