package accel

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestSummariseLatencyRobust(t *testing.T) {
	var s []time.Duration
	for i := 0; i < 99; i++ {
		s = append(s, time.Duration(100+i%5)*time.Microsecond) // 100..104 µs
	}
	s = append(s, 50*time.Millisecond) // one scheduler hiccup
	st, err := SummariseLatency(s)
	if err != nil {
		t.Fatal(err)
	}
	if st.Median != 102*time.Microsecond {
		t.Errorf("median %v, want 102µs", st.Median)
	}
	if st.Outliers != 1 {
		t.Errorf("outliers %d, want 1", st.Outliers)
	}
	if st.Mean > 103*time.Microsecond || st.Mean < 101*time.Microsecond {
		t.Errorf("mean %v not robust to the outlier", st.Mean)
	}
	if st.Max != 104*time.Microsecond || st.Min != 100*time.Microsecond {
		t.Errorf("min/max %v/%v", st.Min, st.Max)
	}
	if st.MAD != time.Microsecond {
		t.Errorf("mad %v, want 1µs", st.MAD)
	}
	if _, err := SummariseLatency(nil); err == nil {
		t.Error("no samples: want an error")
	}
}

func TestMeasureLatencyCountsAndErrors(t *testing.T) {
	calls := 0
	st, err := MeasureLatency(func() (time.Duration, error) {
		calls++
		return time.Duration(calls) * time.Microsecond, nil
	}, LatencyOptions{Warmup: 3, MinRuns: 40, MinTime: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	if st.Runs != 40 || calls != 43 {
		t.Errorf("runs %d calls %d, want 40 and 43", st.Runs, calls)
	}
	// device timings 4..43 µs: the median is 23.5 µs
	if st.Median != 23500*time.Nanosecond {
		t.Errorf("median %v, want 23.5µs (the device's timings)", st.Median)
	}
	boom := errors.New("boom")
	if _, err := MeasureLatency(func() (time.Duration, error) { return 0, boom }, LatencyOptions{}); !errors.Is(err, boom) {
		t.Errorf("err %v, want boom", err)
	}
}

func TestRegistryErrorsListBackends(t *testing.T) {
	Register(Registration{Name: "test-reg", Open: func(Options) (Backend, error) { return nil, errors.New("opened") }})
	if _, err := Open("nope", Options{}); err == nil || !strings.Contains(err.Error(), "test-reg") {
		t.Errorf("unknown backend error %v should list registered backends", err)
	}
	if _, err := Open("test-reg:x", Options{}); err == nil {
		t.Error("bad index: want error")
	}
	if _, err := Open("test-reg:1", Options{}); err == nil || err.Error() != "opened" {
		t.Errorf("err %v", err)
	}
}

func TestDeviceFingerprintStable(t *testing.T) {
	a := DetectCPU(1, "generic")
	b := DetectCPU(1, "generic")
	if a.Fingerprint == "" || a.Fingerprint != b.Fingerprint {
		t.Errorf("fingerprints %q %q", a.Fingerprint, b.Fingerprint)
	}
	b.Features = append([]string{"zzz"}, b.Features...)
	if b.ComputeFingerprint() == a.Fingerprint {
		t.Error("different features must give a different fingerprint")
	}
}

func TestFingerprintSeparatesConfigurations(t *testing.T) {
	a := DetectCPU(1, "avx512")
	if b := DetectCPU(1, "generic"); a.Fingerprint == b.Fingerprint {
		t.Error("forced generic kernels must not share a fingerprint with avx512 ones")
	}
	if a.Name != DetectCPU(1, "generic").Name {
		t.Error("the name must not depend on the configuration")
	}
}

func TestPlanRejectsActOnPool(t *testing.T) {
	p := &Plan{Name: "pool-act", Tensors: []Shape{{1, 4, 4}, {1, 2, 2}}, Output: 1,
		Ops: []Op{{Name: "p", Kind: OpMaxPool, In: []int{0}, Out: []int{1}, Act: ActReLU,
			Pool: PoolParams{KH: 2, KW: 2, StrideH: 2, StrideW: 2}}}}
	err := p.Validate()
	if err == nil || !strings.Contains(err.Error(), "cannot fuse activation relu") {
		t.Fatalf("err %v, want a refusal of the fused activation", err)
	}
	p.Ops[0].Act = ActNone
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestWindowsThatDoNotFitAreRefused(t *testing.T) {
	// Truncating division would give one output row for these.
	pool := PoolParams{N: 1, C: 1, H: 1, W: 1, KH: 2, KW: 2, StrideH: 2, StrideW: 2}
	if pool.OutH() != 0 || pool.Validate() == nil {
		t.Errorf("2×2 pool on 1×1: OutH %d, Validate %v; want 0 and an error", pool.OutH(), pool.Validate())
	}
	conv := ConvParams{N: 1, C: 1, H: 1, W: 1, K: 1, KH: 2, KW: 2, StrideH: 2, StrideW: 2}
	if conv.OutH() != 0 || conv.Validate() == nil {
		t.Errorf("2×2 conv on 1×1: OutH %d, Validate %v; want 0 and an error", conv.OutH(), conv.Validate())
	}
	ok := PoolParams{N: 1, C: 1, H: 5, W: 5, KH: 2, KW: 2, StrideH: 2, StrideW: 2}
	if ok.OutH() != 2 || ok.Validate() != nil {
		t.Errorf("2×2/2 pool on 5×5: OutH %d, want 2", ok.OutH())
	}
}
