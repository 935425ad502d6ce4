package nas

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"hwnas/accel"
	"hwnas/accel/ref"
)

// TestBuiltinsTakeTheDataShape builds every built-in for grey, colour and
// non-square inputs and other class counts: the input, the logits and the
// stride rules follow the shape.
func TestBuiltinsTakeTheDataShape(t *testing.T) {
	for _, name := range append(BuiltinNames(), "mobilenetv2:0.5") {
		for _, s := range []DataShape{{Input: []int{1, 28, 28}, Classes: 10}, {Input: []int{3, 32, 32}, Classes: 100}, {Input: []int{3, 48, 64}, Classes: 7}} {
			a, err := BuiltinArchFor(name, s)
			if err != nil {
				t.Fatalf("%s %v: %v", name, s.Input, err)
			}
			g, err := NewGraph(a)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(a.Input, s.Input) || a.Classes != s.Classes || g.Tensors[g.Output][0] != s.Classes || a.Name != name {
				t.Errorf("%s for %v/%d: input %v, %d classes, output %v, name %q", name, s.Input, s.Classes, a.Input, a.Classes, g.Tensors[g.Output], a.Name)
			}
		}
	}
	// MobileNetV2 keeps the stride-2 steps that leave ≥ 4×4: 32 → 4, 224 → 7.
	for side, want := range map[int]int{32: 4, 28: 7, 224: 7, 64: 4} {
		a, _ := BuiltinArchFor("mobilenetv2:0.25", DataShape{Input: []int{3, side, side}, Classes: 10})
		g, _ := NewGraph(a)
		var last accel.Shape
		for _, n := range g.Nodes {
			if n.Kind == TypeGAP {
				last = g.InShape(n, 0)
			}
		}
		if last[1] != want {
			t.Errorf("mobilenetv2 on %d×%d ends at %v, want %d×%d", side, side, last, want, want)
		}
	}
	// The width multiplier scales channels to multiples of 8.
	half, _ := BuiltinArchFor("mobilenetv2:0.5", CIFARShape)
	full, _ := BuiltinArch("mobilenetv2")
	if h, f := mustGraph(t, half).Params(), mustGraph(t, full).Params(); h*2 > f {
		t.Errorf("width 0.5 has %d parameters, width 1 %d", h, f)
	}
	for _, bad := range []string{"mobilenetv2:0", "mobilenetv2:x", "resnet20:0.5", "vgg17"} {
		if _, err := BuiltinArchFor(bad, CIFARShape); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	// Too small for LeNet-5's two 5×5 convolutions.
	if _, err := BuiltinArchFor("lenet5", DataShape{Input: []int{1, 8, 8}, Classes: 2}); err == nil || !strings.Contains(err.Error(), "lenet5") {
		t.Errorf("lenet5 on 8×8: %v", err)
	}
}

func mustGraph(t *testing.T, a *Arch) *Graph {
	t.Helper()
	g, err := NewGraph(a)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// TestNormalizedInput: a model with Normalize computes on (x − mean)/std
// exactly what the same model without it computes on normalised input,
// and its lowered plan (normalisation folded into an unpadded first conv
// or linear layer, a first op otherwise) agrees with its forward pass.
func TestNormalizedInput(t *testing.T) {
	norm1 := &Normalization{Mean: []float32{0.3}, Std: []float32{0.4}}
	norm3 := &Normalization{Mean: []float32{0.5, 0.4, 0.3}, Std: []float32{0.25, 0.2, 0.3}}
	grouped, _ := ParseArch([]byte(`{"version":1,"name":"g","input":[3,6,6],"classes":2,"layers":[
		{"name":"c","type":"conv","out":6,"kernel":3,"groups":3},{"name":"g","type":"gap"},{"name":"f","type":"linear","out":2}]}`))
	twice, _ := ParseArch([]byte(`{"version":1,"name":"t","input":[3,6,6],"classes":2,"layers":[
		{"name":"a","type":"conv","out":3,"kernel":1},{"name":"s","type":"add","inputs":["a","input"]},
		{"name":"g","type":"gap"},{"name":"f","type":"linear","out":2}]}`))
	cases := []struct {
		name   string
		arch   func() *Arch
		norm   *Normalization
		folded bool
	}{
		{"lenet5 (conv, no padding)", func() *Arch { a, _ := BuiltinArch("lenet5"); return a }, norm1, true},
		{"lenet300 (linear)", func() *Arch { a, _ := BuiltinArch("lenet300"); return a }, norm1, true},
		{"resnet20 (padded conv)", func() *Arch {
			a, _ := BuiltinArchFor("resnet20", DataShape{Input: []int{3, 8, 6}, Classes: 4})
			return a
		}, norm3, false},
		{"grouped conv", func() *Arch { return grouped.Clone() }, norm3, true},
		{"input read twice", func() *Arch { return twice.Clone() }, norm3, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			plain := tc.arch()
			a := plain.Clone()
			a.Normalize = NewNormalization(tc.norm.Mean, tc.norm.Std)
			if a.Hash() == plain.Hash() {
				t.Fatal("normalisation does not change the architecture's hash")
			}
			if _, err := ParseArch(a.JSON()); err != nil {
				t.Fatalf("JSON with normalize does not parse: %v", err)
			}
			m, mp := testModel(t, a, 5), testModel(t, plain, 5)
			r := rand.New(rand.NewPCG(2, 3))
			randomiseBN(m, r)
			mp.CopyWeightsFrom(m)
			const n = 2
			x := make([]float32, n*m.Graph.Tensors[0].Size())
			for i := range x {
				x[i] = float32(r.Float64())
			}
			got, err := m.Forward(x, n)
			if err != nil {
				t.Fatal(err)
			}
			xn := append([]float32(nil), x...)
			tc.norm.Apply(xn, len(x)/n/len(tc.norm.Mean))
			want, _ := mp.Forward(xn, n)
			if d := maxRelDiff(got, want); d > 1e-6 {
				t.Fatalf("normalised model differs from the plain one on normalised input by %.3g", d)
			}
			plan, err := Lower(m)
			if err != nil {
				t.Fatal(err)
			}
			hasOp := plan.Ops[0].Name == InputNormOp
			if hasOp == tc.folded {
				t.Errorf("folded %v, want %v (first op %q)", !hasOp, tc.folded, plan.Ops[0].Name)
			}
			prog, err := accel.NewHostProgram(ref.Kernels{}, plan, n)
			if err != nil {
				t.Fatal(err)
			}
			out := make([]float32, n*a.Classes)
			if err := prog.Run(x, out); err != nil {
				t.Fatal(err)
			}
			if d := maxRelDiff(out, got); d > 1e-5 {
				t.Fatalf("plan differs from forward by %.3g", d)
			}
		})
	}
	bad := &Arch{Version: 1, Name: "b", Input: []int{3, 4, 4}, Classes: 2, Normalize: norm1,
		Layers: []Layer{{Name: "f", Type: TypeLinear, Out: 2}}}
	if _, err := NewGraph(bad); err == nil || !strings.Contains(err.Error(), "1 means and 1 standard deviations for 3 input channel(s)") {
		t.Errorf("wrong channel count: %v", err)
	}
	bad.Normalize = &Normalization{Mean: []float32{0, 0, 0}, Std: []float32{1, 0, 1}}
	if _, err := NewGraph(bad); err == nil || !strings.Contains(err.Error(), "std positive") {
		t.Errorf("zero std: %v", err)
	}
}
