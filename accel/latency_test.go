package accel

import (
	"errors"
	"math"
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

// TestQuantileCI checks the order statistics' coverage against the
// binomial sum computed directly, and the small-sample and exact cases.
func TestQuantileCI(t *testing.T) {
	binom := func(n int, q float64, lo, hi int) float64 { // P(lo+1 ≤ B ≤ hi), B ~ Binomial(n, q)
		c := 0.0
		for i := lo + 1; i <= hi; i++ {
			lg1, _ := math.Lgamma(float64(n + 1))
			lg2, _ := math.Lgamma(float64(i + 1))
			lg3, _ := math.Lgamma(float64(n - i + 1))
			c += math.Exp(lg1 - lg2 - lg3 + float64(i)*math.Log(q) + float64(n-i)*math.Log1p(-q))
		}
		return c
	}
	for _, tc := range []struct {
		n int
		q float64
	}{{41, 0.1}, {41, 0.5}, {100, 0.5}, {21, 0.25}, {200, 0.1}, {7, 0.5}} {
		lo, hi := QuantileCI(tc.n, tc.q)
		if lo < 0 || hi >= tc.n || lo > hi {
			t.Fatalf("n %d q %v: [%d, %d]", tc.n, tc.q, lo, hi)
		}
		if c := binom(tc.n, tc.q, lo, hi); c < 0.95 && (lo > 0 || hi < tc.n-1) {
			t.Errorf("n %d q %v: [%d, %d] covers %.4f < 0.95", tc.n, tc.q, lo, hi, c)
		}
		// Minimal: narrowing either side drops below 95%.
		if lo < hi && binom(tc.n, tc.q, lo+1, hi) >= 0.95 && binom(tc.n, tc.q, lo, hi-1) >= 0.95 {
			t.Errorf("n %d q %v: [%d, %d] is wider than it needs", tc.n, tc.q, lo, hi)
		}
	}
	// 100 samples, the median: [X(41), X(61)] (1-based), 95.4%.
	if lo, hi := QuantileCI(100, 0.5); lo != 40 || hi != 60 {
		t.Errorf("median of 100: [%d, %d], want [40, 60]", lo, hi)
	}
	// Three samples can not give 95%: every sample.
	if lo, hi := QuantileCI(3, 0.5); lo != 0 || hi != 2 {
		t.Errorf("median of 3: [%d, %d], want [0, 2]", lo, hi)
	}
}

// TestMeasureRounds drives MeasureRounds with subjects that report their
// own (device) times: the figure is the asked quantile (10%) of the per-round
// floors, a disturbed burst costs one round, every round holds one burst
// of each subject, bursts are calibrated from BurstTime.
func TestMeasureRounds(t *testing.T) {
	// Subject a: 100 µs runs, but every 4th round's burst runs at 250 µs
	// and every burst's first timed run at 300 µs (a warm-up miss);
	// subject b: 40 µs, its 3rd round's floor 38 µs.
	round := map[string]int{}
	calls := map[string]int{}
	seen := map[[2]int]int{}
	var subjects []Subject
	for _, name := range []string{"a", "b"} {
		subjects = append(subjects, Subject{Name: name, Run: func() (time.Duration, error) {
			calls[name]++
			r := round[name]
			switch {
			case name == "a" && r%4 == 3:
				return 250 * time.Microsecond, nil
			case name == "a":
				return 100 * time.Microsecond, nil
			case r == 2:
				return 38 * time.Microsecond, nil
			}
			return 40 * time.Microsecond, nil
		}})
	}
	opt := RoundsOptions{Rounds: 12, BurstTime: 400 * time.Microsecond, Pin: PinNone, Quantile: 0.1,
		OnBurst: func(s, r int, runs []time.Duration) {
			seen[[2]int{s, r}] = len(runs)
			round[subjects[s].Name] = r + 1
		}}
	res, err := MeasureRounds(subjects, opt)
	if err != nil {
		t.Fatal(err)
	}
	// Bursts: 400/100 = 4 runs for a, 400/40 = 10 for b (≥ MinBurst 5: 5
	// for a).
	if res.Bursts[0] != 5 || res.Bursts[1] != 10 {
		t.Fatalf("bursts %v, want [5 10]", res.Bursts)
	}
	if len(seen) != 24 {
		t.Fatalf("%d bursts seen, want 12 rounds × 2", len(seen))
	}
	a, b := res.Stats[0], res.Stats[1]
	if a.Rounds != 12 || a.Runs != 60 || b.Runs != 120 {
		t.Fatalf("rounds %d runs %d/%d", a.Rounds, a.Runs, b.Runs)
	}
	if a.Latency != 100*time.Microsecond || a.Median != 100*time.Microsecond || a.Max != 250*time.Microsecond {
		t.Errorf("a: %v", a)
	}
	// b's floors: one 38 µs round and eleven 40 µs: the 10% quantile
	// interpolates 38 + 0.1·11·… → 40 µs at index 1.1.
	if b.Latency != 40*time.Microsecond || b.Min != 38*time.Microsecond || b.Low != 38*time.Microsecond {
		t.Errorf("b: %v (min %v low %v)", b.Latency, b.Min, b.Low)
	}
	// Twelve rounds cannot bound a 10% quantile at 95% (no round below
	// it has probability 0.9¹² = 28%): the interval is every round.
	if a.Low != 100*time.Microsecond || a.High != 250*time.Microsecond || a.Spread() != 1.5 {
		t.Errorf("a interval [%v, %v] spread %v", a.Low, a.High, a.Spread())
	}
	boom := errors.New("boom")
	_, err = MeasureRounds([]Subject{{Name: "x", Run: func() (time.Duration, error) { return 0, boom }}}, RoundsOptions{Pin: PinNone})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "x") {
		t.Errorf("error %v", err)
	}
	if _, err := MeasureRounds(nil, RoundsOptions{}); err == nil {
		t.Error("no subjects: want an error")
	}
	if d := (RoundsOptions{}).withDefaults(); d.Rounds != 81 || d.Quantile != 0.02 {
		t.Errorf("defaults: %d rounds, quantile %v", d.Rounds, d.Quantile)
	}
}

func TestMeanStats(t *testing.T) {
	m := MeanStats([]LatencyStats{{Latency: 10, Low: 8, High: 12, Min: 7, Runs: 5, Rounds: 3}, {Latency: 20, Low: 18, High: 24, Min: 5, Runs: 7, Rounds: 3}})
	if m.Latency != 15 || m.Low != 13 || m.High != 18 || m.Min != 5 || m.Runs != 12 || m.Rounds != 3 {
		t.Fatalf("%+v", m)
	}
}
