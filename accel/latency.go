package accel

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
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
//
// Latency is the figure every ranking, reward and prediction uses, and
// Low and High bound it (a distribution-free 95% confidence interval).
// Measured run after run (MeasureLatency) it is the median of the runs.
// Measured in interleaved rounds (MeasureRounds, Rounds set) it is a low
// quantile of the per-round floors (each round's fastest run): the time
// of a run nothing interfered with, which is what a dedicated device
// gives and what a shared machine still shows in some of its rounds;
// Median, P90, MAD, Mean and Max then describe the per-round medians
// (the typical run under the load of the moment) and Min the fastest run.
type LatencyStats struct {
	Latency  time.Duration `json:"latency_ns"`
	Runs     int           `json:"runs"`
	Median   time.Duration `json:"median_ns"`
	P90      time.Duration `json:"p90_ns"`
	MAD      time.Duration `json:"mad_ns"`
	Mean     time.Duration `json:"mean_ns"`
	Min      time.Duration `json:"min_ns"`
	Max      time.Duration `json:"max_ns"`
	Outliers int           `json:"outliers"`
	Rounds   int           `json:"rounds,omitempty"`
	Low      time.Duration `json:"ci_low_ns,omitempty"`
	High     time.Duration `json:"ci_high_ns,omitempty"`
}

func (s LatencyStats) String() string {
	if s.Rounds > 0 {
		return fmt.Sprintf("latency %v [%v, %v], median %v (%d rounds, %d runs)", s.Latency, s.Low, s.High, s.Median, s.Rounds, s.Runs)
	}
	return fmt.Sprintf("median %v p90 %v mad %v (%d runs, %d outliers)", s.Median, s.P90, s.MAD, s.Runs, s.Outliers)
}

// Figure is Latency, or Median for statistics recorded before Latency
// existed.
func (s LatencyStats) Figure() time.Duration {
	if s.Latency > 0 {
		return s.Latency
	}
	return s.Median
}

// Spread is the relative width of the figure's interval, (High−Low)/figure
// (0 without an interval).
func (s LatencyStats) Spread() float64 {
	if f := s.Figure(); f > 0 && s.High > s.Low {
		return float64(s.High-s.Low) / float64(f)
	}
	return 0
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
	lo, hi := QuantileCI(len(s), 0.5)
	st.Latency, st.Low, st.High = med, s[lo], s[hi]
	return st, nil
}

// QuantileCI returns the indexes (0-based, into n sorted samples) of the
// order statistics that bound the q-quantile with at least 95%
// confidence whatever the distribution: the number of samples below the
// true quantile is Binomial(n, q), so [X(l), X(u)] covers it with
// probability P(l ≤ B < u) for B ~ Binomial(n, q). The interval is
// widened from the middle until that probability reaches 0.95, or spans
// every sample when n is too small for it.
func QuantileCI(n int, q float64) (lo, hi int) {
	if n <= 0 {
		return 0, 0
	}
	pmf := make([]float64, n+1) // P(B = i)
	logq, logp := math.Log(q), math.Log1p(-q)
	for i := 0; i <= n; i++ {
		lg1, _ := math.Lgamma(float64(n + 1))
		lg2, _ := math.Lgamma(float64(i + 1))
		lg3, _ := math.Lgamma(float64(n - i + 1))
		pmf[i] = math.Exp(lg1 - lg2 - lg3 + float64(i)*logq + float64(n-i)*logp)
	}
	// X(l+1) … X(u+1) in 1-based order statistics: covered when
	// l+1 ≤ B ≤ u, i.e. B in [lo+1, hi] for 0-based lo, hi.
	lo = min(max(int(math.Floor(q*float64(n)))-1, 0), n-1)
	hi = min(lo+1, n-1)
	cover := func() float64 {
		c := 0.0
		for i := lo + 1; i <= hi; i++ {
			c += pmf[i]
		}
		return c
	}
	for cover() < 0.95 && (lo > 0 || hi < n-1) {
		// Widen on the side that adds more probability.
		var addLo, addHi float64 = -1, -1
		if lo > 0 {
			addLo = pmf[lo]
		}
		if hi < n-1 {
			addHi = pmf[hi+1]
		}
		if addLo >= addHi {
			lo--
		} else {
			hi++
		}
	}
	return lo, hi
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

// Subject is one program MeasureRounds times: Run runs it once and returns
// the device's own timing of the run, or 0 to be timed by the host clock.
type Subject struct {
	Name string
	Run  func() (time.Duration, error)
}

// ProgramSubject times p on in (Batch()·InputSize() floats), with the
// device's own timer when p has one.
func ProgramSubject(name string, p Program, in []float32) Subject {
	out := make([]float32, p.Batch()*p.OutputSize())
	if tp, ok := p.(TimedProgram); ok {
		return Subject{name, func() (time.Duration, error) { return tp.RunTimed(in, out) }}
	}
	return Subject{name, func() (time.Duration, error) { return 0, p.Run(in, out) }}
}

// PinMode says how MeasureRounds pins the measuring thread (PinThread).
type PinMode string

const (
	// PinBurst binds the thread to its core for each burst and lets the
	// scheduler move it between bursts (the default): a burst is never
	// split across cores, and a core taken by another process is left at
	// the next burst.
	PinBurst PinMode = ""
	// PinAll binds it to one core for the whole measurement.
	PinAll PinMode = "all"
	// PinNone never binds it.
	PinNone PinMode = "none"
)

// RoundsOptions control MeasureRounds. Zero fields take the defaults
// noted.
type RoundsOptions struct {
	// Rounds of the interleaving (default 81). In each round every
	// subject runs one burst, in an order shuffled per round.
	Rounds int
	// BurstTime is about how long one burst of timed runs lasts (default
	// 1ms): a subject gets BurstTime/(its time) runs, at least MinBurst
	// (default 5) and at most MaxBurst (default 2000).
	BurstTime          time.Duration
	MinBurst, MaxBurst int
	// Warmup untimed runs open each burst (default 2): the other subjects
	// of the round have just evicted this one's weights from the caches.
	Warmup int
	// Quantile of the per-round floors that is the figure (default 0.02:
	// between the second and third fastest of 81 floors).
	Quantile float64
	Pin      PinMode
	// Seed of the per-round order and of the ratios' bootstrap.
	Seed uint64
	// OnBurst, when set, sees every burst's timed runs (the slice is
	// reused: copy what is kept).
	OnBurst func(subject, round int, runs []time.Duration) `json:"-"`
}

func (o RoundsOptions) withDefaults() RoundsOptions {
	if o.Rounds <= 0 {
		o.Rounds = 81
	}
	if o.BurstTime <= 0 {
		o.BurstTime = time.Millisecond
	}
	if o.MinBurst <= 0 {
		o.MinBurst = 5
	}
	if o.MaxBurst <= 0 {
		o.MaxBurst = 2000
	}
	if o.MaxBurst < o.MinBurst {
		o.MaxBurst = o.MinBurst
	}
	if o.Warmup == 0 {
		o.Warmup = 2
	}
	if o.Quantile <= 0 || o.Quantile >= 1 {
		o.Quantile = 0.02
	}
	return o
}

// Ratio is a latency figure over a reference model's, with the interval
// of the figure carried over.
type Ratio struct {
	Value float64 `json:"value"`
	Low   float64 `json:"low"`
	High  float64 `json:"high"`
}

// RoundsResult is what MeasureRounds found.
type RoundsResult struct {
	// Stats per subject (see LatencyStats for rounds).
	Stats []LatencyStats `json:"stats"`
	// Floors[s][r] and Medians[s][r] are subject s's fastest and median
	// run in round r.
	Floors  [][]time.Duration `json:"floors_ns"`
	Medians [][]time.Duration `json:"medians_ns"`
	// Bursts[s] is subject s's timed runs per burst.
	Bursts []int `json:"bursts"`
	// Core is the core a PinAll measurement ran on (−1 otherwise).
	Core int `json:"core"`
}

// MeanStats averages statistics field by field (the figure of a model
// measured as several separately compiled copies).
func MeanStats(ss []LatencyStats) LatencyStats {
	var m LatencyStats
	if len(ss) == 0 {
		return m
	}
	n := time.Duration(len(ss))
	for _, s := range ss {
		m.Latency += s.Latency
		m.Low += s.Low
		m.High += s.High
		m.Median += s.Median
		m.P90 += s.P90
		m.MAD += s.MAD
		m.Mean += s.Mean
		m.Max += s.Max
		m.Runs += s.Runs
		m.Outliers += s.Outliers
		m.Min = min(m.Min, s.Min)
		if m.Min == 0 {
			m.Min = s.Min
		}
	}
	m.Latency, m.Low, m.High, m.Median, m.P90, m.MAD, m.Mean, m.Max = m.Latency/n, m.Low/n, m.High/n, m.Median/n, m.P90/n, m.MAD/n, m.Mean/n, m.Max/n
	m.Rounds = ss[0].Rounds
	return m
}

// MeasureRounds times the subjects interleaved: round after round, each
// subject runs a burst (Warmup untimed runs, then about BurstTime of timed
// runs) in an order shuffled per round, and keeps the burst's fastest run
// (its floor) and median. A subject's figure is a low quantile (Quantile)
// of its floors over the rounds.
//
// Why floors and a low quantile: on a shared machine a run is slowed by
// whatever shares the core, its caches or its memory bandwidth at that
// moment — a run is never sped up by it — and on the 2-core development
// VM whole milliseconds ran at half speed while a neighbour was busy. The
// fastest run of a burst is the run least disturbed within that
// millisecond, and a low quantile over the rounds keeps the rounds in
// which the machine was least disturbed, without resting on a single
// lucky one (the minimum). Interleaving makes drift (another process's
// load coming and going, the clock) hit every subject in the same rounds.
// Load on a shared machine comes and goes over seconds: measured on the
// 2-core development VM at load 11–13, 50 models measured four times 20
// seconds apart kept 48–50 of 50 figures within ±5% with the 0.02
// quantile of 81 floors, 22–50 with the 0.1 quantile of 41 and 7–49 with
// the median (docs/LATENCY.md).
func MeasureRounds(subjects []Subject, opt RoundsOptions) (RoundsResult, error) {
	opt = opt.withDefaults()
	n := len(subjects)
	res := RoundsResult{Core: -1}
	if n == 0 {
		return res, errors.New("latency: no subjects")
	}
	if opt.Pin == PinAll {
		core, unpin := PinThread()
		defer unpin()
		res.Core = core
	}
	// Calibrate each subject's burst from a few runs.
	res.Bursts = make([]int, n)
	for i, s := range subjects {
		var times []time.Duration
		for r := 0; r < opt.Warmup+3; r++ {
			d, err := timeRun(s.Run)
			if err != nil {
				return res, fmt.Errorf("latency: %s: warm-up: %w", s.Name, err)
			}
			times = append(times, d)
		}
		t := max(medianOf(times[opt.Warmup:]), time.Nanosecond)
		res.Bursts[i] = min(max(int(opt.BurstTime/t), opt.MinBurst), opt.MaxBurst)
	}
	res.Floors = make([][]time.Duration, n)
	res.Medians = make([][]time.Duration, n)
	runs := make([]int, n)
	buf := make([]time.Duration, opt.MaxBurst)
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	rng := rand.New(rand.NewPCG(opt.Seed, 0x9e3779b97f4a7c15))
	for r := 0; r < opt.Rounds; r++ {
		rng.Shuffle(n, func(i, j int) { order[i], order[j] = order[j], order[i] })
		for _, i := range order {
			s := subjects[i]
			for w := 0; w < opt.Warmup; w++ {
				if _, err := s.Run(); err != nil {
					return res, fmt.Errorf("latency: %s: round %d: %w", s.Name, r+1, err)
				}
			}
			b := buf[:res.Bursts[i]]
			if err := burst(s, b, opt.Pin == PinBurst); err != nil {
				return res, fmt.Errorf("latency: %s: round %d: %w", s.Name, r+1, err)
			}
			runs[i] += len(b)
			if opt.OnBurst != nil {
				opt.OnBurst(i, r, b)
			}
			med := medianOf(b) // sorts b
			res.Floors[i] = append(res.Floors[i], b[0])
			res.Medians[i] = append(res.Medians[i], med)
		}
	}
	res.Stats = make([]LatencyStats, n)
	for i := range subjects {
		st, err := SummariseLatency(res.Medians[i])
		if err != nil {
			return res, err
		}
		f := sortedCopy(res.Floors[i])
		lo, hi := QuantileCI(len(f), opt.Quantile)
		st.Latency, st.Low, st.High, st.Min = quantile(f, opt.Quantile), f[lo], f[hi], f[0]
		st.Rounds, st.Runs = opt.Rounds, runs[i]
		res.Stats[i] = st
	}
	return res, nil
}

// burst fills b with timed runs of s, pinned to one core when pin.
func burst(s Subject, b []time.Duration, pin bool) error {
	if pin {
		_, unpin := PinThread()
		defer unpin()
	}
	for k := range b {
		d, err := timeRun(s.Run)
		if err != nil {
			return err
		}
		b[k] = d
	}
	return nil
}

// timeRun runs run once and returns its device time, or the host clock's.
func timeRun(run func() (time.Duration, error)) (time.Duration, error) {
	t0 := time.Now()
	d, err := run()
	if d <= 0 {
		d = time.Since(t0)
	}
	return d, err
}

// medianOf sorts s in place and returns its median.
func medianOf(s []time.Duration) time.Duration {
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return quantile(s, 0.5)
}

func sortedCopy(s []time.Duration) []time.Duration {
	c := append([]time.Duration(nil), s...)
	sort.Slice(c, func(i, j int) bool { return c[i] < c[j] })
	return c
}
