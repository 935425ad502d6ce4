package search

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"hwnas/accel"
	"hwnas/nas"
	"hwnas/nas/data"
	"hwnas/store"
)

// TestMeasureGroup measures real models beside the reference on the CPU
// in both runtimes: one row per runtime, ratios over the reference's
// usual figure, figures divided by the probe's drift, and the disturbance
// rule (a reference far slower than its usual figure is measured again,
// then flagged).
func TestMeasureGroup(t *testing.T) {
	be, err := accel.Open("cpu", accel.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	ref, err := controlPlans("lenet5", nas.MNISTShape)
	if err != nil {
		t.Fatal(err)
	}
	mlp, err := referencePlan("lenet300", nas.MNISTShape)
	if err != nil {
		t.Fatal(err)
	}
	in := make([]float32, 784)
	quick := accel.RoundsOptions{Rounds: 5, BurstTime: 100 * time.Microsecond}

	// Usual figure far above what the reference takes: not disturbed.
	spec := LatencySpec{Runtimes: []string{store.RuntimeHwnas, RuntimeOnnx}, Rounds: quick,
		History: map[string][]time.Duration{store.RuntimeHwnas: {time.Second, time.Second, time.Second}}}
	g, err := measureGroup(be, []*accel.Plan{mlp}, ref, 1, 1, in, spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	if g.attempts != 1 || g.disturbed || len(g.rows) != 1 || len(g.rows[0]) != 2 || g.progs[0] == nil {
		t.Fatalf("attempts %d disturbed %v rows %d×%d", g.attempts, g.disturbed, len(g.rows), len(g.rows[0]))
	}
	hw, ort := g.rows[0][0], g.rows[0][1]
	if hw.RuntimeName() != store.RuntimeHwnas || ort.RuntimeName() != RuntimeOnnx || hw.Reference != "lenet5" {
		t.Fatalf("rows %+v / %+v", hw, ort)
	}
	// hwnas: the usual figure is the median of three seconds and this
	// measurement's reference; onnxruntime has no history: its own.
	if u := g.usual[store.RuntimeHwnas]; u != time.Second {
		t.Errorf("usual figure %v, want 1s", u)
	}
	if r := hw.Ratio.Value; math.Abs(r-float64(hw.Figure())/float64(time.Second)) > 1e-12 {
		t.Errorf("hwnas ratio %v for %v", r, hw.Figure())
	}
	if r := ort.Ratio.Value; math.Abs(r-float64(ort.Figure())/float64(ort.RefLatency)) > 1e-12 || ort.RefLatency != g.refs[RuntimeOnnx].Latency {
		t.Errorf("onnxruntime ratio %v for %v over %v", r, ort.Figure(), ort.RefLatency)
	}
	// No probe history: the probe's figure is its own usual one, the
	// figures are as measured.
	if hw.Probe <= 0 || hw.Drift != 1 || ort.Probe <= 0 || ort.Drift != 1 {
		t.Fatalf("probe %v drift %v / onnxruntime probe %v drift %v", hw.Probe, hw.Drift, ort.Probe, ort.Drift)
	}
	g.close()

	// The probe's usual figure twice what it took now: the machine ran
	// at twice its usual speed, the drift is about 1/2 and each figure is
	// the measured one over it.
	p1 := hw.Probe
	spec = LatencySpec{Rounds: quick, ProbeHistory: map[string][]time.Duration{store.RuntimeHwnas: {2 * p1, 2 * p1, 2 * p1}}}
	g, err = measureGroup(be, []*accel.Plan{mlp}, ref, 1, 1, in, spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	hw2 := g.rows[0][0]
	if want := float64(hw2.Probe) / float64(2*p1); hw2.Drift != want {
		t.Errorf("drift %v, want the probe's %v over its usual %v = %v", hw2.Drift, hw2.Probe, 2*p1, want)
	}
	// The figure as measured is a low quantile of the rounds' floors, so
	// not below the fastest run, which stays as measured. (Comparing
	// the figure with the first measurement's is a timing test: the
	// probe and the model do not slow down together on a shared machine;
	// TestDriftCorrected checks the arithmetic.)
	if raw := float64(hw2.Figure()) * hw2.Drift; raw < float64(hw2.Stats.Min)*(1-1e-6) {
		t.Errorf("figure %v at drift %.3f is %v as measured, below the fastest run %v", hw2.Figure(), hw2.Drift, time.Duration(raw), hw2.Stats.Min)
	}
	if hw2.Stats.Low > hw2.Figure() || hw2.Stats.High < hw2.Figure() {
		t.Errorf("the interval [%v, %v] does not hold the figure %v", hw2.Stats.Low, hw2.Stats.High, hw2.Figure())
	}
	g.close()

	// Usual figure far below: every attempt is disturbed, the rows are
	// flagged.
	spec = LatencySpec{Rounds: quick, Attempts: 2, History: map[string][]time.Duration{store.RuntimeHwnas: {time.Microsecond, time.Microsecond, time.Microsecond}}}
	g, err = measureGroup(be, []*accel.Plan{mlp}, ref, 1, 1, in, spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer g.close()
	if g.attempts != 2 || !g.disturbed || !g.rows[0][0].Disturbed || len(g.rows[0]) != 1 {
		t.Fatalf("attempts %d disturbed %v rows %+v", g.attempts, g.disturbed, g.rows[0])
	}
	// A model of another input size is refused.
	if _, err := measureGroup(be, []*accel.Plan{twoOpPlan(false)}, ref, 1, 1, in, LatencySpec{Rounds: quick}, nil); err == nil {
		t.Error("a model of 64 inputs measured on 784")
	}
}

// TestDriftCorrected: the figure and its interval are divided by the
// drift; the statistics of the runs stay as measured.
func TestDriftCorrected(t *testing.T) {
	st := accel.LatencyStats{Latency: 30 * time.Microsecond, Low: 28 * time.Microsecond, High: 36 * time.Microsecond,
		Median: 33 * time.Microsecond, Min: 27 * time.Microsecond, Max: 40 * time.Microsecond, Runs: 41, Rounds: 5}
	got := driftCorrected(st, 0.5)
	want := st
	want.Latency, want.Low, want.High = 60*time.Microsecond, 56*time.Microsecond, 72*time.Microsecond
	if got != want {
		t.Errorf("at drift 0.5: %+v, want %+v", got, want)
	}
	if got := driftCorrected(st, 1); got != st {
		t.Errorf("at drift 1: %+v, want it unchanged", got)
	}
	got = driftCorrected(st, 1.2)
	if got.Latency != 25*time.Microsecond || got.High != 30*time.Microsecond || got.Min != st.Min {
		t.Errorf("at drift 1.2: %+v", got)
	}
}

// TestGroupShift: the median slowdown against the trials' earlier
// undisturbed figures on the device, only with five of them; other
// devices, batches, runtimes and disturbed rows do not count.
func TestGroupShift(t *testing.T) {
	be, err := accel.Open("cpu", accel.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	dev := be.Device()
	row := func(fig time.Duration) store.Latency {
		return store.Latency{Device: dev, Batch: 1, Stats: accel.LatencyStats{Latency: fig, Rounds: 41}}
	}
	m := &measurer{be: be, batch: 1, rt: store.RuntimeHwnas}
	var trials []store.Trial
	g := &groupResult{}
	for i, slow := range []float64{0.10, 0.12, 0.08, 0.2, 0.0, 0.5} {
		tr := store.Trial{Number: i, Latencies: []store.Latency{row(10 * time.Microsecond)}}
		if i == 5 { // another batch: no earlier figure here
			tr.Latencies[0].Batch = 2
		}
		trials = append(trials, tr)
		g.rows = append(g.rows, []store.Latency{row(time.Duration(float64(10*time.Microsecond) * (1 + slow)))})
	}
	idx := []int{0, 1, 2, 3, 4, 5}
	if s, ok := m.groupShift(trials, idx, g); !ok || math.Abs(s-0.10) > 1e-9 {
		t.Fatalf("shift %v %v, want 0.10 (median of 0.10 0.12 0.08 0.2 0)", s, ok)
	}
	trials[4].Latencies[0].Disturbed = true
	if _, ok := m.groupShift(trials, idx, g); ok {
		t.Fatal("four earlier figures made a shift")
	}
}

// TestSkipPredictedOverBudget: a candidate the device's table predicts
// far above the budget is failed as skipped before training, with the
// prediction and the budget in the reason; under the limit it is trained.
func TestSkipPredictedOverBudget(t *testing.T) {
	spec := tinySpec(t, 0)
	spec.Data = miniMNIST(t)
	m, err := nas.NewModel(spec.Arch, spec.Seed)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := nas.Lower(m)
	if err != nil {
		t.Fatal(err)
	}
	spec.OpTable = map[string]float64{}
	for i := range plan.Ops {
		spec.OpTable[OpKey(plan, &plan.Ops[i])] = 10000 // 10 µs an op
	}
	ns, _ := PredictLatency(spec.OpTable, plan)
	spec.Skip = &SkipRule{Over: 2, BudgetNs: int64(ns / 4), Record: "test"}
	_, err = EvaluateTrial(context.Background(), spec, false)
	var te *TrialError
	if !errors.As(err, &te) || te.Reason != FailSkipped || !strings.Contains(te.Error(), "above the skip limit of 2×") {
		t.Fatalf("predicted at 4× the budget: %v", err)
	}
	// Relative budget: the limit is Over × ratio × the reference's figure.
	spec.Skip = &SkipRule{Over: 2, BudgetRatio: 0.5, RefNs: int64(ns), Record: "test"}
	d, err := data.Load(spec.Data, spec.DataOptions)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkSkip(context.Background(), spec, d.Train, d.Val); err != nil {
		t.Fatalf("predicted at 1× the reference, limit 2 × 0.5×: %v", err)
	}
}
