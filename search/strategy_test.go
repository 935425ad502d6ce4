package search

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestControllerGradient compares backpropagation through time with
// central finite differences of the loss for every parameter.
func TestControllerGradient(t *testing.T) {
	for _, tc := range []struct {
		sizes        []int
		hidden, emb  int
		d            Decisions
		adv, entropy float64
		capC, capT   float64 // the logit bound (0: none)
	}{
		{[]int{3, 2, 4}, 5, 3, Decisions{2, 0, 3}, 1.3, 0.05, 0, 0},
		{[]int{5, 1, 2, 3, 2}, 4, 6, Decisions{1, 0, 1, 2, 0}, -0.7, 0.2, 0, 0},
		{[]int{3, 2, 4}, 5, 3, Decisions{2, 0, 3}, 1.3, 0.05, 2.5, 5},
		{[]int{5, 1, 2, 3, 2}, 4, 6, Decisions{1, 0, 1, 2, 0}, -0.7, 0.2, 0.8, 0.1},
	} {
		c := newController(tc.sizes, tc.hidden, tc.emb, 7)
		c.bound(RLConfig{LogitCap: tc.capC, Temperature: tc.capT})
		if _, err := c.backward(tc.d, tc.adv, tc.entropy); err != nil {
			t.Fatal(err)
		}
		const h = 1e-6
		worst := 0.0
		for i := range c.params {
			old := c.params[i]
			c.params[i] = old + h
			lp := c.loss(tc.d, tc.adv, tc.entropy)
			c.params[i] = old - h
			lm := c.loss(tc.d, tc.adv, tc.entropy)
			c.params[i] = old
			num := (lp - lm) / (2 * h)
			// Central differences err by O(h²) plus rounding of about
			// 1e-16·|L|/h ≈ 1e-9 here.
			diff := math.Abs(num - c.grads[i])
			worst = math.Max(worst, diff)
			if diff > 1e-7+1e-6*math.Abs(num) {
				t.Fatalf("sizes %v: param %d: backprop %.9g, finite difference %.9g", tc.sizes, i, c.grads[i], num)
			}
		}
		t.Logf("sizes %v, cap %v: %d parameters, worst absolute error %.2g", tc.sizes, tc.capC, len(c.params), worst)
	}
}

// TestControllerLogitBound: however far the logits are pushed, the bounded
// controller keeps every choice's probability at least
// e^(−2·cap)/(1 + (k−1)·e^(−2·cap)); the unbounded one does not.
func TestControllerLogitBound(t *testing.T) {
	for _, capC := range []float64{0, 2.5} {
		c := newController([]int{4, 3}, 5, 3, 7)
		c.bound(RLConfig{LogitCap: capC, Temperature: 5})
		for i := range c.bo[0] {
			c.bo[0][i] = float64(100 * i) // choice 3 far ahead
		}
		_, steps := c.forward(Decisions{0, 0}, nil)
		low := slices.Min(steps[0].p)
		floor := math.Exp(-2*capC) / (1 + 3*math.Exp(-2*capC))
		if bounded := low >= floor*(1-1e-9); bounded != (capC > 0) {
			t.Errorf("cap %v: least probability %.3g, floor %.3g", capC, low, floor)
		}
	}
	// ENAS's controller is bounded; a checkpoint restores its bound.
	e := NewRL([]int{3, 2}, ENASControllerConfig(), 1)
	ck, err := e.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	r := NewRL([]int{3, 2}, DefaultRLConfig(), 1)
	if err := r.Restore(ck); err != nil || r.ctl.capC != 2.5 || r.ctl.capT != 5 {
		t.Fatalf("restored bound %v/%v, %v", r.ctl.capC, r.ctl.capT, err)
	}
}

// matchReward is a synthetic objective: the fraction of decisions equal to
// a hidden target.
func matchReward(target, d Decisions) float64 {
	n := 0
	for i := range d {
		if d[i] == target[i] {
			n++
		}
	}
	return float64(n) / float64(len(d))
}

func meanReward(t *testing.T, s Strategy, target Decisions, trials int, seed uint64) []float64 {
	t.Helper()
	rs := make([]float64, trials)
	for i := range rs {
		d, err := s.Propose(rand.New(rand.NewPCG(seed, uint64(i))))
		if err != nil {
			t.Fatal(err)
		}
		rs[i] = matchReward(target, d)
		if err := s.Observe(d, rs[i]); err != nil {
			t.Fatal(err)
		}
	}
	return rs
}

func avg(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

// learnSizes is a space shape with many multi-way decisions (three stages
// of 5 blocks, 4 widths, 2 kernels, 3 expansions, 2 repeats, 3 prune
// ratios, 4 bit widths, 2 ranks, 2 cluster counts, and a switch), where a
// random guess matches about a third of a hidden target, leaving room to
// show learning.
var learnSizes = []int{5, 4, 2, 3, 2, 3, 4, 2, 2, 5, 4, 2, 3, 2, 3, 4, 2, 2, 5, 4, 2, 3, 2, 3, 4, 2, 2, 2}

// TestStrategiesLearnSyntheticReward: on learnSizes with a hidden target,
// rl and evolution raise their reward well above their first trials, and
// random does not.
func TestStrategiesLearnSyntheticReward(t *testing.T) {
	sizes := learnSizes
	target := uniform(rand.New(rand.NewPCG(42, 0)), sizes)
	const trials = 200
	for _, tc := range []struct {
		name    string
		minGain float64
		maxGain float64
	}{
		{"rl", 0.2, 1},
		{"evolution", 0.2, 1},
		{"random", -0.1, 0.1},
	} {
		s, err := NewStrategy(tc.name, sizes, 1)
		if err != nil {
			t.Fatal(err)
		}
		rs := meanReward(t, s, target, trials, 3)
		first, last := avg(rs[:20]), avg(rs[trials-20:])
		t.Logf("%s: mean reward of first 20 trials %.3f, last 20 %.3f", tc.name, first, last)
		if gain := last - first; gain < tc.minGain || gain > tc.maxGain {
			t.Errorf("%s: gain %.3f not in [%.2f, %.2f]", tc.name, gain, tc.minGain, tc.maxGain)
		}
	}
}

// TestCheckpointRestoreReproduces: a strategy restored from a checkpoint
// into a fresh instance proposes exactly what the original proposes, now
// and after further updates.
func TestCheckpointRestoreReproduces(t *testing.T) {
	sizes := DefaultMNISTSpace().Sizes()
	target := uniform(rand.New(rand.NewPCG(9, 0)), sizes)
	for _, name := range StrategyNames {
		a, _ := NewStrategy(name, sizes, 1)
		meanReward(t, a, target, 30, 5)
		ck, err := a.Checkpoint()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := NewStrategy(name, sizes, 99) // different initial weights
		if err := b.Restore(ck); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for i := 0; i < 5; i++ {
			da, _ := a.Propose(rand.New(rand.NewPCG(77, uint64(i))))
			db, _ := b.Propose(rand.New(rand.NewPCG(77, uint64(i))))
			if !slices.Equal(da, db) {
				t.Fatalf("%s: proposal %d after restore %v, original %v", name, i, db, da)
			}
			r := matchReward(target, da)
			if err := a.Observe(da, r); err != nil {
				t.Fatal(err)
			}
			if err := b.Observe(db, r); err != nil {
				t.Fatal(err)
			}
		}
		ca, _ := a.Checkpoint()
		cb, _ := b.Checkpoint()
		if string(ca) != string(cb) {
			t.Fatalf("%s: checkpoints differ after identical updates", name)
		}
		if err := b.Restore([]byte("{not json")); err == nil {
			t.Fatalf("%s: corrupt checkpoint accepted", name)
		}
	}
	small, _ := NewStrategy("rl", []int{2, 2}, 1)
	ck, _ := small.Checkpoint()
	big, _ := NewStrategy("rl", sizes, 1)
	if err := big.Restore(ck); err == nil {
		t.Fatal("rl checkpoint of another space accepted")
	}
}

func TestEvolutionMutatesOneDecision(t *testing.T) {
	sizes := []int{4, 4, 1, 3, 2}
	e := NewEvolution(sizes, 4, 2)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 4; i++ {
		d, _ := e.Propose(rng)
		if err := e.Observe(d, float64(i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 50; i++ {
		d, _ := e.Propose(rng)
		parent := false
		for _, m := range e.Members {
			diff := 0
			for k := range d {
				if d[k] != m.D[k] {
					diff++
				}
			}
			parent = parent || diff == 1
		}
		if !parent || d[2] != 0 {
			t.Fatalf("child %v is not one mutation from any member", d)
		}
		if err := e.Observe(d, rng.Float64()); err != nil {
			t.Fatal(err)
		}
		if len(e.Members) != 4 {
			t.Fatalf("population %d, want 4", len(e.Members))
		}
	}
	if err := e.Observe(Decisions{9, 0, 0, 0, 0}, 1); err == nil {
		t.Fatal("out-of-range decision accepted")
	}
	if _, err := NewStrategy("bayes", sizes, 1); err == nil {
		t.Fatal("unknown strategy accepted")
	}
}
