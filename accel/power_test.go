package accel_test

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"hwnas/accel"
	"hwnas/accel/ref"
)

// refBackend runs plans on the reference kernels. meteredBackend adds a
// PowerMeter that reads watts (NVML stands behind the real one, on a GPU)
// or fails with fail.
type refBackend struct {
	watts float64
	fail  error
}

func (refBackend) Name() string         { return "ref" }
func (refBackend) Device() accel.Device { return accel.Device{Backend: "ref"} }
func (refBackend) Close() error         { return nil }
func (refBackend) Compile(p *accel.Plan, batch int) (accel.Program, error) {
	return accel.NewHostProgram(ref.Kernels{}, p, batch)
}

type meteredBackend struct{ refBackend }

// SamplePower reports a constant draw over the time fn takes.
func (m meteredBackend) SamplePower(fn func() error) (accel.PowerStats, error) {
	t0 := time.Now()
	if err := fn(); err != nil {
		return accel.PowerStats{}, err
	}
	if m.fail != nil {
		return accel.PowerStats{}, m.fail
	}
	d := time.Since(t0)
	return accel.PowerStats{Samples: 3, MeanWatts: m.watts, MaxWatts: m.watts, Joules: m.watts * d.Seconds(), Duration: d}, nil
}

// selfMeasured is a program that measures itself (as a worker's does).
type selfMeasured struct{ accel.Program }

func (selfMeasured) Measure([]float32, accel.LatencyOptions) (accel.Measurement, error) {
	return accel.Measurement{Batch: 42}, nil
}

func actPlan() *accel.Plan {
	return &accel.Plan{Name: "act", Tensors: []accel.Shape{{2, 3, 3}, {2, 3, 3}}, Input: 0, Output: 1,
		Ops: []accel.Op{{Name: "relu", Kind: accel.OpAct, Act: accel.ActReLU, In: []int{0}, Out: []int{1}}}}
}

func TestMeasure(t *testing.T) {
	opt := accel.LatencyOptions{Warmup: 1, MinRuns: 5, MinTime: time.Millisecond}
	const batch = 4
	in := make([]float32, batch*18)
	for _, tc := range []struct {
		name      string
		b         accel.Backend
		wantPower bool
		wantErr   string
	}{
		{"no meter", refBackend{}, false, ""},
		{"meter", meteredBackend{refBackend{watts: 250}}, true, ""},
		{"meter fails", meteredBackend{refBackend{watts: 1, fail: errors.New("nvml gone")}}, false, "nvml gone"},
	} {
		p, err := tc.b.Compile(actPlan(), batch)
		if err != nil {
			t.Fatal(err)
		}
		m, err := accel.Measure(tc.b, p, in, opt)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: %v, want %q", tc.name, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if m.Batch != batch || m.Latency.Runs < 5 || m.Latency.Mean <= 0 {
			t.Errorf("%s: %+v", tc.name, m)
		}
		if (m.Power != nil) != tc.wantPower {
			t.Fatalf("%s: power %v, want present %v", tc.name, m.Power, tc.wantPower)
		}
		if tc.wantPower {
			want := 250 * m.Latency.Mean.Seconds() / batch
			if math.Abs(m.JoulesPerInference-want) > 1e-12 || m.Power.MeanWatts != 250 {
				t.Errorf("%s: %g J per inference, want %g", tc.name, m.JoulesPerInference, want)
			}
		} else if m.JoulesPerInference != 0 {
			t.Errorf("%s: %g J per inference without a meter", tc.name, m.JoulesPerInference)
		}
	}
	p, _ := refBackend{}.Compile(actPlan(), batch)
	if _, err := accel.Measure(refBackend{}, p, in[:7], opt); err == nil || !strings.Contains(err.Error(), "7 floats, want 72") {
		t.Errorf("short input: %v", err)
	}
	if m, err := accel.Measure(refBackend{}, selfMeasured{p}, in, opt); err != nil || m.Batch != 42 {
		t.Errorf("a ProgramMeasurer was not asked: %+v, %v", m, err)
	}
}
