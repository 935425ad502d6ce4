package store

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"hwnas/accel"
	"hwnas/store/pgtest"
)

var ctx = context.Background()

func newDB(t *testing.T) *DB {
	t.Helper()
	d, err := Open(filepath.Join(t.TempDir(), "hwnas.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// eachStore runs body on a fresh SQLite file and on a fresh database of
// the throwaway PostgreSQL server: the two stores must behave the same.
func eachStore(t *testing.T, body func(t *testing.T, d *DB)) {
	t.Run("sqlite", func(t *testing.T) { body(t, newDB(t)) })
	t.Run("postgres", func(t *testing.T) { body(t, newPG(t)) })
}

// newPG opens a fresh PostgreSQL database for writing.
func newPG(t *testing.T) *DB {
	t.Helper()
	d, err := Open(pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func testDevice(name, backend string, cores int) accel.Device {
	d := accel.Device{Backend: backend, Name: name, Cores: cores, Features: []string{"avx2"}}
	d.Fingerprint = d.ComputeFingerprint()
	return d
}

func lat(dev accel.Device, batch int, median time.Duration) Latency {
	return Latency{Device: dev, Batch: batch, Predicted: median + median/10,
		Stats: accel.LatencyStats{Runs: 30, Median: median, P90: median + 5, MAD: 2, Mean: median + 1, Min: median - 3, Max: median + 9, Outliers: 1}}
}

// addDone adds a trial and finishes it with the given accuracy, bytes and
// latency on dev (batch 1).
func addDone(t *testing.T, d *DB, study int64, dev accel.Device, acc float64, bytes int64, latency time.Duration) Trial {
	t.Helper()
	tr, err := d.AddTrial(ctx, study, TrialSpec{Arch: json.RawMessage(`{"n":1}`)})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.StartTrial(ctx, tr.ID, "w1"); err != nil {
		t.Fatal(err)
	}
	m := Metrics{ValAccuracy: acc, TestAccuracy: acc - 0.001, HasTest: true, Params: bytes / 2, CompressedBytes: bytes, MACs: 1000, TrainSeconds: 1.5, Reward: acc}
	if err := d.FinishTrial(ctx, tr.ID, m, []Latency{lat(dev, 1, latency)}, []byte("weights")); err != nil {
		t.Fatal(err)
	}
	return tr
}

func TestTrialLifecycle(t *testing.T) {
	eachStore(t, func(t *testing.T, d *DB) {
		dev := testDevice("Test CPU", "cpu", 2)
		s, err := d.CreateStudy(ctx, Study{Name: "s1", Dataset: "mnist", DeviceSpec: "cpu", DeviceName: dev.Name,
			DeviceFingerprint: dev.Fingerprint, Strategy: "rl", Config: json.RawMessage(`{"trials":3}`)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.CreateStudy(ctx, Study{Name: "s1"}); err == nil || !strings.Contains(err.Error(), `study "s1" already exists`) {
			t.Fatalf("duplicate study: err = %v", err)
		}
		got, err := d.GetStudy(ctx, "s1")
		if err != nil || got.ID != s.ID || got.Strategy != "rl" || string(got.Config) != `{"trials":3}` || got.Status != StudyRunning {
			t.Fatalf("GetStudy = %+v, %v", got, err)
		}
		if _, err := d.GetStudy(ctx, "nope"); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "studies: s1") {
			t.Fatalf("unknown study: err = %v", err)
		}

		tr0, err := d.AddTrial(ctx, s.ID, TrialSpec{Decisions: json.RawMessage(`[1,2]`), Arch: json.RawMessage(`{"a":1}`)})
		if err != nil || tr0.Number != 0 || tr0.Status != Pending {
			t.Fatalf("AddTrial = %+v, %v", tr0, err)
		}
		if _, err := d.AddTrial(ctx, s.ID, TrialSpec{Arch: json.RawMessage(`{bad`)}); err == nil {
			t.Fatal("malformed arch JSON accepted")
		}
		if err := d.FinishTrial(ctx, tr0.ID, Metrics{}, nil, nil); err == nil || !strings.Contains(err.Error(), "is pending, want running") {
			t.Fatalf("finish pending: err = %v", err)
		}
		if err := d.StartTrial(ctx, tr0.ID, "worker-7"); err != nil {
			t.Fatal(err)
		}
		if err := d.StartTrial(ctx, tr0.ID, "worker-8"); err == nil {
			t.Fatal("started a running trial")
		}
		dev2 := testDevice("Other GPU", "cuda", 0)
		m := Metrics{ValAccuracy: 0.99, Params: 1000, CompressedBytes: 900, MACs: 5000, TrainSeconds: 2, Reward: 0.8}
		if err := d.FinishTrial(ctx, tr0.ID, m, []Latency{lat(dev, 1, 50*time.Microsecond), lat(dev, 64, time.Millisecond), lat(dev2, 1, 9*time.Microsecond)}, []byte{1, 2, 3}); err != nil {
			t.Fatal(err)
		}
		tr1, _ := d.AddTrial(ctx, s.ID, TrialSpec{})
		tr2, _ := d.AddTrial(ctx, s.ID, TrialSpec{})
		if tr1.Number != 1 || tr2.Number != 2 {
			t.Fatalf("numbers %d %d, want 1 2", tr1.Number, tr2.Number)
		}
		d.StartTrial(ctx, tr1.ID, "w")
		if err := d.FailTrial(ctx, tr1.ID, "NaN loss at epoch 1"); err != nil {
			t.Fatal(err)
		}
		d.StartTrial(ctx, tr2.ID, "w")

		all, err := d.ListTrials(ctx, s.ID, TrialFilter{})
		if err != nil || len(all) != 3 {
			t.Fatalf("ListTrials = %d trials, %v", len(all), err)
		}
		t0 := all[0]
		if t0.Status != Done || t0.Worker != "worker-7" || t0.Attempts != 1 || t0.Metrics == nil || *t0.Metrics != m ||
			string(t0.Decisions) != `[1,2]` || string(t0.Arch) != `{"a":1}` || string(t0.Recipe) != `null` || t0.Study != "s1" {
			t.Fatalf("trial 0 = %+v metrics %+v", t0, t0.Metrics)
		}
		if t0.Started.IsZero() || t0.Finished.Before(t0.Started) {
			t.Errorf("times: started %v finished %v", t0.Started, t0.Finished)
		}
		if len(t0.Latencies) != 3 {
			t.Fatalf("trial 0 latencies: %+v", t0.Latencies)
		}
		for _, l := range t0.Latencies {
			want := map[string]time.Duration{dev.Fingerprint + "/1": 50 * time.Microsecond, dev.Fingerprint + "/64": time.Millisecond, dev2.Fingerprint + "/1": 9 * time.Microsecond}[l.Device.Fingerprint+"/"+strconv.Itoa(l.Batch)]
			if l.Stats.Median != want || l.Stats.Runs != 30 || l.Stats.P90 != want+5 || l.Predicted != want+want/10 || l.Device.Name == "" {
				t.Errorf("latency %+v, want median %v", l, want)
			}
			if e := l.PredictionError(); e < 0.0999 || e > 0.1001 {
				t.Errorf("prediction error %v, want 0.1", e)
			}
		}
		if all[1].Status != Failed || all[1].Error != "NaN loss at epoch 1" || all[1].Metrics != nil {
			t.Errorf("trial 1 = %+v", all[1])
		}
		if all[2].Status != Running {
			t.Errorf("trial 2 = %+v", all[2])
		}
		if done, _ := d.ListTrials(ctx, s.ID, TrialFilter{Status: Done}); len(done) != 1 || done[0].ID != tr0.ID {
			t.Errorf("filter done: %+v", done)
		}

		w, err := d.TrialWeights(ctx, tr0.ID)
		if err != nil || string(w) != "\x01\x02\x03" {
			t.Fatalf("weights %v, %v", w, err)
		}
		if _, err := d.TrialWeights(ctx, tr1.ID); !errors.Is(err, ErrNotFound) {
			t.Fatalf("weights of failed trial: %v", err)
		}

		ids, err := d.RequeueRunning(ctx, s.ID)
		if err != nil || len(ids) != 1 || ids[0] != tr2.ID {
			t.Fatalf("RequeueRunning = %v, %v", ids, err)
		}
		if tr, _ := d.GetTrial(ctx, tr2.ID); tr.Status != Pending || tr.Worker != "" || !tr.Started.IsZero() || tr.Attempts != 1 {
			t.Fatalf("requeued trial = %+v", tr)
		}
		if n, _ := d.NextTrialNumber(ctx, s.ID); n != 3 {
			t.Fatalf("NextTrialNumber = %d, want 3", n)
		}

		sums, err := d.ListStudies(ctx)
		if err != nil || len(sums) != 1 {
			t.Fatalf("ListStudies = %+v, %v", sums, err)
		}
		if ss := sums[0]; ss.Done != 1 || ss.Failed != 1 || ss.Pending != 1 || ss.Running != 0 || ss.BestReward == nil || *ss.BestReward != 0.8 {
			t.Fatalf("summary %+v", ss)
		}
		if err := d.IntegrityCheck(); err != nil {
			t.Fatal(err)
		}
	})
}

// Goroutines of one writer process adding trials at once get distinct,
// gapless numbers (each AddTrial takes the write lock when it begins).
func TestConcurrentAddTrial(t *testing.T) {
	eachStore(t, func(t *testing.T, d *DB) {
		s, _ := d.CreateStudy(ctx, Study{Name: "par"})
		const workers, each = 8, 20
		errs := make(chan error, workers)
		for range workers {
			go func() {
				for range each {
					if _, err := d.AddTrial(ctx, s.ID, TrialSpec{}); err != nil {
						errs <- err
						return
					}
				}
				errs <- nil
			}()
		}
		for range workers {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		trials, err := d.ListTrials(ctx, s.ID, TrialFilter{})
		if err != nil || len(trials) != workers*each {
			t.Fatalf("%d trials, %v", len(trials), err)
		}
		for i, tr := range trials {
			if tr.Number != i {
				t.Fatalf("trial %d has number %d", i, tr.Number)
			}
		}
	})
}
