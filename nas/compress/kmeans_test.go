package compress

import (
	"math"
	"math/rand"
	"testing"
)

func TestShareWeightsAtMostKValues(t *testing.T) {
	rng := rand.New(rand.NewSource(4))
	w := make([]float32, 4000)
	for i := range w {
		if i%3 != 0 { // a third pruned
			w[i] = float32(rng.NormFloat64() * 0.1)
		}
	}
	for _, k := range []int{1, 2, 4, 16, 32, 256} {
		s, err := ShareWeights(w, k, 30)
		if err != nil {
			t.Fatal(err)
		}
		v := s.Values()
		distinct := map[float32]bool{}
		var mse, energy float64
		for i, x := range v {
			if (w[i] == 0) != (x == 0) && w[i] == 0 {
				t.Fatalf("k=%d: pruned weight %d became %g", k, i, x)
			}
			if w[i] != 0 {
				distinct[x] = true
				mse += (float64(x) - float64(w[i])) * (float64(x) - float64(w[i]))
				energy += float64(w[i]) * float64(w[i])
			}
		}
		if len(distinct) > k || len(s.Codebook) > k {
			t.Errorf("k=%d: %d distinct values, codebook %d", k, len(distinct), len(s.Codebook))
		}
		// Uniform-quantizer bound: relative error falls ~4× per doubling of k.
		if rel := mse / energy; k >= 16 && rel > 0.01 {
			t.Errorf("k=%d: relative squared error %.4f too large", k, rel)
		}
	}
}

func TestShareWeightsLinearInitKeepsExtremes(t *testing.T) {
	w := []float32{-1, 0.01, 0.02, 0.015, 0.012, 0.018, 0.011, 1}
	s, err := ShareWeights(w, 3, 20)
	if err != nil {
		t.Fatal(err)
	}
	v := s.Values()
	if v[0] != -1 || v[7] != 1 {
		t.Errorf("extremes not kept: %v", v)
	}
}

func TestShareWeightsErrors(t *testing.T) {
	if _, err := ShareWeights([]float32{1}, 0, 1); err == nil {
		t.Error("k=0 accepted")
	}
	s, err := ShareWeights([]float32{0, 0}, 4, 1)
	if err != nil || s.Assign[0] != -1 || len(s.Codebook) != 0 {
		t.Errorf("all-zero layer: %v %+v", err, s)
	}
}

func TestCodebookGradSumsPerCentroid(t *testing.T) {
	s := &Shared{Codebook: []float32{-0.5, 0.5}, Assign: []int32{0, 1, -1, 1, 0}}
	g, err := s.CodebookGrad([]float32{1, 2, 100, 3, 4})
	if err != nil {
		t.Fatal(err)
	}
	if g[0] != 5 || g[1] != 5 {
		t.Errorf("grad %v, want [5 5]", g)
	}
	w := make([]float32, 5)
	if err := s.StepCodebook([]float32{1, 2, 100, 3, 4}, 0.1, w); err != nil {
		t.Fatal(err)
	}
	if math.Abs(float64(w[0]+1)) > 1e-6 || math.Abs(float64(w[1]-0)) > 1e-6 || w[2] != 0 {
		t.Errorf("after step w=%v, want [-1 0 0 0 -1]", w)
	}
	if _, err := s.CodebookGrad([]float32{1}); err == nil {
		t.Error("short gradient accepted")
	}
}
