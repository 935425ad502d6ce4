package accel

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"time"
)

// LatencyOptions control MeasureLatency. Zero fields take the defaults
// noted.
type LatencyOptions struct {
	Warmup  int           // untimed runs first (default 5)
	MinRuns int           // at least this many timed runs (default 30)
	MinTime time.Duration // and keep going until this much time is spent (default 200ms)
	MaxRuns int           // stop after this many timed runs (default 100000)
	MaxTime time.Duration // or after this much time, once MinRuns are done (default 10s)
}

func (o LatencyOptions) withDefaults() LatencyOptions {
	if o.Warmup == 0 {
		o.Warmup = 5
	}
	if o.MinRuns <= 0 {
		o.MinRuns = 30
	}
	if o.MinTime == 0 {
		o.MinTime = 200 * time.Millisecond
	}
	if o.MaxRuns <= 0 {
		o.MaxRuns = 100000
	}
	if o.MaxRuns < o.MinRuns {
		o.MaxRuns = o.MinRuns
	}
	if o.MaxTime == 0 {
		o.MaxTime = 10 * time.Second
	}
	return o
}

// LatencyStats summarise repeated timings. Median, P90 and MAD (median
// absolute deviation from the median) use every run; Mean, Min and Max
// leave out the outliers, runs further than 5 scaled MADs (5·1.4826·MAD)
// above the median, as a scheduler hiccup produces.
type LatencyStats struct {
	Runs     int           `json:"runs"`
	Median   time.Duration `json:"median_ns"`
	P90      time.Duration `json:"p90_ns"`
	MAD      time.Duration `json:"mad_ns"`
	Mean     time.Duration `json:"mean_ns"`
	Min      time.Duration `json:"min_ns"`
	Max      time.Duration `json:"max_ns"`
	Outliers int           `json:"outliers"`
}

func (s LatencyStats) String() string {
	return fmt.Sprintf("median %v p90 %v mad %v (%d runs, %d outliers)", s.Median, s.P90, s.MAD, s.Runs, s.Outliers)
}

// SummariseLatency computes LatencyStats from raw timings.
func SummariseLatency(samples []time.Duration) (LatencyStats, error) {
	if len(samples) == 0 {
		return LatencyStats{}, errors.New("latency: no samples")
	}
	s := append([]time.Duration(nil), samples...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	med := quantile(s, 0.5)
	dev := make([]time.Duration, len(s))
	for i, v := range s {
		d := v - med
		if d < 0 {
			d = -d
		}
		dev[i] = d
	}
	sort.Slice(dev, func(i, j int) bool { return dev[i] < dev[j] })
	mad := quantile(dev, 0.5)
	st := LatencyStats{Runs: len(s), Median: med, P90: quantile(s, 0.9), MAD: mad, Min: s[0]}
	limit := med + time.Duration(math.Ceil(5*1.4826*float64(mad)))
	var sum time.Duration
	n := 0
	for _, v := range s {
		if mad > 0 && v > limit {
			st.Outliers++
			continue
		}
		sum += v
		n++
		st.Max = v
	}
	st.Mean = sum / time.Duration(n)
	return st, nil
}

// quantile of sorted s with linear interpolation.
func quantile(s []time.Duration, q float64) time.Duration {
	pos := q * float64(len(s)-1)
	lo := int(math.Floor(pos))
	hi := int(math.Ceil(pos))
	frac := pos - float64(lo)
	return s[lo] + time.Duration(frac*float64(s[hi]-s[lo]))
}

// MeasureLatency runs run Warmup times untimed, then times it until both
// MinRuns and MinTime are reached (bounded by MaxRuns and MaxTime), and
// summarises the timings. timed, when it returns a positive duration, is
// the device's own timing of the run (CUDA events) and replaces the host
// clock.
func MeasureLatency(run func() (timed time.Duration, err error), opt LatencyOptions) (LatencyStats, error) {
	opt = opt.withDefaults()
	for i := 0; i < opt.Warmup; i++ {
		if _, err := run(); err != nil {
			return LatencyStats{}, fmt.Errorf("latency warm-up run %d: %w", i+1, err)
		}
	}
	samples := make([]time.Duration, 0, opt.MinRuns)
	start := time.Now()
	for len(samples) < opt.MaxRuns {
		elapsed := time.Since(start)
		if len(samples) >= opt.MinRuns && (elapsed >= opt.MinTime || elapsed >= opt.MaxTime) {
			break
		}
		t0 := time.Now()
		d, err := run()
		if err != nil {
			return LatencyStats{}, fmt.Errorf("latency run %d: %w", len(samples)+1, err)
		}
		if d <= 0 {
			d = time.Since(t0)
		}
		samples = append(samples, d)
	}
	return SummariseLatency(samples)
}

// MeasureProgram times p on the input in (Batch()·InputSize() floats),
// using the device's own timer when p has one.
func MeasureProgram(p Program, in []float32, opt LatencyOptions) (LatencyStats, error) {
	out := make([]float32, p.Batch()*p.OutputSize())
	if tp, ok := p.(TimedProgram); ok {
		return MeasureLatency(func() (time.Duration, error) { return tp.RunTimed(in, out) }, opt)
	}
	return MeasureLatency(func() (time.Duration, error) { return 0, p.Run(in, out) }, opt)
}
