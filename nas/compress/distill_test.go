package compress

import (
	"math"
	"testing"
)

func TestDistillLossValuesAndGradient(t *testing.T) {
	s := []float32{1, 2, 0.5, -1, 0, 3}
	tt := []float32{2, 1, 0, 0, 0, 4}
	labels := []int32{1, 2}
	// alpha 0 is plain cross-entropy.
	ce, err := DistillLoss(2, 3, s, tt, labels, 4, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := 0.0
	for i, row := range [][]float32{s[:3], s[3:]} {
		lse := 0.0
		for _, v := range row {
			lse += math.Exp(float64(v))
		}
		want += (math.Log(lse) - float64(row[labels[i]])) / 2
	}
	if math.Abs(ce-want) > 1e-9 {
		t.Errorf("alpha 0: %g, want CE %g", ce, want)
	}
	// Student equal to teacher: the KL term vanishes.
	kl, _ := DistillLoss(2, 3, tt, tt, labels, 3, 1, nil)
	if math.Abs(kl) > 1e-12 {
		t.Errorf("identical logits: KL term %g", kl)
	}
	// Gradient by central differences.
	ds := make([]float32, 6)
	if _, err := DistillLoss(2, 3, s, tt, labels, 4, 0.7, ds); err != nil {
		t.Fatal(err)
	}
	for i := range s {
		p, m := append([]float32{}, s...), append([]float32{}, s...)
		p[i] += 1e-3
		m[i] -= 1e-3
		lp, _ := DistillLoss(2, 3, p, tt, labels, 4, 0.7, nil)
		lm, _ := DistillLoss(2, 3, m, tt, labels, 4, 0.7, nil)
		if num := (lp - lm) / 2e-3; math.Abs(num-float64(ds[i])) > 1e-3 {
			t.Errorf("d/ds[%d]: %g, numeric %g", i, ds[i], num)
		}
	}
	for _, bad := range []struct{ temp, alpha float64 }{{0, 0.5}, {2, 1.5}, {2, -0.1}} {
		if _, err := DistillLoss(2, 3, s, tt, labels, bad.temp, bad.alpha, nil); err == nil {
			t.Errorf("T=%g alpha=%g accepted", bad.temp, bad.alpha)
		}
	}
	if _, err := DistillLoss(2, 3, s, tt, []int32{1, 5}, 2, 0.5, nil); err == nil {
		t.Error("label out of range accepted")
	}
}
