package store

import (
	"bytes"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkFinishTrial times the writer's per-trial work: AddTrial,
// StartTrial and FinishTrial with one latency and 20 KB of weights (three
// WAL transactions).
func BenchmarkFinishTrial(b *testing.B) {
	d, err := Open(filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	s, _ := d.CreateStudy(ctx, Study{Name: "bench"})
	cpu := testDevice("Test CPU", "cpu", 2)
	weights := bytes.Repeat([]byte{1}, 20000)
	for b.Loop() {
		tr, err := d.AddTrial(ctx, s.ID, TrialSpec{})
		if err == nil {
			err = d.StartTrial(ctx, tr.ID, "w")
		}
		if err == nil {
			err = d.FinishTrial(ctx, tr.ID, Metrics{ValAccuracy: 0.9, CompressedBytes: 100}, []Latency{lat(cpu, 1, time.Microsecond)}, weights)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBest times a read-only Best query (top 10 under bounds) over a
// study of 2,000 finished trials.
func BenchmarkBest(b *testing.B) {
	path := filepath.Join(b.TempDir(), "bench.db")
	d, err := Open(path)
	if err != nil {
		b.Fatal(err)
	}
	s, _ := d.CreateStudy(ctx, Study{Name: "bench"})
	cpu := testDevice("Test CPU", "cpu", 2)
	for i := range 2000 {
		tr, _ := d.AddTrial(ctx, s.ID, TrialSpec{})
		d.StartTrial(ctx, tr.ID, "w")
		acc := 0.9 + float64(i%97)/1000
		if err := d.FinishTrial(ctx, tr.ID, Metrics{ValAccuracy: acc, CompressedBytes: int64(1000 + i%5000)},
			[]Latency{lat(cpu, 1, time.Duration(5+i%200)*time.Microsecond)}, nil); err != nil {
			b.Fatal(err)
		}
	}
	d.Close()
	r, err := OpenReadOnly(path)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	b.ResetTimer()
	for b.Loop() {
		rs, err := r.Best(ctx, Query{Device: "cpu", MaxLatency: 100 * time.Microsecond, MaxBytes: 4000})
		if err != nil || len(rs) != 10 {
			b.Fatal(len(rs), err)
		}
	}
}
