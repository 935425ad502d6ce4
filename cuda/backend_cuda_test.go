//go:build cuda

package cuda

import (
	"math"
	"math/rand"
	"testing"
	"time"

	"hwnas/accel"
	"hwnas/accel/accetest"
	"hwnas/accel/ref"
)

// openGPU opens cuda:0, or skips when the driver sees no GPU. (A machine
// without the driver never gets here: gorgonia.org/cu exits the test
// binary in its init.)
func openGPU(t testing.TB) *Backend {
	t.Helper()
	if _, err := Devices(); err != nil {
		t.Skipf("no GPU: %v", err)
	}
	b, err := Open(accel.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b.(*Backend)
}

func TestConformance(t *testing.T) {
	accetest.RunConformance(t, openGPU(t))
}

func TestDevice(t *testing.T) {
	b := openGPU(t)
	d := b.Device()
	t.Logf("%+v", d)
	if d.Backend != "cuda" || d.Name == "" || d.MemoryBytes <= 0 || d.ComputeCapability == "" || d.UUID == "" || d.Fingerprint == "" {
		t.Errorf("device description incomplete: %+v", d)
	}
	if b.lim.SMs <= 0 {
		t.Errorf("%d SMs", b.lim.SMs)
	}
}

// reference runs p on the float64 reference kernels.
func reference(t *testing.T, p *accel.Plan, batch int, in []float32) []float32 {
	t.Helper()
	hp, err := accel.NewHostProgram(ref.Kernels{}, p, batch)
	if err != nil {
		t.Fatal(err)
	}
	defer hp.Close()
	out := make([]float32, batch*hp.OutputSize())
	if err := hp.Run(in, out); err != nil {
		t.Fatal(err)
	}
	return out
}

func randomInput(n int, seed int64) []float32 {
	r := rand.New(rand.NewSource(seed))
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

// TestPlansAgainstReference runs the planning tests' plans (every tile
// configuration is reached through LeNet's batches, the int8 paths through
// blockPlan(true)) on the GPU.
func TestPlansAgainstReference(t *testing.T) {
	b := openGPU(t)
	for _, tc := range []struct {
		name  string
		plan  *accel.Plan
		batch int
	}{
		{"lenet b1", lenet5(), 1},
		{"lenet b8", lenet5(), 8},
		{"lenet b256", lenet5(), 256},
		{"block b3", blockPlan(false), 3},
		{"block int8 b3", blockPlan(true), 3},
		{"block int8 b40", blockPlan(true), 40},
	} {
		in := randomInput(tc.batch*tc.plan.Tensors[tc.plan.Input].Size(), 7)
		want := reference(t, tc.plan, tc.batch, in)
		p, err := b.Compile(tc.plan, tc.batch)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		got := make([]float32, len(want))
		d, err := p.(accel.TimedProgram).RunTimed(in, got)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if e := accetest.NMSE(got, want); e > 1e-9 {
			t.Errorf("%s: NMSE %.3g", tc.name, e)
		}
		per := make([]time.Duration, len(tc.plan.Ops))
		if err := p.(accel.OpTimedProgram).RunOpTimed(in, got, per); err != nil {
			t.Errorf("%s: op-timed: %v", tc.name, err)
		}
		t.Logf("%s: graph %v, per op %v", tc.name, d, per)
		if d <= 0 {
			t.Errorf("%s: graph time %v", tc.name, d)
		}
		p.Close()
	}
}

// TestCompileReusesMemory compiles, closes and compiles again: the second
// program's buffers all come from the pool's cache.
func TestCompileReusesMemory(t *testing.T) {
	b := openGPU(t)
	p, err := b.Compile(lenet5(), 16)
	if err != nil {
		t.Fatal(err)
	}
	p.Close()
	before := b.pool.Stats()
	p, err = b.Compile(lenet5(), 16)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	after := b.pool.Stats()
	if after.Allocs != before.Allocs || after.Reuses <= before.Reuses {
		t.Errorf("second compile: %+v → %+v, want no new device allocations", before, after)
	}
}

func TestSgemm(t *testing.T) {
	b := openGPU(t)
	for _, s := range [][3]int{{1, 1, 1}, {129, 77, 300}, {256, 256, 256}, {1000, 10, 33}} {
		m, n, k := s[0], s[1], s[2]
		a, bb := randomInput(m*k, 1), randomInput(k*n, 2)
		c := make([]float32, m*n)
		if _, err := b.Sgemm(m, n, k, a, bb, c, 1); err != nil {
			t.Fatal(err)
		}
		want := make([]float32, m*n)
		for i := 0; i < m; i++ {
			for j := 0; j < n; j++ {
				var sum float64
				for l := 0; l < k; l++ {
					sum += float64(a[i*k+l]) * float64(bb[l*n+j])
				}
				want[i*n+j] = float32(sum)
			}
		}
		if e := accetest.NMSE(c, want); e > 1e-10 {
			t.Errorf("sgemm %v: NMSE %.3g", s, e)
		}
	}
}

func TestPowerSampling(t *testing.T) {
	b := openGPU(t)
	if b.power == nil {
		t.Skip("NVML cannot read this GPU's power")
	}
	p, err := b.Compile(lenet5(), 256)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	m, err := accel.Measure(b, p, randomInput(256*784, 3), accel.LatencyOptions{MinTime: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v power %+v", m, *m.Power)
	if m.Power == nil || m.Power.Samples == 0 || !(m.Power.MeanWatts > 0) || !(m.JoulesPerInference > 0) || math.IsInf(m.JoulesPerInference, 0) {
		t.Errorf("measurement %+v", m)
	}
}
