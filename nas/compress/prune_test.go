package compress

import (
	"math"
	"slices"
	"testing"
)

func TestMagnitudeThreshold(t *testing.T) {
	a := []float32{0.1, -0.5, 0.3, -0.05, 0.9}
	b := []float32{2, -3, 0.2}
	for _, c := range []struct {
		layers   [][]float32
		sparsity float64
		pruned   int
	}{
		{[][]float32{a}, 0.4, 2},
		{[][]float32{a}, 0, 0},
		{[][]float32{a, b}, 0.5, 4},
		{[][]float32{a, b}, 0.75, 6},
	} {
		th, err := MagnitudeThreshold(c.layers, c.sparsity)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, l := range c.layers {
			w := slices.Clone(l)
			mask := PruneMagnitude(w, th)
			for i := range w {
				if !mask[i] {
					n++
					if w[i] != 0 {
						t.Errorf("masked weight %d not zeroed", i)
					}
				}
			}
		}
		if n != c.pruned {
			t.Errorf("sparsity %g over %d layers pruned %d, want %d", c.sparsity, len(c.layers), n, c.pruned)
		}
	}
	if _, err := MagnitudeThreshold([][]float32{a}, 1); err == nil {
		t.Error("sparsity 1 accepted")
	}
}

func TestGradualSparsity(t *testing.T) {
	for _, c := range []struct {
		step int
		want float64
	}{{0, 0}, {10, 0}, {20, 0.9 - 0.9*0.729}, {25, 0.9 - 0.9*0.729}, {50, 0.9 - 0.9*0.216}, {110, 0.9}, {500, 0.9}} {
		if got := GradualSparsity(c.step, 10, 10, 10, 0, 0.9); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("step %d: %g, want %g", c.step, got, c.want)
		}
	}
}

func TestKeepChannels(t *testing.T) {
	scores := []float64{5, 1, 4, 0.5, 3, 2}
	for _, c := range []struct {
		ratio float64
		group int
		want  []int
	}{
		{0.5, 1, []int{0, 2, 4}},
		{0, 1, []int{0, 1, 2, 3, 4, 5}},
		// Groups {0,1}=6, {2,3}=4.5, {4,5}=5: dropping a third keeps the best two.
		{1.0 / 3, 2, []int{0, 1, 4, 5}},
		{0.6, 2, []int{0, 1}},
	} {
		got, err := KeepChannels(scores, c.ratio, c.group)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("ratio %g group %d: %v (%v), want %v", c.ratio, c.group, got, err, c.want)
		}
	}
	if _, err := KeepChannels(scores, 0.95, 1); err == nil {
		t.Error("pruning every channel accepted")
	}
	if _, err := KeepChannels(scores, 0.5, 4); err == nil {
		t.Error("group not dividing channels accepted")
	}
	if _, err := PrunedByThreshold(scores, 10); err == nil {
		t.Error("threshold removing everything accepted")
	}
}

func TestChannelScores(t *testing.T) {
	l1, err := FilterL1([]float32{1, -2, 0, 0.5, 3, -3}, 3)
	if err != nil || !slices.Equal(l1, []float64{3, 0.5, 6}) {
		t.Errorf("filter L1 %v %v", l1, err)
	}
	// Taylor: 2 samples, 2 channels, 2 pixels.
	a := []float32{1, 2, 0, 0, 1, 1, 3, -3}
	g := []float32{1, 1, 5, 5, -1, -1, 1, 1}
	ts, err := TaylorScores(2, 2, 2, a, g)
	if err != nil || !slices.Equal(ts, []float64{2.5, 0}) {
		t.Errorf("taylor %v %v", ts, err)
	}
	gamma := []float32{0.5, -0.2, 0}
	grad := []float32{0, 0, 0}
	SlimmingPenalty(gamma, grad, 0.1)
	if !slices.Equal(grad, []float32{0.1, -0.1, 0}) {
		t.Errorf("slimming grad %v", grad)
	}
}
