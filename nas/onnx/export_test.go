//go:build cgo

package onnx

import (
	"testing"

	"hwnas/accel"
	"hwnas/nas/compress"
)

// TestFP32MatchesHwnas exports every fp32 model kind (the built-in LeNet-5
// and LeNet-300-100 and nas.Builder's compact blocks lowered by nas.Lower,
// LeNet-5 with 75% of its channels removed and LeNet-300-100 factorised by
// package compress, and hand-built plans covering every op kind), checks each file with the ONNX checker,
// and compares onnxruntime's logits with hwnas's cpu backend on the same
// 100 MNIST test images: max |Δ| ≤ 1e-4.
func TestFP32MatchesHwnas(t *testing.T) {
	const tol = 1e-4
	n := sized(100, 20)
	set := mnist(t, n)
	plans := []*accel.Plan{builtinPlan(t, "lenet5", 1), builtinPlan(t, "lenet300", 2), prunedLeNet5(t, 3), lowRankLeNet300(t, 4), lowRankPlan(t, 5)}
	plans = append(plans, blockModels(t)...)
	plans = append(plans, compactPlans()...)
	plans = append(plans, inPlacePlan())
	dir := t.TempDir()
	var paths []string
	for _, p := range plans {
		t.Run(p.Name, func(t *testing.T) {
			path, model, notes := exportFile(t, dir, p, Metadata{})
			paths = append(paths, path)
			if len(notes) != 0 {
				t.Errorf("fp32 plan: unexpected notes %q", notes)
			}
			want := hwnasOutputs(t, p, set.Images, n, 20)
			for _, batch := range []int{1, 20} {
				got := ortOutputs(t, model, set.Images, n, batch)
				d, at := maxAbsDiff(got, want)
				t.Logf("batch %d: max |Δ| %.3g (onnxruntime %v, hwnas %v at %d)", batch, d, got[at], want[at], at)
				if d > tol {
					t.Errorf("batch %d: max |Δ| = %.3g at output %d (onnxruntime %v, hwnas %v), want ≤ %g", batch, d, at, got[at], want[at], tol)
				}
			}
		})
	}
	checkFiles(t, paths...)
}

// lowRankPlan is LeNet-300-100 with its first layer replaced by the rank-32
// SVD factors of a random 300×784 matrix (784→32 without bias, 32→300 with
// it) and an explicit Flatten, as low-rank compression lowers it.
func lowRankPlan(t testing.TB, seed int64) *accel.Plan {
	t.Helper()
	b := newPlan("lenet-300-100-lowrank", seed, mnistShape)
	x := b.flatten(b.p.Input)
	x = b.linear("fc1_v", x, 32, accel.ActNone, false)
	x = b.linear("fc1_u", x, 300, accel.ActReLU, true)
	_, factor, err := compress.SVD(b.randn(300*784, 0.05), 300, 784)
	if err != nil {
		t.Fatal(err)
	}
	f, err := factor(32)
	if err != nil {
		t.Fatal(err)
	}
	b.p.Ops[1].W, b.p.Ops[2].W = f.B, f.A // 32×784 and 300×32
	x = b.linear("fc2", x, 100, accel.ActReLU, true)
	return b.done(b.linear("fc3", x, 10, accel.ActNone, true))
}
