package nas

import (
	"math"
	"math/rand/v2"
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
