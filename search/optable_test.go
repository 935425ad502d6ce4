package search

import (
	"math"
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
	if kc != "conv|in[1×8×8]|out[4×8×8]|k3x3|s1|p1|d1|g1|relu" {
		t.Fatalf("conv key %q", kc)
	}
	if kq := OpKey(q, &q.Ops[2]); kq == kl || kq != kl+"|int4" {
		t.Fatalf("int4 linear key %q vs fp32 %q", kq, kl)
	}
	table := map[string]float64{kc: 1000, kf: 10, kl: 500}
	if ns, cov := PredictLatency(table, p); ns != 1510 || cov != 1 {
		t.Fatalf("prediction %v coverage %v, want 1510 and 1", ns, cov)
	}
	// The int4 linear is unknown: estimated from the median of all
	// entries (no int op in the table), coverage 2/3; once an int8 conv is
	// known, from that (same weight form).
	if ns, cov := PredictLatency(table, q); ns != 1010+500 || math.Abs(cov-2.0/3) > 1e-12 {
		t.Fatalf("fallback prediction %v coverage %v", ns, cov)
	}
	table["conv|in[9]|int8"] = 4000
	if ns, _ := PredictLatency(table, q); ns != 1010+4000 {
		t.Fatalf("fallback by weight form predicted %v", ns)
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
