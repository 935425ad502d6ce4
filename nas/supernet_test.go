package nas

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// superArchs are a largest network and a narrower one with smaller kernels
// whose layers have the same names (same slots): conv 5×5 → 3×3, 12 → 5
// channels, 9 → 4 channels, and a flattening head whose linear layer reads
// the first channels' maps.
func superArchs(t *testing.T) (big, small *Arch) {
	t.Helper()
	mk := func(c1, k1, c2, k2 int) *Arch {
		return &Arch{Version: ArchVersion, Name: "s", Input: []int{2, 6, 6}, Classes: 3, Layers: []Layer{
			{Name: "c1", Type: TypeConv, Out: c1, Kernel: k1, Pad: k1 / 2, Bias: noBias()},
			{Name: "bn1", Type: TypeBatchNorm, Act: "relu"},
			{Name: "c2", Type: TypeConv, Out: c2, Kernel: k2, Stride: 2, Pad: k2 / 2},
			{Name: "dw", Type: TypeDWConv, Kernel: k2, Pad: k2 / 2, Bias: noBias()},
			{Name: "bn2", Type: TypeBatchNorm, Act: "relu"},
			{Name: "flat", Type: TypeFlatten},
			{Name: "fc", Type: TypeLinear, Out: 3},
		}}
	}
	return mk(12, 5, 9, 3), mk(5, 3, 4, 1)
}

func sameSlot(layer string) string { return layer }

// TestSubnetSliceMatchesStandalone checks that a sub-network bound to a
// supernet computes exactly what a standalone network does when its
// weights are the slices written out by hand: first channels, kernel
// centre, the flattened head's first channels' features.
func TestSubnetSliceMatchesStandalone(t *testing.T) {
	big, small := superArchs(t)
	bm := testModel(t, big, 3)
	sw := NewSharedWeights()
	if err := sw.Adopt(bm, sameSlot); err != nil {
		t.Fatal(err)
	}
	sub := testModel(t, small, 99)
	b, err := sw.Bind(sub, sameSlot)
	if err != nil {
		t.Fatal(err)
	}
	b.Load()

	// The standalone network, its weights sliced by explicit index maths.
	want := testModel(t, small, 42)
	w := func(m *Model, name string) []float32 { return m.Param(name).Data }
	conv := func(name string, k, c, kh, K, C, KH int) {
		o := (KH - kh) / 2
		for a := 0; a < k; a++ {
			for d := 0; d < c; d++ {
				for i := 0; i < kh; i++ {
					for j := 0; j < kh; j++ {
						w(want, name)[((a*c+d)*kh+i)*kh+j] = w(bm, name)[((a*C+d)*KH+i+o)*KH+j+o]
					}
				}
			}
		}
	}
	conv("c1.w", 5, 2, 3, 12, 2, 5)
	conv("c2.w", 4, 5, 1, 9, 12, 3)
	conv("dw.w", 4, 1, 1, 9, 1, 3)
	copy(w(want, "c2.b"), w(bm, "c2.b")[:4])
	for _, n := range []string{"bn1.gamma", "bn1.beta", "bn2.gamma", "bn2.beta"} {
		copy(w(want, n), w(bm, n))
	}
	// fc reads [C,3,3] flattened: the first 4 channels are the first 36 features.
	for o := 0; o < 3; o++ {
		copy(w(want, "fc.w")[o*36:(o+1)*36], w(bm, "fc.w")[o*81:o*81+36])
	}
	copy(w(want, "fc.b"), w(bm, "fc.b"))
	for _, p := range want.Params {
		if q := sub.Param(p.Name); !slices.Equal(p.Data, q.Data) {
			t.Fatalf("%s: bound slice differs from the hand-written one", p.Name)
		}
	}
	r := rand.New(rand.NewPCG(5, 6))
	x := randInput(r, 4*small.Input[0]*36)
	labels := []int32{0, 1, 2, 1}
	for _, m := range []*Model{sub, want} {
		if err := m.RecalibrateBN(x, 4, 2); err != nil {
			t.Fatal(err)
		}
	}
	ys, err := sub.Forward(x, 4)
	if err != nil {
		t.Fatal(err)
	}
	yw, err := want.Forward(x, 4)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ys, yw) {
		t.Fatalf("sub-network logits %v, standalone %v", ys, yw)
	}

	// The largest sub-network is the supernet itself.
	full := testModel(t, big, 77)
	fb, err := sw.Bind(full, sameSlot)
	if err != nil {
		t.Fatal(err)
	}
	fb.Load()
	for _, p := range bm.Params {
		if !slices.Equal(p.Data, full.Param(p.Name).Data) {
			t.Fatalf("%s: the largest sub-network is not the supernet", p.Name)
		}
	}

	// Gradients land in the slices they came from, and only there.
	if _, _, err := sub.Gradients(x, labels, 4); err != nil {
		t.Fatal(err)
	}
	b.AddGrads()
	g := sw.tensors["c1.w"].Grad
	nonzero := 0
	for a := 0; a < 12; a++ {
		for d := 0; d < 2; d++ {
			for i := 0; i < 5; i++ {
				for j := 0; j < 5; j++ {
					v := g[((a*2+d)*5+i)*5+j]
					inside := a < 5 && i >= 1 && i <= 3 && j >= 1 && j <= 3
					if !inside && v != 0 {
						t.Fatalf("c1.w grad at [%d %d %d %d] = %v outside the slice", a, d, i, j, v)
					}
					if inside {
						if v != sub.Param("c1.w").Grad[((a*2+d)*3+i-1)*3+j-1] {
							t.Fatalf("c1.w grad at [%d %d %d %d] differs from the sub-network's", a, d, i, j)
						}
						if v != 0 {
							nonzero++
						}
					}
				}
			}
		}
	}
	if nonzero == 0 {
		t.Fatal("no gradient reached the shared c1.w")
	}
	before := append([]float32(nil), sw.tensors["c1.w"].Data...)
	sw.Step(0.1, 0.9, 0)
	after := sw.tensors["c1.w"].Data
	if after[((0*2+0)*5+0)*5+0] != before[0] || after[((0*2+0)*5+2)*5+2] == before[((0*2+0)*5+2)*5+2] {
		t.Fatal("Step must move the trained slice and leave the rest")
	}

	// A round trip through the checkpoint encoding restores the weights.
	blob, err := sw.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	sw2 := NewSharedWeights()
	if err := sw2.Adopt(testModel(t, big, 8), sameSlot); err != nil {
		t.Fatal(err)
	}
	if err := sw2.UnmarshalBinary(blob); err != nil {
		t.Fatal(err)
	}
	for k, v := range sw.tensors {
		if !slices.Equal(v.Data, sw2.tensors[k].Data) || !slices.Equal(v.Vel, sw2.tensors[k].Vel) {
			t.Fatalf("%s differs after the round trip", k)
		}
	}
}

// TestSubnetBindErrors: a tensor larger than its slot, a kernel without a
// centre and a layer without a slot are refused.
func TestSubnetBindErrors(t *testing.T) {
	big, small := superArchs(t)
	sw := NewSharedWeights()
	if err := sw.Adopt(testModel(t, small, 1), sameSlot); err != nil {
		t.Fatal(err)
	}
	if _, err := sw.Bind(testModel(t, big, 1), sameSlot); err == nil {
		t.Fatal("a network larger than the supernet was bound")
	}
	sw = NewSharedWeights()
	if err := sw.Adopt(testModel(t, big, 1), sameSlot); err != nil {
		t.Fatal(err)
	}
	even := big.Clone()
	even.Layers[0].Kernel, even.Layers[0].Pad = 4, 2
	if _, err := sw.Bind(testModel(t, even, 1), sameSlot); err == nil {
		t.Fatal("a 4×4 kernel was bound to the centre of a 5×5 one")
	}
	if _, err := sw.Bind(testModel(t, small, 1), func(l string) string { return map[string]string{"fc": ""}[l] }); err == nil {
		t.Fatal("a layer without a slot was bound")
	}
}

// TestRecalibrateBN: after recalibration the running statistics of a batch
// norm reading the input are the input's per-channel mean and the average
// of the batches' unbiased variances.
func TestRecalibrateBN(t *testing.T) {
	a := &Arch{Version: ArchVersion, Name: "bn", Input: []int{2, 3, 3}, Classes: 2, Layers: []Layer{
		{Name: "bn", Type: TypeBatchNorm},
		{Name: "fc", Type: TypeLinear, Out: 2},
	}}
	m := testModel(t, a, 1)
	r := rand.New(rand.NewPCG(1, 1))
	const n, batch = 6, 3
	x := randInput(r, n*18)
	for i := range x {
		x[i] = 2*x[i] + 1
	}
	if err := m.RecalibrateBN(x, n, batch); err != nil {
		t.Fatal(err)
	}
	for c := 0; c < 2; c++ {
		var mean, vsum float64
		for from := 0; from < n; from += batch {
			var s, sq float64
			for k := from; k < from+batch; k++ {
				for j := 0; j < 9; j++ {
					s += float64(x[k*18+c*9+j])
				}
			}
			mu := s / (batch * 9)
			for k := from; k < from+batch; k++ {
				for j := 0; j < 9; j++ {
					d := float64(x[k*18+c*9+j]) - mu
					sq += d * d
				}
			}
			mean += mu / (n / batch)
			vsum += sq / (batch*9 - 1) / (n / batch)
		}
		if got := float64(m.Param("bn.mean").Data[c]); math.Abs(got-mean) > 1e-5 {
			t.Errorf("channel %d: mean %v, want %v", c, got, mean)
		}
		if got := float64(m.Param("bn.var").Data[c]); math.Abs(got-vsum) > 1e-4*vsum {
			t.Errorf("channel %d: var %v, want %v", c, got, vsum)
		}
	}
	if err := m.RecalibrateBN(x, 0, 3); err == nil {
		t.Fatal("recalibration on no samples was accepted")
	}
}
