package compress

import (
	"math"
	"math/rand"
	"strings"
	"testing"

	_ "hwnas/cpu" // the "cpu" backend runs the forward passes
	"hwnas/nas"
)

func modelFromJSON(t *testing.T, js string, seed uint64) *nas.Model {
	t.Helper()
	a, err := nas.ParseArch([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	m, err := nas.NewModel(a, seed)
	if err != nil {
		t.Fatal(err)
	}
	// Random BN statistics and biases, so that nothing is trivially zero.
	r := rand.New(rand.NewSource(int64(seed)))
	for _, p := range m.Tensors() {
		switch kindOf(p.Name) {
		case "b", "beta", "mean":
			for i := range p.Data {
				p.Data[i] = float32(r.NormFloat64() * 0.1)
			}
		case "gamma", "var":
			for i := range p.Data {
				p.Data[i] = float32(0.5 + r.Float64())
			}
		}
	}
	return m
}

func forward(t *testing.T, m *nas.Model, x []float32, n int) []float32 {
	t.Helper()
	y, err := m.Forward(x, n)
	if err != nil {
		t.Fatal(err)
	}
	return y
}

func assertClose(t *testing.T, what string, got, want []float32, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d outputs, want %d", what, len(got), len(want))
	}
	for i := range want {
		if math.Abs(float64(got[i]-want[i])) > tol*(1+math.Abs(float64(want[i]))) {
			t.Fatalf("%s: output %d = %g, want %g", what, i, got[i], want[i])
		}
	}
}

// zeroChannels zeroes the given output channels of the listed tensors
// (rows of weights, entries of vectors).
func zeroChannels(m *nas.Model, chans []int, tensors ...string) {
	for _, name := range tensors {
		p := m.Param(name)
		per := len(p.Data) / p.Shape[0]
		for _, c := range chans {
			clear(p.Data[c*per : (c+1)*per])
		}
	}
}

const chainArch = `{"version":1,"name":"chain","input":[3,8,8],"classes":3,"layers":[
	{"name":"conv1","type":"conv","out":6,"kernel":3,"pad":1},
	{"name":"bn1","type":"batchnorm","act":"relu"},
	{"name":"dw","type":"dwconv","kernel":3,"pad":1,"act":"relu6"},
	{"name":"conv2","type":"conv","out":4,"kernel":1},
	{"name":"pool","type":"maxpool","size":2},
	{"name":"flat","type":"flatten"},
	{"name":"fc1","type":"linear","out":5,"act":"relu"},
	{"name":"fc2","type":"linear","out":3}]}`

const branchArch = `{"version":1,"name":"branch","input":[4,6,6],"classes":3,"layers":[
	{"name":"c1","type":"conv","out":4,"kernel":1,"inputs":["input"]},
	{"name":"c2","type":"conv","out":4,"kernel":3,"pad":1,"inputs":["input"]},
	{"name":"sum","type":"add","inputs":["c1","c2"],"act":"relu"},
	{"name":"cat","type":"concat","inputs":["sum","input"]},
	{"name":"c3","type":"conv","out":4,"kernel":1},
	{"name":"gap","type":"gap"},
	{"name":"fc","type":"linear","out":3}]}`

func TestRemoveZeroedChannelsPreservesOutputs(t *testing.T) {
	r := rand.New(rand.NewSource(33))
	t.Run("conv-bn-dw-conv-flatten-linear", func(t *testing.T) {
		m := modelFromJSON(t, chainArch, 1)
		drop, keep := []int{1, 4}, []int{0, 2, 3, 5}
		// A removed channel must carry zeros to its consumers: zero it
		// through BN (γ = β = 0) and the depthwise conv that follows.
		zeroChannels(m, drop, "conv1.w", "conv1.b", "bn1.gamma", "bn1.beta", "dw.w", "dw.b")
		// fc1 features 2 and 0 removed too (rows of fc1).
		zeroChannels(m, []int{0, 2}, "fc1.w", "fc1.b")
		x := randSlice(r, 2*3*8*8)
		want := forward(t, m, x, 2)
		nm, err := RemoveChannels(m, map[string][]int{"conv1": keep, "fc1": {1, 3, 4}})
		if err != nil {
			t.Fatal(err)
		}
		assertClose(t, "pruned chain", forward(t, nm, x, 2), want, 1e-5)
		if nm.NumParams() >= m.NumParams() {
			t.Errorf("params %d not below %d", nm.NumParams(), m.NumParams())
		}
		if got := nm.Param("dw.w").Shape[0]; got != 4 {
			t.Errorf("depthwise conv has %d channels, want 4", got)
		}
	})
	t.Run("residual-add-concat", func(t *testing.T) {
		m := modelFromJSON(t, branchArch, 2)
		drop, keep := []int{1, 3}, []int{0, 2}
		zeroChannels(m, drop, "c1.w", "c1.b", "c2.w", "c2.b")
		x := randSlice(r, 3*4*6*6)
		want := forward(t, m, x, 3)
		nm, err := RemoveChannels(m, map[string][]int{"c1": keep, "c2": keep})
		if err != nil {
			t.Fatal(err)
		}
		assertClose(t, "pruned branches", forward(t, nm, x, 3), want, 1e-5)
		if got := nm.Param("c3.w").Shape[1]; got != 6 {
			t.Errorf("c3 reads %d channels after the concat, want 6", got)
		}
	})
}

func TestRemoveChannelsErrors(t *testing.T) {
	m := modelFromJSON(t, branchArch, 2)
	chain := modelFromJSON(t, chainArch, 1)
	shuffle := modelFromJSON(t, `{"version":1,"name":"sh","input":[4,4,4],"classes":2,"layers":[
		{"name":"c1","type":"conv","out":4,"kernel":1},
		{"name":"sh","type":"shuffle","groups":2},
		{"name":"gap","type":"gap"},
		{"name":"fc","type":"linear","out":2}]}`, 3)
	for _, c := range []struct {
		name string
		m    *nas.Model
		keep map[string][]int
		want string
	}{
		{"every channel", chain, map[string][]int{"conv1": {}}, "remove all 6 channels"},
		{"logits", chain, map[string][]int{"fc2": {0, 1}}, "outputs of the network"},
		{"one add input", m, map[string][]int{"c1": {0, 2}}, "one input only"},
		{"add inputs differ", m, map[string][]int{"c1": {0, 2}, "c2": {0, 1}}, "keep different channels"},
		{"depthwise", chain, map[string][]int{"dw": {0}}, "prune the layer that feeds it"},
		{"not weighted", chain, map[string][]int{"pool": {0}}, "not conv or linear"},
		{"unknown", chain, map[string][]int{"conv9": {0}}, `no layer "conv9"`},
		{"unsorted", chain, map[string][]int{"conv1": {2, 1}}, "ascending"},
		{"shuffle groups differ", shuffle, map[string][]int{"c1": {0, 1, 2}}, "different channel positions"},
	} {
		if _, err := RemoveChannels(c.m, c.keep); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want one mentioning %q", c.name, err, c.want)
		}
	}
	// Same positions in both shuffle groups is fine.
	if _, err := RemoveChannels(shuffle, map[string][]int{"c1": {0, 2}}); err != nil {
		t.Errorf("shuffle with matching groups: %v", err)
	}
}

func TestFactorizeFullRankReproducesLayer(t *testing.T) {
	r := rand.New(rand.NewSource(44))
	full := func(sv []float64) (int, error) { return len(sv), nil }
	for _, layer := range []string{"conv1", "conv2", "fc1"} {
		m := modelFromJSON(t, chainArch, 5)
		x := randSlice(r, 2*3*8*8)
		want := forward(t, m, x, 2)
		nm, err := Factorize(m, layer, full)
		if err != nil {
			t.Fatal(err)
		}
		assertClose(t, "full-rank "+layer, forward(t, nm, x, 2), want, 1e-4)
		if nm.Param(layer+"_lr.w") == nil {
			t.Errorf("%s: no factor layer", layer)
		}
	}
	m := modelFromJSON(t, chainArch, 5)
	half := func(sv []float64) (int, error) { return RankForFraction(len(sv), 0.5) }
	nm, err := Factorize(m, "fc1", half)
	if err != nil {
		t.Fatal(err)
	}
	if got := nm.Param("fc1_lr.w").Shape[0]; got != 3 { // min(5, 16) = 5, half → 3 (rounded)
		t.Errorf("half rank %d, want 3", got)
	}
	if _, err := Factorize(m, "dw", full); err == nil {
		t.Error("depthwise factorised")
	}
	if _, err := Factorize(m, "bn1", full); err == nil {
		t.Error("batch norm factorised")
	}
}
