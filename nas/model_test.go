package nas

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"hwnas/accel"
	"hwnas/accel/ref"
)

// testModel builds a with the reference kernels.
func testModel(t *testing.T, a *Arch, seed uint64) *Model {
	t.Helper()
	m, err := NewModel(a, seed)
	if err != nil {
		t.Fatal(err)
	}
	m.Kernels = ref.Kernels{}
	return m
}

func randInput(r *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	return x
}

// trainLoss is the softmax cross-entropy of one training-mode forward pass.
func trainLoss(t *testing.T, m *Model, x []float32, labels []int32) (float64, []float32) {
	t.Helper()
	n := len(labels)
	ws, err := m.forward(x, n, true)
	if err != nil {
		t.Fatal(err)
	}
	k := m.Arch.Classes
	probs, dl := make([]float32, n*k), make([]float32, n*k)
	loss, err := m.Kernels.SoftmaxCrossEntropy(n, k, ws.acts[m.Graph.Output], labels, probs, dl)
	if err != nil {
		t.Fatal(err)
	}
	return float64(loss), dl
}

// gradCheck compares every parameter's analytic gradient at a few
// positions with central finite differences of the training loss.
func gradCheck(t *testing.T, a *Arch, n int) { gradCheckK(t, a, n, nil) }

// gradCheckK is gradCheck on the kernels k (nil: the reference kernels).
func gradCheckK(t *testing.T, a *Arch, n int, k accel.Kernels) {
	t.Helper()
	m := testModel(t, a, 7)
	if k != nil {
		m.Kernels = k
	}
	r := rand.New(rand.NewPCG(1, 2))
	// Zero biases put ReLU inputs exactly at the kink (a zero input plus a
	// zero bias), where finite differences are meaningless: perturb them.
	for _, p := range m.Params {
		if !strings.HasSuffix(p.Name, ".w") {
			for i := range p.Data {
				p.Data[i] += float32(0.2 * r.NormFloat64())
			}
		}
	}
	x := randInput(r, n*m.Graph.Tensors[0].Size())
	labels := make([]int32, n)
	for i := range labels {
		labels[i] = int32(r.IntN(a.Classes))
	}
	_, dl := trainLoss(t, m, x, labels)
	if err := m.backward(m.ws[n], dl); err != nil {
		t.Fatal(err)
	}
	grads := map[string][]float32{}
	for _, p := range m.Params {
		grads[p.Name] = append([]float32(nil), p.Grad...)
	}
	// A step may cross a ReLU kink or move a max-pool argmax, which skews
	// that difference; float32 rounding limits how small a step can be. So
	// each position passes when either of two steps agrees.
	numeric := func(p *Param, i int, eps float32) float64 {
		old := p.Data[i]
		p.Data[i] = old + eps
		lp, _ := trainLoss(t, m, x, labels)
		p.Data[i] = old - eps
		lm, _ := trainLoss(t, m, x, labels)
		p.Data[i] = old
		return (lp - lm) / float64(2*eps)
	}
	bad := 0
	for _, p := range m.Params {
		for try := 0; try < 4; try++ {
			i := r.IntN(len(p.Data))
			got := float64(grads[p.Name][i])
			ok := func(num float64) bool { return math.Abs(num-got) <= 1e-3+0.03*math.Abs(num) }
			if num := numeric(p, i, 1e-3); !ok(num) && !ok(numeric(p, i, 2e-4)) {
				bad++
				t.Errorf("%s: %s[%d]: analytic %.6g, numeric %.6g", a.Name, p.Name, i, got, num)
			}
		}
	}
	if bad > 0 {
		t.Logf("%s: %d mismatches", a.Name, bad)
	}
}

func TestGradientsLeNet(t *testing.T) {
	a, err := ParseArch([]byte(`{"version":1,"name":"tinylenet","input":[1,10,10],"classes":4,"layers":[
		{"name":"conv1","type":"conv","out":3,"kernel":3},
		{"name":"pool1","type":"maxpool"},
		{"name":"conv2","type":"conv","out":4,"kernel":2,"act":"hardswish"},
		{"name":"pool2","type":"avgpool","size":2,"stride":1},
		{"name":"fc1","type":"linear","out":6,"act":"relu6"},
		{"name":"bn","type":"batchnorm"},
		{"name":"hs","type":"hardswish"},
		{"name":"fc2","type":"linear","out":4}]}`))
	if err != nil {
		t.Fatal(err)
	}
	gradCheck(t, a, 3)
}

// blockArchs builds one small network per compact block.
func blockArchs(t *testing.T) map[string]*Arch {
	t.Helper()
	out := map[string]*Arch{}
	add := func(name string, body func(b *Builder)) {
		b := NewBuilder(name, []int{4, 6, 6}, 3)
		body(b)
		b.GAP()
		b.Linear(3, "")
		a, err := b.Build()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out[name] = a
	}
	add("fire", func(b *Builder) { b.Fire(2, 3, 3) })
	add("dws", func(b *Builder) { b.DepthwiseSeparable(6, 2, "relu") })
	add("ir", func(b *Builder) { b.InvertedResidual(4, 2, 3, 1, "relu6") })
	add("ir-stride", func(b *Builder) { b.InvertedResidual(5, 3, 5, 2, "hardswish") })
	add("shuffle", func(b *Builder) { b.ShuffleUnit(4, 2, 1) })
	add("shuffle-stride", func(b *Builder) { b.ShuffleUnit(8, 2, 2) })
	add("shufflev2", func(b *Builder) { b.ShuffleV2Unit(4, 1) })
	add("shufflev2-stride", func(b *Builder) { b.ShuffleV2Unit(6, 2) })
	add("basic", func(b *Builder) { b.BasicBlock(4, 1) })
	add("basic-stride", func(b *Builder) { b.BasicBlock(6, 2) })
	return out
}

func TestBlocksShapes(t *testing.T) {
	want := map[string]string{
		"fire":             "[6×6×6]",
		"dws":              "[6×3×3]",
		"ir":               "[4×6×6]",
		"ir-stride":        "[5×3×3]",
		"shuffle":          "[4×6×6]",
		"shuffle-stride":   "[8×3×3]",
		"shufflev2":        "[4×6×6]",
		"shufflev2-stride": "[6×3×3]",
		"basic":            "[4×6×6]",
		"basic-stride":     "[6×3×3]",
	}
	for name, a := range blockArchs(t) {
		g, err := NewGraph(a)
		if err != nil {
			t.Fatal(err)
		}
		// The block's output is what the GAP reads.
		gap := g.Nodes[len(g.Nodes)-2]
		if s := g.InShape(gap, 0).String(); s != want[name] {
			t.Errorf("%s: block output %s, want %s", name, s, want[name])
		}
	}
	a := blockArchs(t)
	if g, _ := NewGraph(a["ir"]); g.Nodes[len(g.Nodes)-3].Kind != TypeAdd {
		t.Error("inverted residual with stride 1 and equal channels has no residual add")
	}
	if g, _ := NewGraph(a["ir-stride"]); g.Nodes[len(g.Nodes)-3].Kind == TypeAdd {
		t.Error("strided inverted residual has a residual add")
	}
	// A basic block projects its shortcut only when the shape changes.
	for name, proj := range map[string]bool{"basic": false, "basic-stride": true} {
		g, _ := NewGraph(a[name])
		if add := g.Nodes[len(g.Nodes)-3]; add.Kind != TypeAdd || (g.Producer(add.In[0]) != nil) != proj {
			t.Errorf("%s: shortcut projected %v, want %v", name, g.Producer(add.In[0]) != nil, proj)
		}
	}
}

func TestBlocksGradients(t *testing.T) {
	for name, a := range blockArchs(t) {
		t.Run(name, func(t *testing.T) { gradCheck(t, a, 2) })
	}
}

func TestBuilderErrors(t *testing.T) {
	b := NewBuilder("x", []int{4, 6, 6}, 3)
	b.ShuffleUnit(6, 2, 1)
	if _, err := b.Build(); err == nil {
		t.Fatal("shuffle unit changing channels at stride 1 accepted")
	}
	b = NewBuilder("x", []int{4, 6, 6}, 3)
	b.Conv(4, 9, 1, "")
	b.GAP()
	if _, err := b.Build(); err == nil {
		t.Fatal("unfinished network (no logits) accepted")
	}
	b = NewBuilder("x", []int{3, 6, 6}, 3)
	b.ShuffleV2Unit(3, 1)
	if _, err := b.Build(); err == nil {
		t.Fatal("odd channels accepted for shufflev2")
	}
}

func TestShuffleInverse(t *testing.T) {
	x := []float32{0, 1, 2, 3, 4, 5}
	y := make([]float32, 6)
	shuffle(x, y, 1, 6, 1, 2, false)
	want := []float32{0, 3, 1, 4, 2, 5}
	for i := range y {
		if y[i] != want[i] {
			t.Fatalf("shuffle %v, want %v", y, want)
		}
	}
	z := make([]float32, 6)
	shuffle(y, z, 1, 6, 1, 2, true)
	for i := range z {
		if z[i] != x[i] {
			t.Fatalf("inverse %v, want %v", z, x)
		}
	}
}

func TestNewModelDeterministic(t *testing.T) {
	a, _ := BuiltinArch("lenet5")
	m1, _ := NewModel(a, 3)
	m2, _ := NewModel(a, 3)
	m3, _ := NewModel(a, 4)
	if m1.NumParams() != 431080 {
		t.Fatalf("%d params", m1.NumParams())
	}
	w1, w2, w3 := m1.Param("conv2.w").Data, m2.Param("conv2.w").Data, m3.Param("conv2.w").Data
	same := true
	for i := range w1 {
		if w1[i] != w2[i] {
			t.Fatal("same seed, different weights")
		}
		if w1[i] != w3[i] {
			same = false
		}
	}
	if same {
		t.Fatal("different seeds, same weights")
	}
	// He init: the standard deviation of conv2.w is about √(2/500).
	var sq float64
	for _, v := range w1 {
		sq += float64(v) * float64(v)
	}
	std := math.Sqrt(sq / float64(len(w1)))
	if want := math.Sqrt(2.0 / 500); math.Abs(std-want) > 0.05*want {
		t.Fatalf("conv2.w std %.4f, want %.4f", std, want)
	}
	if m1.Param("conv2.b").Data[0] != 0 || m1.Param("nosuch.w") != nil {
		t.Fatal("bias not zero or unknown param found")
	}
}
