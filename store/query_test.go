package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"hwnas/accel"
)

// point builds a Result for Pareto's pure tests.
func point(id int64, acc float64, latency time.Duration, bytes int64) Result {
	r := Result{TrialID: id, Accuracy: acc}
	r.Latency.Stats.Median = latency
	r.Metrics.CompressedBytes = bytes
	return r
}

func ids(rs []Result) []int64 {
	out := make([]int64, len(rs))
	for i, r := range rs {
		out[i] = r.TrialID
	}
	return out
}

func TestPareto(t *testing.T) {
	us := time.Microsecond
	tests := []struct {
		name string
		in   []Result
		want []int64 // by latency ascending
	}{
		{"empty", nil, []int64{}},
		{"one", []Result{point(1, 0.9, 10*us, 100)}, []int64{1}},
		{"chain: each beaten on all three", []Result{
			point(1, 0.99, 10*us, 100), point(2, 0.98, 11*us, 101), point(3, 0.97, 12*us, 102)}, []int64{1}},
		{"trade-offs all kept", []Result{
			point(1, 0.99, 30*us, 100), point(2, 0.98, 20*us, 100), point(3, 0.97, 10*us, 100)}, []int64{3, 2, 1}},
		{"bytes is a third axis", []Result{
			point(1, 0.99, 10*us, 500), point(2, 0.99, 10*us, 400), point(3, 0.98, 10*us, 100)}, []int64{2, 3}},
		{"equal points both kept", []Result{
			point(1, 0.95, 10*us, 100), point(2, 0.95, 10*us, 100)}, []int64{1, 2}},
		{"weakly dominated dropped", []Result{
			point(1, 0.95, 10*us, 100), point(2, 0.95, 10*us, 101), point(3, 0.95, 9*us, 100)}, []int64{3}},
		{"mixed", []Result{
			point(1, 0.992, 80*us, 9000),  // best accuracy
			point(2, 0.990, 40*us, 6000),  // front
			point(3, 0.985, 45*us, 7000),  // dominated by 2
			point(4, 0.970, 12*us, 3000),  // front
			point(5, 0.960, 12*us, 2500),  // front: fewer bytes than 4
			point(6, 0.950, 15*us, 2500),  // dominated by 5
			point(7, 0.991, 90*us, 20000), // dominated by 1
		}, []int64{4, 5, 2, 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ids(Pareto(tc.in))
			if !slices.Equal(got, tc.want) {
				t.Fatalf("front %v, want %v", got, tc.want)
			}
		})
	}
}

func TestBestAndParetoFront(t *testing.T) {
	eachStore(t, func(t *testing.T, d *DB) {
		cpu := testDevice("Test CPU", "cpu", 2)
		cpu2 := testDevice("Another CPU", "cpu", 8)
		s1, _ := d.CreateStudy(ctx, Study{Name: "one", DeviceSpec: "cpu", DeviceName: cpu.Name, DeviceFingerprint: cpu.Fingerprint})
		s2, _ := d.CreateStudy(ctx, Study{Name: "two", DeviceSpec: "cpu", DeviceName: cpu.Name, DeviceFingerprint: cpu.Fingerprint})
		us := time.Microsecond
		a := addDone(t, d, s1.ID, cpu, 0.992, 9000, 80*us)
		b := addDone(t, d, s1.ID, cpu, 0.990, 6000, 40*us)
		c := addDone(t, d, s1.ID, cpu, 0.985, 7000, 45*us) // dominated by b
		e := addDone(t, d, s1.ID, cpu, 0.970, 3000, 12*us)
		f := addDone(t, d, s2.ID, cpu, 0.995, 50000, 200*us)
		g := addDone(t, d, s2.ID, cpu2, 0.999, 1000, 5*us) // on the other CPU only
		// A failed and a pending trial never show.
		p, _ := d.AddTrial(ctx, s1.ID, TrialSpec{})
		d.StartTrial(ctx, p.ID, "w")
		d.FailTrial(ctx, p.ID, "crash")
		d.AddTrial(ctx, s1.ID, TrialSpec{})
		// b also measured at batch 64: batch 1 is what Best compares by default.
		if err := d.PutLatency(ctx, b.ID, lat(cpu, 64, 3*time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		if err := d.PutLatency(ctx, p.ID, lat(cpu, 1, us)); err == nil {
			t.Fatal("PutLatency on a failed trial accepted")
		}

		tests := []struct {
			name string
			q    Query
			want []int64
		}{
			{"by name, all", Query{Device: "Test CPU"}, []int64{f.ID, a.ID, b.ID, c.ID, e.ID}},
			{"name any case", Query{Device: "test cpu", N: 2}, []int64{f.ID, a.ID}},
			{"fingerprint", Query{Device: cpu2.Fingerprint}, []int64{g.ID}},
			{"backend matches both CPUs", Query{Device: "cpu", N: 3}, []int64{g.ID, f.ID, a.ID}},
			{"max latency", Query{Device: "Test CPU", MaxLatency: 45 * us}, []int64{b.ID, c.ID, e.ID}},
			{"min accuracy", Query{Device: "Test CPU", MinAccuracy: 0.99}, []int64{f.ID, a.ID, b.ID}},
			{"max bytes", Query{Device: "Test CPU", MaxBytes: 7000}, []int64{b.ID, c.ID, e.ID}},
			{"all bounds", Query{Device: "Test CPU", MaxLatency: 100 * us, MinAccuracy: 0.98, MaxBytes: 8000}, []int64{b.ID, c.ID}},
			{"study", Query{Device: "Test CPU", Study: "two"}, []int64{f.ID}},
			{"batch 64", Query{Device: "Test CPU", Batch: 64}, []int64{b.ID}},
			{"by test accuracy", Query{Device: "Test CPU", By: ByTest, MinAccuracy: 0.9895}, []int64{f.ID, a.ID}},
			{"nothing fits", Query{Device: "Test CPU", MaxLatency: us}, []int64{}},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				rs, err := d.Best(ctx, tc.q)
				if err != nil {
					t.Fatal(err)
				}
				if got := ids(rs); !slices.Equal(got, tc.want) {
					t.Fatalf("Best = %v, want %v", got, tc.want)
				}
				for _, r := range rs {
					if r.Latency.Stats.Median == 0 || r.Latency.Device.Fingerprint == "" || r.Metrics.CompressedBytes == 0 || r.Study == "" || string(r.Arch) != `{"n":1}` {
						t.Errorf("incomplete result %+v", r)
					}
				}
			})
		}
		// The fields of one result, exactly.
		rs, _ := d.Best(ctx, Query{Device: "Test CPU", N: 1, By: ByTest})
		if r := rs[0]; r.TrialID != f.ID || r.Study != "two" || r.Number != 0 || r.Accuracy != 0.994 || !r.Metrics.HasTest ||
			r.Metrics.ValAccuracy != 0.995 || r.Latency.Stats.Median != 200*us || r.Latency.Batch != 1 || r.Latency.Device.Name != "Test CPU" {
			t.Errorf("result %+v", r)
		}

		if _, err := d.Best(ctx, Query{Device: "TPU v9"}); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), `cpu "Test CPU" (`+cpu.Fingerprint+`)`) {
			t.Fatalf("unknown device: err = %v", err)
		}
		if _, err := d.Best(ctx, Query{Device: "cpu", Study: "nope"}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown study: err = %v", err)
		}
		if _, err := d.Best(ctx, Query{Device: "cpu", By: "train"}); err == nil {
			t.Fatal("unknown metric accepted")
		}

		front, err := d.ParetoFront(ctx, "one", "", 1, "", ByValidation)
		if err != nil {
			t.Fatal(err)
		}
		if got := ids(front); !slices.Equal(got, []int64{e.ID, b.ID, a.ID}) {
			t.Fatalf("ParetoFront(one) = %v, want %v", got, []int64{e.ID, b.ID, a.ID})
		}
		if _, err := d.ParetoFront(ctx, "two", "cpu", 1, "", ByValidation); err == nil || !strings.Contains(err.Error(), "matches 2 devices") {
			t.Fatalf("ambiguous device: err = %v", err)
		}
		if front, err := d.ParetoFront(ctx, "two", "another cpu", 1, "", ""); err != nil || !slices.Equal(ids(front), []int64{g.ID}) {
			t.Fatalf("ParetoFront(two, another cpu) = %v, %v", ids(front), err)
		}
		if _, err := d.ParetoFront(ctx, "three", "", 1, "", ""); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown study: err = %v", err)
		}
	})
}

func TestCheckpointsAndOpTable(t *testing.T) {
	eachStore(t, func(t *testing.T, d *DB) {
		s, _ := d.CreateStudy(ctx, Study{Name: "s"})
		if _, err := d.LatestCheckpoint(ctx, s.ID); !errors.Is(err, ErrNotFound) {
			t.Fatalf("no checkpoint: err = %v", err)
		}
		for step := range 6 {
			if err := d.SaveCheckpoint(ctx, s.ID, step, []byte(fmt.Sprintf("state %d", step))); err != nil {
				t.Fatal(err)
			}
		}
		c, err := d.LatestCheckpoint(ctx, s.ID)
		if err != nil || c.Step != 5 || string(c.Blob) != "state 5" || c.Created.IsZero() {
			t.Fatalf("latest = %+v, %v", c, err)
		}
		var n int
		d.db.QueryRow(`SELECT count(*) FROM checkpoints`).Scan(&n)
		if n != KeepCheckpoints {
			t.Fatalf("%d checkpoints kept, want %d", n, KeepCheckpoints)
		}

		cpu := testDevice("Test CPU", "cpu", 2)
		if err := d.PutOpLatencies(ctx, cpu, map[string]time.Duration{"conv 1x28x28 k5 o20": 30 * time.Microsecond, "fc 800x500": 12 * time.Microsecond}); err != nil {
			t.Fatal(err)
		}
		if err := d.PutOpLatency(ctx, cpu, "fc 800x500", 11*time.Microsecond); err != nil {
			t.Fatal(err)
		}
		table, err := d.OpLatencies(ctx, cpu.Fingerprint)
		if err != nil || len(table) != 2 || table["fc 800x500"] != 11*time.Microsecond || table["conv 1x28x28 k5 o20"] != 30*time.Microsecond {
			t.Fatalf("op table %v, %v", table, err)
		}
		if other, _ := d.OpLatencies(ctx, "ffffffffffff"); len(other) != 0 {
			t.Fatalf("unknown device has %d entries", len(other))
		}
		devs, err := d.Devices(ctx)
		if err != nil || len(devs) != 1 || devs[0].Fingerprint != cpu.Fingerprint || devs[0].Cores != 2 || !slices.Equal(devs[0].Features, []string{"avx2"}) {
			t.Fatalf("devices %+v, %v", devs, err)
		}
		if err := d.PutOpLatency(ctx, testDevice("", "cpu", 1), "x", 1); err == nil {
			t.Fatal("device without a name accepted")
		}
	})
}

// roundsLat is a latency measured in interleaved rounds beside lenet5:
// figure fig, the reference at ref.
func roundsLat(dev accel.Device, fig, ref time.Duration) Latency {
	l := lat(dev, 1, fig+fig/5) // the median of the rounds above the figure
	l.Stats.Latency, l.Stats.Low, l.Stats.High, l.Stats.Rounds = fig, fig-fig/50, fig+fig/20, 41
	l.Reference, l.RefLatency = "lenet5", ref
	l.Ratio = &accel.Ratio{Value: float64(fig) / float64(ref), Low: float64(fig-fig/50) / float64(ref), High: float64(fig+fig/20) / float64(ref)}
	return l
}

// sameLatency compares everything a latency row stores.
func sameLatency(a, b Latency) bool {
	ra, rb := accel.Ratio{}, accel.Ratio{}
	if a.Ratio != nil {
		ra = *a.Ratio
	}
	if b.Ratio != nil {
		rb = *b.Ratio
	}
	return a.Device.Fingerprint == b.Device.Fingerprint && a.Batch == b.Batch && a.RuntimeName() == b.RuntimeName() &&
		a.Stats == b.Stats && a.Predicted == b.Predicted && a.Reference == b.Reference && a.RefLatency == b.RefLatency &&
		ra == rb && a.Disturbed == b.Disturbed && a.Probe == b.Probe && a.DriftFactor() == b.DriftFactor()
}

// TestLatencyFigures: a latency measured in rounds keeps its figure,
// interval, reference and ratio; rankings and bounds use the figure, not
// the median; each runtime has its own row; the reference's history and
// the predictor's record come back newest first.
func TestLatencyFigures(t *testing.T) {
	eachStore(t, func(t *testing.T, d *DB) {
		s := newStudy(t, d, "figs")
		dev := testDevice("Test CPU", "cpu", 1)
		a := addDone(t, d, s.ID, dev, 0.9, 100, 10*time.Microsecond)
		b := addDone(t, d, s.ID, dev, 0.9, 100, 10*time.Microsecond)
		// a's figure is lower, its median higher: a ranks first.
		la := roundsLat(dev, 8*time.Microsecond, 40*time.Microsecond)
		la.Stats.Median = 30 * time.Microsecond
		la.Probe, la.Drift = 11*time.Microsecond, 0.95
		lb := roundsLat(dev, 9*time.Microsecond, 41*time.Microsecond)
		lb.Disturbed = true
		lo := roundsLat(dev, 5*time.Microsecond, 20*time.Microsecond)
		lo.Runtime = "onnxruntime"
		for _, x := range []struct {
			id int64
			l  Latency
		}{{a.ID, la}, {b.ID, lb}, {a.ID, lo}} {
			if err := d.PutLatency(ctx, x.id, x.l); err != nil {
				t.Fatal(err)
			}
			time.Sleep(2 * time.Millisecond) // distinct measured_at
		}
		got, err := d.GetTrial(ctx, a.ID)
		if err != nil || len(got.Latencies) != 2 || !sameLatency(got.Latencies[0], la) || !sameLatency(got.Latencies[1], lo) {
			t.Fatalf("trial a's latencies %+v %v", got.Latencies, err)
		}
		rs, err := d.Best(ctx, Query{Device: dev.Fingerprint})
		if err != nil || len(rs) != 2 || rs[0].TrialID != a.ID || !rs[1].Latency.Disturbed {
			t.Fatalf("best %+v %v", rs, err)
		}
		if rs, _ := d.Best(ctx, Query{Device: dev.Fingerprint, MaxLatency: 8500 * time.Nanosecond}); len(rs) != 1 || rs[0].TrialID != a.ID {
			t.Fatalf("bounded by the figure: %+v", rs)
		}
		if rs, _ := d.Best(ctx, Query{Device: dev.Fingerprint, Runtime: "onnxruntime"}); len(rs) != 1 || rs[0].Latency.Figure() != 5*time.Microsecond {
			t.Fatalf("onnxruntime: %+v", rs)
		}
		if rs, _, err := d.StudyResults(ctx, "figs", dev.Fingerprint, 1, "onnxruntime", ByValidation); err != nil || len(rs) != 1 {
			t.Fatalf("study results in onnxruntime: %+v %v", rs, err)
		}
		h, err := d.ReferenceHistory(ctx, dev.Fingerprint, 1, "", "lenet5", 10)
		if err != nil || len(h) != 2 || h[0] != 41*time.Microsecond || h[1] != 40*time.Microsecond {
			t.Fatalf("reference history %v %v", h, err)
		}
		if h, _ := d.ReferenceHistory(ctx, dev.Fingerprint, 1, "onnxruntime", "lenet5", 10); len(h) != 1 || h[0] != 20*time.Microsecond {
			t.Fatalf("onnxruntime reference history %v", h)
		}
		// The probe's figure keeps its own history; rows without one add
		// nothing to it.
		if h, err := d.ReferenceHistory(ctx, dev.Fingerprint, 1, "", ProbeModel, 10); err != nil || !slices.Equal(h, []time.Duration{11 * time.Microsecond}) {
			t.Fatalf("probe history %v %v", h, err)
		}
		if got.Latencies[0].Drift != 0.95 || got.Latencies[1].Drift != 1 {
			t.Fatalf("drift read back %v, %v; want 0.95 and 1", got.Latencies[0].Drift, got.Latencies[1].Drift)
		}
		pred, meas, err := d.RecentPredictions(ctx, dev.Fingerprint, 1, 10)
		if err != nil || len(pred) != 2 || meas[0] != 9*time.Microsecond || pred[0] != lb.Predicted {
			t.Fatalf("recent predictions %v %v %v", pred, meas, err)
		}
		// A later measurement replaces both trials' rows (one reference
		// figure for the two): the earlier figures stay in the history.
		time.Sleep(2 * time.Millisecond)
		for _, id := range []int64{a.ID, b.ID} {
			if err := d.PutLatency(ctx, id, roundsLat(dev, 7*time.Microsecond, 45*time.Microsecond)); err != nil {
				t.Fatal(err)
			}
		}
		if h, err := d.ReferenceHistory(ctx, dev.Fingerprint, 1, "", "lenet5", 10); err != nil || !slices.Equal(h, []time.Duration{45 * time.Microsecond, 41 * time.Microsecond, 40 * time.Microsecond}) {
			t.Fatalf("reference history after a second measurement %v %v", h, err)
		}
		// Per-op times stored with a latency come back by study, oldest
		// first, the latest n; rows without them are left out.
		time.Sleep(2 * time.Millisecond)
		withOps := roundsLat(dev, 6*time.Microsecond, 45*time.Microsecond)
		withOps.Ops = json.RawMessage(`[{"key":"conv","ns":6000}]`)
		if err := d.PutLatency(ctx, b.ID, withOps); err != nil {
			t.Fatal(err)
		}
		ops, err := d.StudyOpTimes(ctx, s.ID, dev.Fingerprint, 1, 10)
		if err != nil || len(ops) != 1 || ops[0].Number != b.Number || ops[0].Figure != 6*time.Microsecond || string(ops[0].Ops) != string(withOps.Ops) {
			t.Fatalf("study op times %+v %v", ops, err)
		}
		if ops, _ := d.StudyOpTimes(ctx, s.ID, dev.Fingerprint, 1, 0); len(ops) != 0 {
			t.Fatalf("the latest 0: %+v", ops)
		}
		// The predictor's sweep runs come back by device, batch and
		// space (every space for ""), oldest first, numbered −1.
		for i, sp := range []string{"space-a", "space-b", "space-a"} {
			time.Sleep(2 * time.Millisecond)
			if err := d.PutSweepRun(ctx, dev, 1, sp, time.Duration(i+1)*time.Microsecond, json.RawMessage(`[{"key":"conv","ns":1000}]`)); err != nil {
				t.Fatal(err)
			}
		}
		if err := d.PutSweepRun(ctx, dev, 1, "space-a", 0, json.RawMessage(`[]`)); err == nil {
			t.Fatal("a sweep run without a figure was stored")
		}
		sw, err := d.SweepRuns(ctx, dev.Fingerprint, 1, "space-a")
		if err != nil || len(sw) != 2 || sw[0].Figure != time.Microsecond || sw[1].Figure != 3*time.Microsecond || sw[0].Number != -1 {
			t.Fatalf("sweep runs of space-a %+v %v", sw, err)
		}
		if sw, _ := d.SweepRuns(ctx, dev.Fingerprint, 1, ""); len(sw) != 3 {
			t.Fatalf("sweep runs of every space %+v", sw)
		}
		if sw, _ := d.SweepRuns(ctx, dev.Fingerprint, 64, ""); len(sw) != 0 {
			t.Fatalf("sweep runs at batch 64 %+v", sw)
		}
	})
}

// TestRenormalizeDrift: a study's rows measured beside the probe are
// re-expressed in one usual figure of the probe (figure, interval and
// ratio scaled by old drift / new drift); rows without a probe, other
// studies' rows and a second call with the same figure change nothing.
func TestRenormalizeDrift(t *testing.T) {
	eachStore(t, func(t *testing.T, d *DB) {
		s := newStudy(t, d, "drift")
		other := newStudy(t, d, "other")
		dev := testDevice("Test CPU", "cpu", 2)
		a := addDone(t, d, s.ID, dev, 0.9, 100, 10*time.Microsecond)
		b := addDone(t, d, s.ID, dev, 0.9, 100, 10*time.Microsecond)
		c := addDone(t, d, s.ID, dev, 0.9, 100, 10*time.Microsecond)
		o := addDone(t, d, other.ID, dev, 0.9, 100, 10*time.Microsecond)
		// a: probe 10 µs as its own usual figure (drift 1); b: probe 12 µs
		// against a usual 10 µs (drift 1.2); c: no probe.
		la := roundsLat(dev, 20*time.Microsecond, 80*time.Microsecond)
		la.Probe, la.Drift = 10*time.Microsecond, 1
		lb := roundsLat(dev, 30*time.Microsecond, 80*time.Microsecond)
		lb.Probe, lb.Drift = 12*time.Microsecond, 1.2
		lc := roundsLat(dev, 40*time.Microsecond, 80*time.Microsecond)
		lo := la
		for _, x := range []struct {
			id int64
			l  Latency
		}{{a.ID, la}, {b.ID, lb}, {c.ID, lc}, {o.ID, lo}} {
			if err := d.PutLatency(ctx, x.id, x.l); err != nil {
				t.Fatal(err)
			}
		}
		// The probe's usual figure is 11 µs after all: a's floors were
		// measured 10/11 of the usual speed's time, b's 12/11.
		n, err := d.RenormalizeDrift(ctx, s.ID, dev.Fingerprint, 1, "", 11*time.Microsecond)
		if err != nil || n != 2 {
			t.Fatalf("renormalised %d rows, %v; want 2", n, err)
		}
		for _, x := range []struct {
			id    int64
			fig   time.Duration
			drift float64
			from  Latency
		}{{a.ID, 22 * time.Microsecond, 10.0 / 11, la}, {b.ID, 33 * time.Microsecond, 12.0 / 11, lb}, {c.ID, 40 * time.Microsecond, 1, lc}, {o.ID, 20 * time.Microsecond, 1, lo}} {
			tr, err := d.GetTrial(ctx, x.id)
			if err != nil || len(tr.Latencies) != 1 {
				t.Fatalf("trial %d: %+v %v", x.id, tr.Latencies, err)
			}
			l := tr.Latencies[0]
			f := float64(x.fig) / float64(x.from.Stats.Latency)
			if l.Figure() != x.fig || math.Abs(l.Drift-x.drift) > 1e-12 || math.Abs(float64(l.Stats.High)-float64(x.from.Stats.High)*f) > 1 ||
				math.Abs(l.Ratio.Value-x.from.Ratio.Value*f) > 1e-12 || l.Stats.Median != x.from.Stats.Median || l.Probe != x.from.Probe {
				t.Errorf("trial %d: figure %v drift %v high %v ratio %v median %v; want %v, %v, ×%.3f of %v and %v, median %v",
					x.id, l.Figure(), l.Drift, l.Stats.High, l.Ratio.Value, l.Stats.Median, x.fig, x.drift, f, x.from.Stats.High, x.from.Ratio.Value, x.from.Stats.Median)
			}
		}
		if n, err := d.RenormalizeDrift(ctx, s.ID, dev.Fingerprint, 1, "", 11*time.Microsecond); err != nil || n != 0 {
			t.Errorf("again: %d rows changed, %v", n, err)
		}
		if _, err := d.RenormalizeDrift(ctx, s.ID, dev.Fingerprint, 1, "", 0); err == nil {
			t.Error("a usual figure of 0 accepted")
		}
	})
}
