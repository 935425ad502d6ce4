package search

import (
	"math"
	"strings"
	"testing"
	"time"

	"hwnas/accel"
)

// twoOpPlan is conv(1→4, 3×3) → flatten → linear(4·8·8 → 10).
func twoOpPlan(quant bool) *accel.Plan {
	p := &accel.Plan{Name: "t", Tensors: []accel.Shape{{1, 8, 8}, {4, 8, 8}, {256}, {10}}, Input: 0, Output: 3,
		Ops: []accel.Op{
			{Name: "conv", Kind: accel.OpConv, In: []int{0}, Out: []int{1}, Conv: accel.ConvParams{K: 4, KH: 3, KW: 3, PadH: 1, PadW: 1}, Act: accel.ActReLU, W: make([]float32, 36)},
			{Name: "flat", Kind: accel.OpFlatten, In: []int{1}, Out: []int{2}},
			{Name: "fc", Kind: accel.OpLinear, In: []int{2}, Out: []int{3}, W: make([]float32, 2560)},
		}}
	if quant {
		p.Ops[2].Quant = &accel.QuantWeights{Bits: 4}
	}
	return p
}

func TestOpKeyAndPrediction(t *testing.T) {
	p, q := twoOpPlan(false), twoOpPlan(true)
	kc, kf, kl := OpKey(p, &p.Ops[0]), OpKey(p, &p.Ops[1]), OpKey(p, &p.Ops[2])
	if kc != "conv|in[1×8×8]|out[4×8×8]|k3x3|s1|p1|d1|g1|relu|from:input" {
		t.Fatalf("conv key %q", kc)
	}
	if kf != "flatten|in[4×8×8]|out[256]|from:conv" {
		t.Fatalf("flatten key %q", kf)
	}
	if kq := OpKey(q, &q.Ops[2]); kq == kl || kq != strings.Replace(kl, "|from:", "|int4|from:", 1) {
		t.Fatalf("int4 linear key %q vs fp32 %q", kq, kl)
	}
	// The producer's weight form is part of the key: a layout conversion
	// may be charged to the consumer.
	q.Ops[0].Quant = &accel.QuantWeights{Bits: 8}
	if k := OpKey(q, &q.Ops[1]); k != "flatten|in[4×8×8]|out[256]|from:conv-int" {
		t.Fatalf("flatten after int8 conv: key %q", k)
	}
	q.Ops[0].Quant = nil
	table := map[string]float64{kc: 1000, kf: 10, kl: 500}
	if ns, cov := PredictLatency(table, p); ns != 1510 || cov != 1 {
		t.Fatalf("prediction %v coverage %v, want 1510 and 1", ns, cov)
	}
	if ns, _ := PredictLatency(nil, p); ns != 0 {
		t.Fatalf("empty table predicted %v", ns)
	}
	// Merge: a new key takes the mean of its ops, a known one moves a
	// quarter of the way; NaN and non-positive times are ignored.
	got := MergeOpTimes(map[string]time.Duration{"a": 1000}, []OpTime{
		{Key: "a", Ns: 2000}, {Key: "b", Ns: 100}, {Key: "b", Ns: 300}, {Key: "c", Ns: math.NaN()}, {Key: "d", Ns: 0},
	})
	if len(got) != 2 || got["a"] != 1250 || got["b"] != 200 {
		t.Fatalf("merged %v", got)
	}
}

// TestPredictorEstimatesFromNeighbours: an op the table does not hold is
// estimated from the three entries of its class nearest in size, each
// scaled by multiply-adds when within 2× of the op, shifted by the class
// model otherwise; classes are kept apart (1×1 from k×k), a 5×5 conv is
// k×k too, and a class without two entries borrows a broader one.
func TestPredictorEstimatesFromNeighbours(t *testing.T) {
	conv := func(cin, cout, hw, k int) string {
		p := &accel.Plan{Tensors: []accel.Shape{{cin, hw, hw}, {cout, hw, hw}}, Input: 0, Output: 1,
			Ops: []accel.Op{{Kind: accel.OpConv, In: []int{0}, Out: []int{1}, Conv: accel.ConvParams{K: cout, KH: k, KW: k, PadH: k / 2, PadW: k / 2}}}}
		return OpKey(p, &p.Ops[0])
	}
	macs := func(key string) float64 {
		sig, ok := parseOpKey(key)
		if !ok {
			t.Fatalf("key %q does not parse", key)
		}
		return sig.features()[1]
	}
	// k×k convs: small ones at 0.05 ns per multiply-add, large ones
	// (three of them, the nearest to a large op) at 0.02; 1×1 convs at 0.5.
	table := map[string]float64{}
	for _, x := range [][4]int{{8, 8, 7, 3}, {8, 12, 7, 3}, {12, 12, 7, 3}} {
		k := conv(x[0], x[1], x[2], x[3])
		table[k] = 0.05 * macs(k)
	}
	for _, x := range [][4]int{{32, 40, 28, 3}, {40, 40, 28, 3}, {40, 48, 28, 3}} {
		k := conv(x[0], x[1], x[2], x[3])
		table[k] = 0.02 * macs(k)
	}
	for _, x := range [][4]int{{8, 16, 14, 1}, {16, 32, 7, 1}, {32, 64, 7, 1}} {
		k := conv(x[0], x[1], x[2], x[3])
		table[k] = 0.5 * macs(k)
	}
	pr := NewPredictor(table)
	for _, tc := range []struct {
		key  string
		rate float64
	}{
		{conv(40, 44, 28, 3), 0.02}, // large: the large k×k entries
		{conv(10, 10, 7, 3), 0.05},  // small: the small ones
		{conv(16, 48, 7, 1), 0.5},   // 1×1: its own class (one neighbour 2.7× larger, shifted)
	} {
		want := tc.rate * macs(tc.key)
		if got := pr.estimate(tc.key); math.Abs(got-want) > 1e-3*want {
			t.Errorf("%s: estimated %v, want %v", tc.key, got, want)
		}
	}
	// A 5×5 conv is k×k too: its large neighbours are 2.5–3.8× smaller,
	// so they are shifted by the class model's slope, which lies between
	// the two regimes' rates (the model's intercept lowers it a little).
	k5 := conv(40, 44, 28, 5)
	if got := pr.estimate(k5) / macs(k5); got < 0.01 || got > 0.05 {
		t.Errorf("5×5 conv estimated at %v ns per multiply-add, want 0.01–0.05", got)
	}
	// A grouped conv has no class of its own with two entries and takes
	// the conv entries: positive, finite.
	g := strings.Replace(conv(16, 16, 14, 3), "|g1|", "|g4|", 1)
	if got := pr.estimate(g); !(got > 0) || math.IsInf(got, 0) {
		t.Errorf("grouped conv estimated %v", got)
	}
	// A table of one entry: the class model over every op, fitted on it
	// (a constant or in proportion to the multiply-adds, 4× here).
	one := NewPredictor(map[string]float64{conv(8, 8, 7, 3): 1000})
	if got := one.estimate(conv(16, 16, 7, 3)); !(got >= 1000-1e-6 && got <= 4000+1e-6) {
		t.Errorf("one-entry table estimated %v, want 1000–4000 ns", got)
	}
	// The fit is by relative error, coefficients non-negative.
	m := fitOpModel([][3]float64{{1, 10, 0}, {1, 20, 0}, {1, 30, 0}}, []float64{100, 90, 80})
	if m.coef[1] < 0 || m.coef[2] < 0 || math.Abs(m.at([3]float64{1, 20, 0})-90) > 10 {
		t.Errorf("decreasing data fitted as %+v", m)
	}
}

// TestParseLatencyTarget reads both forms of a budget.
func TestParseLatencyTarget(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want LatencyTarget
	}{
		{"50us", LatencyTarget{Abs: 50 * time.Microsecond}},
		{"1.5ms", LatencyTarget{Abs: 1500 * time.Microsecond}},
		{"0.2xlenet5", LatencyTarget{Ratio: 0.2, Reference: "lenet5"}},
		{" 0.5×resnet20 ", LatencyTarget{Ratio: 0.5, Reference: "resnet20"}},
		{"2*mobilenetv2:0.5", LatencyTarget{Ratio: 2, Reference: "mobilenetv2:0.5"}},
	} {
		got, err := ParseLatencyTarget(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("%q: %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "-5us", "0us", "0xlenet5", "0.2xnosuchnet", "fast", "0.2x"} {
		if _, err := ParseLatencyTarget(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if s := (LatencyTarget{Ratio: 0.25, Reference: "lenet5"}).String(); s != "0.25xlenet5" {
		t.Errorf("String %q", s)
	}
}

// TestChargeOverhead: per-op medians that add up to more than the figure
// lose the difference as a constant per op (a tenth of the median at
// least), then add up to the figure.
func TestChargeOverhead(t *testing.T) {
	ops := chargeOverhead([]OpTime{{Key: "big", Ns: 1000}, {Key: "mid", Ns: 130}, {Key: "tiny", Ns: 20}}, 1150, 1060)
	sum := 0.0
	for _, o := range ops {
		sum += o.Ns
	}
	if math.Abs(sum-1060) > 1e-9 {
		t.Fatalf("ops add up to %v, want the figure 1060: %+v", sum, ops)
	}
	// 30 ns per op: 970, 100, and the tiny op kept at a tenth, 2 ns;
	// then scaled by 1060/1072.
	for i, want := range []float64{970, 100, 2} {
		if w := want * 1060 / 1072; math.Abs(ops[i].Ns-w) > 1e-9 {
			t.Errorf("%s: %v ns, want %v", ops[i].Key, ops[i].Ns, w)
		}
	}
}

// TestHeldOut: each run is predicted from the others' op times; a run
// whose ops the others hold at the same times is predicted exactly, one
// whose op none of them has is estimated.
func TestHeldOut(t *testing.T) {
	same := []OpTime{{Key: "relu|in[8×7×7]|out[8×7×7]|from:conv", Ns: 100}, {Key: "linear|in[392]|out[10]|from:relu", Ns: 400}}
	runs := []OpRun{{Trial: 0, Figure: 500, Ops: same}, {Trial: 1, Figure: 500, Ops: same}, {Trial: 2, Figure: 500, Ops: same}}
	rep := HeldOut(runs)
	if rep.Trials != 3 || rep.Within10 != 3 || rep.MeanAbsPct > 1e-9 {
		t.Fatalf("identical runs held out: %+v", rep)
	}
	if rep := HeldOut(runs[:1]); rep.Trials != 0 {
		t.Fatalf("one run has nothing to be predicted from: %+v", rep)
	}
}
