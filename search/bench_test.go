package search

import (
	"slices"
	"strings"
	"testing"
)

func TestBenchSummarise(t *testing.T) {
	r := &BenchReport{Trials: 6, Seeds: []uint64{1, 2}, Runs: []BenchRun{
		{Strategy: "random", Seed: 1, BestSoFar: []float64{0.1, 0.5, 0.5, 0.6, 0.6, 0.7}},
		{Strategy: "random", Seed: 2, BestSoFar: []float64{0.2, 0.2, 0.4, 0.5, 0.5, 0.5}},
		{Strategy: "rl", Seed: 1, BestSoFar: []float64{0.3, 0.6, 0.65, 0.7, 0.7, 0.8}},
		{Strategy: "rl", Seed: 2, BestSoFar: []float64{0.1, 0.1, 0.1, 0.2, 0.3, 0.5}},
	}}
	r.summarise([]string{"rl", "random"})
	if !slices.Equal(r.Checkpoints, []int{1, 5, 6}) {
		t.Fatalf("checkpoints %v", r.Checkpoints)
	}
	if r.Target != 0.6 {
		t.Fatalf("target %v, want random's mean final best 0.6", r.Target)
	}
	rl, random := r.Rows[0], r.Rows[1]
	if !slices.Equal(rl.TrialsToTarget, []int{2, -1}) || rl.Misses != 1 || rl.MeanTrialsToTarget != 4.5 {
		t.Fatalf("rl row %+v", rl)
	}
	if !slices.Equal(random.TrialsToTarget, []int{4, -1}) || random.MeanTrialsToTarget != 5.5 {
		t.Fatalf("random row %+v", random)
	}
	if want := []float64{0.2, 0.5, 0.65}; !near(rl.MeanBestAt, want) {
		t.Fatalf("rl mean best %v, want %v", rl.MeanBestAt, want)
	}
	var b strings.Builder
	if err := r.Markdown(&b, "MNIST", "header\n"); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"## MNIST\n\nheader\n", "| rl | 0.2000 | 0.5000 | 0.6500 |", "| rl | 2, — | 4.5 | 1 |", "final best (0.6000",
		"in fewer trials?** yes: 4.5 trials on average against random's own 5.5"} {
		if !strings.Contains(b.String(), s) {
			t.Errorf("markdown lacks %q:\n%s", s, b.String())
		}
	}
}

func near(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if d := a[i] - b[i]; d > 1e-12 || d < -1e-12 {
			return false
		}
	}
	return true
}
