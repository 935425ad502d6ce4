package nas

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"hwnas/accel"
	"hwnas/accel/ref"
)

// randomiseBN gives every batch norm non-trivial statistics and affine
// parameters so that folding has something to get wrong.
func randomiseBN(m *Model, r *rand.Rand) {
	for _, p := range m.Tensors() {
		for i := range p.Data {
			switch {
			case hasSuffix(p.Name, ".gamma"):
				p.Data[i] = float32(0.5 + r.Float64())
			case hasSuffix(p.Name, ".beta"), hasSuffix(p.Name, ".mean"), hasSuffix(p.Name, ".b"):
				p.Data[i] = float32(0.3 * r.NormFloat64())
			case hasSuffix(p.Name, ".var"):
				p.Data[i] = float32(0.2 + r.Float64())
			}
		}
	}
}

func hasSuffix(s, suf string) bool { return len(s) >= len(suf) && s[len(s)-len(suf):] == suf }

// maxRelDiff is max|a−b| / max(max|b|, 1e-6).
func maxRelDiff(a, b []float32) float64 { return maxRelDiffFloor(a, b, 1e-6) }

// maxRelDiffFloor is max|a−b| / max(max|b|, floor).
func maxRelDiffFloor(a, b []float32, floor float64) float64 {
	var d, s float64
	for i := range a {
		d = math.Max(d, math.Abs(float64(a[i])-float64(b[i])))
		s = math.Max(s, math.Abs(float64(b[i])))
	}
	return d / math.Max(s, floor)
}

// lowerMatchesForward randomises m's batch-norm statistics, runs n random
// samples through the model (evaluation) and through its lowered plan on
// accel's host interpreter with the reference kernels, fails when they
// differ by more than 1e-5 relative, and returns the plan.
func lowerMatchesForward(t *testing.T, m *Model, r *rand.Rand, n int) *accel.Plan {
	t.Helper()
	randomiseBN(m, r)
	x := randInput(r, n*m.Graph.Tensors[0].Size())
	want, err := m.Forward(x, n)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := Lower(m)
	if err != nil {
		t.Fatal(err)
	}
	prog, err := accel.NewHostProgram(ref.Kernels{}, plan, n)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]float32, n*m.Arch.Classes)
	if err := prog.Run(x, got); err != nil {
		t.Fatal(err)
	}
	if d := maxRelDiff(got, want); d > 1e-5 {
		t.Errorf("plan output differs from the eval forward by %.3g relative\n got %v\nwant %v", d, got, want)
	}
	return plan
}

func TestLowerMatchesForward(t *testing.T) {
	archs := blockArchs(t)
	for _, n := range []string{"lenet5", "lenet300"} {
		archs[n], _ = BuiltinArch(n)
	}
	bnAct, _ := ParseArch([]byte(`{"version":1,"name":"bnact","input":[8],"classes":3,"layers":[
		{"name":"f1","type":"linear","out":6},{"name":"bn1","type":"batchnorm"},{"name":"r1","type":"relu6"},
		{"name":"f2","type":"linear","out":6,"inputs":["input"]},{"name":"bn2","type":"batchnorm","inputs":["f2"]},
		{"name":"s","type":"add","inputs":["r1","bn2"]},{"name":"hs","type":"hardswish"},
		{"name":"out","type":"linear","out":3},{"name":"bnout","type":"batchnorm"}]}`))
	archs["bnact"] = bnAct
	for name, a := range archs {
		t.Run(name, func(t *testing.T) {
			m := testModel(t, a, 3)
			plan := lowerMatchesForward(t, m, rand.New(rand.NewPCG(9, 9)), 3)
			// An activation stays standalone only after ops that cannot
			// carry one (here: concat).
			made := map[int]accel.OpKind{}
			for _, op := range plan.Ops {
				if op.Kind == accel.OpAct && made[op.In[0]] != accel.OpConcat {
					t.Errorf("activation %q after a %s left unfused", op.Name, made[op.In[0]])
				}
				for _, o := range op.Out {
					made[o] = op.Kind
				}
			}
		})
	}
}

func TestLowerFoldsAndFuses(t *testing.T) {
	a, _ := ParseArch([]byte(`{"version":1,"name":"fold","input":[2,5,5],"classes":2,"layers":[
		{"name":"c","type":"conv","out":3,"kernel":3,"bias":false},{"name":"bn","type":"batchnorm"},{"name":"r","type":"relu"},
		{"name":"c2","type":"conv","out":4,"kernel":1},{"name":"bn2","type":"batchnorm","act":"relu"},
		{"name":"bn3","type":"batchnorm","inputs":["bn2"]},
		{"name":"g","type":"gap"},{"name":"f","type":"linear","out":2}]}`))
	m := testModel(t, a, 1)
	plan, err := Lower(m)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, op := range plan.Ops {
		kinds = append(kinds, string(op.Kind)+"/"+op.Act.String())
	}
	want := []string{"conv/relu", "conv/relu", "batchnorm/none", "globalavgpool/none", "linear/none"}
	if len(kinds) != len(want) {
		t.Fatalf("ops %v, want %v", kinds, want)
	}
	for i := range want {
		if kinds[i] != want[i] {
			t.Fatalf("ops %v, want %v", kinds, want)
		}
	}
	if plan.Ops[0].B == nil {
		t.Fatal("folding into a bias-free conv gave no bias")
	}
}

func TestLowerCarriesCompressedForms(t *testing.T) {
	a, _ := BuiltinArch("lenet300")
	m := testModel(t, a, 1)
	q := &accel.QuantWeights{Bits: 8, Q: make([]int8, 100*300), Scale: make([]float32, 100), InScale: 1}
	s := &accel.SparseWeights{Rows: 10, Cols: 100, RowPtr: make([]int32, 11)}
	m.Quant["fc2"], m.Sparse["fc3"] = q, s
	plan, err := Lower(m)
	if err != nil {
		t.Fatal(err)
	}
	if plan.Ops[1].Quant != q || plan.Ops[2].Sparse == nil || plan.Ops[2].Sparse.Rows != 10 || plan.Ops[0].Quant != nil {
		t.Fatal("compressed forms not attached to their layers' ops")
	}
}

// TestLowerFoldsBatchNormIntoInt8 lowers a conv with int8 weights followed
// by a batch norm (some scales negative): the batch norm goes into the
// int8 op's per-channel scales and bias, rows negated where the scale is
// negative, the model's own int8 form untouched, and the plan computes
// what the float model with the dequantized weights computes on inputs
// already on the op's uint8 grid.
func TestLowerFoldsBatchNormIntoInt8(t *testing.T) {
	a, err := ParseArch([]byte(`{"version":1,"name":"q","input":[4,6,6],"classes":3,"layers":[
		{"name":"c","type":"conv","out":6,"kernel":3,"pad":1,"bias":false},{"name":"bn","type":"batchnorm","act":"relu"},
		{"name":"g","type":"gap"},{"name":"f","type":"linear","out":3}]}`))
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(4, 8))
	m := testModel(t, a, 1)
	randomiseBN(m, r)
	gamma := m.Param("bn.gamma").Data
	gamma[1], gamma[4] = -gamma[1], -gamma[4]
	w := m.Param("c.w").Data
	per := len(w) / 6
	q := &accel.QuantWeights{Bits: 8, Q: make([]int8, len(w)), Scale: make([]float32, 6), InScale: 0.04, InZero: 20}
	for o := range 6 {
		q.Scale[o] = 0.002 * float32(o+1)
		for j := range per {
			v := int8(r.IntN(255) - 127)
			q.Q[o*per+j], w[o*per+j] = v, q.Scale[o]*float32(v)
		}
	}
	q0 := append([]int8(nil), q.Q...)
	s0 := append([]float32(nil), q.Scale...)
	m.Quant["c"] = q
	plan, err := Lower(m)
	if err != nil {
		t.Fatal(err)
	}
	op := plan.Ops[0]
	if len(plan.Ops) != 3 || op.Kind != accel.OpConv || op.Act != accel.ActReLU || op.Quant == nil || op.Quant == q {
		t.Fatalf("plan ops %v: want the batch norm folded into a copy of the int8 conv's form", plan.Ops)
	}
	for o := range 6 {
		if !(op.Quant.Scale[o] > 0) {
			t.Errorf("channel %d: folded scale %g, want > 0", o, op.Quant.Scale[o])
		}
		neg := o == 1 || o == 4
		for j := range per {
			want := q0[o*per+j]
			if neg {
				want = -want
			}
			if op.Quant.Q[o*per+j] != want {
				t.Fatalf("channel %d weight %d: %d, want %d (negated: %v)", o, j, op.Quant.Q[o*per+j], want, neg)
			}
		}
	}
	if !slices.Equal(q.Q, q0) || !slices.Equal(q.Scale, s0) {
		t.Fatal("lowering changed the model's int8 form")
	}
	n := 2
	x := make([]float32, n*4*6*6)
	for i := range x {
		x[i] = float32(r.IntN(256)-int(q.InZero)) * q.InScale
	}
	want, err := m.Forward(x, n)
	if err != nil {
		t.Fatal(err)
	}
	prog, err := accel.NewHostProgram(ref.Kernels{}, plan, n)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]float32, n*3)
	if err := prog.Run(x, got); err != nil {
		t.Fatal(err)
	}
	if d := maxRelDiff(got, want); d > 1e-5 {
		t.Errorf("int8 plan with the folded batch norm differs from the float model by %.3g relative\n got %v\nwant %v", d, got, want)
	}
	// A row holding −128 cannot be negated: the batch norm stays an op.
	q.Q[1*per] = math.MinInt8
	plan, err = Lower(m)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Ops) != 4 || plan.Ops[1].Kind != accel.OpBatchNorm || plan.Ops[0].Quant != q {
		t.Errorf("with −128 in a negated row: plan ops %v, want the batch norm kept as its own op", plan.Ops)
	}
}
