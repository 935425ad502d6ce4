package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"hwnas/accel"
)

// shortLatency keeps the race's measurements to a few runs in tests.
var shortLatency = accel.LatencyOptions{Warmup: 1, MinRuns: 3, MinTime: time.Millisecond, MaxTime: time.Second}

func TestRunBenchOrt(t *testing.T) {
	var buf bytes.Buffer
	opts := benchOrtOptions{Arch: "lenet300", Batches: []int{1, 3}, Threads: 1, Rounds: 2, JSON: true, Latency: shortLatency}
	if err := runBenchOrt(context.Background(), &buf, opts); err != nil {
		t.Fatal(err)
	}
	var rep benchOrtReport
	if err := json.Unmarshal(buf.Bytes(), &rep); err != nil {
		t.Fatalf("%v: %s", err, buf.String())
	}
	if rep.Arch != "lenet300" || rep.Params != 266610 || rep.Threads != 1 || rep.OrtVersion == "" || rep.OnnxBytes < 4*266610 {
		t.Errorf("report %+v", rep)
	}
	if len(rep.Rows) != 2 {
		t.Fatalf("%d rows, want 2", len(rep.Rows))
	}
	for i, r := range rep.Rows {
		if r.Batch != opts.Batches[i] || !(r.HwnasUS > 0) || !(r.OrtUS > 0) || len(r.RoundRatios) != 2 {
			t.Errorf("row %+v", r)
		}
		if math.Abs(r.Ratio-r.HwnasUS/r.OrtUS) > 1e-9 || math.Abs(r.HwnasPerImageUS*float64(r.Batch)-r.HwnasUS) > 1e-6 {
			t.Errorf("batch %d: ratio %v for %v/%v µs", r.Batch, r.Ratio, r.HwnasUS, r.OrtUS)
		}
		if len(r.Ops) != rep.PlanOps {
			t.Errorf("batch %d: %d op times for %d plan ops", r.Batch, len(r.Ops), rep.PlanOps)
		}
		share := 0.0
		for j, op := range r.Ops {
			share += op.Share
			if j > 0 && op.MedianUS > r.Ops[j-1].MedianUS {
				t.Errorf("op times not sorted: %+v", r.Ops)
			}
		}
		if math.Abs(share-1) > 1e-6 {
			t.Errorf("op shares add up to %v", share)
		}
		if ort := r.Ops[0].OrtUS + r.Ops[1].OrtUS + r.Ops[2].OrtUS; !(ort > 0) {
			t.Errorf("batch %d: no onnxruntime op times: %+v", r.Batch, r.Ops)
		}
	}
	buf.Reset()
	opts.JSON, opts.Batches, opts.Rounds = false, []int{2}, 1
	if err := runBenchOrt(context.Background(), &buf, opts); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "onnxruntime") || !strings.Contains(buf.String(), "ratio") || !strings.Contains(buf.String(), "fc1") {
		t.Errorf("text output %q", buf.String())
	}
}

// TestRunBenchOrtInt8 races the int8 model a recipe makes (calibrated on a
// toy IDX set): both runtimes run integer kernels.
func TestRunBenchOrtInt8(t *testing.T) {
	dir := t.TempDir()
	writeToyIDX(t, dir, 300, 50)
	var buf bytes.Buffer
	opts := benchOrtOptions{Arch: "lenet300", Recipe: "quant=int8", Data: dir, Batches: []int{4}, Threads: 1, Rounds: 1, JSON: true, Latency: shortLatency}
	if err := runBenchOrt(context.Background(), &buf, opts); err != nil {
		t.Fatal(err)
	}
	var rep benchOrtReport
	if err := json.Unmarshal(buf.Bytes(), &rep); err != nil {
		t.Fatalf("%v: %s", err, buf.String())
	}
	if rep.Int8Ops != 3 || rep.Recipe == "" || len(rep.Rows) != 1 || !(rep.Rows[0].Ratio > 0) {
		t.Errorf("report %+v", rep)
	}
	if rep.OnnxBytes > 266610*2 {
		t.Errorf("int8 ONNX model of %d bytes for 266,610 parameters", rep.OnnxBytes)
	}
}

func TestRunBenchOrtBadInput(t *testing.T) {
	dir := t.TempDir()
	weights := filepath.Join(dir, "lenet5.hwnw")
	savedModel(t, "lenet5", weights, 3)
	ok := benchOrtOptions{Arch: "lenet300", Batches: []int{1}, Threads: 1, Rounds: 1, Latency: shortLatency}
	cases := []struct {
		name string
		edit func(*benchOrtOptions)
		want string
	}{
		{"no batch", func(o *benchOrtOptions) { o.Batches = nil }, "--batch"},
		{"zero batch", func(o *benchOrtOptions) { o.Batches = []int{1, 0} }, "--batch 0"},
		{"zero threads", func(o *benchOrtOptions) { o.Threads = 0 }, "--threads 0"},
		{"zero rounds", func(o *benchOrtOptions) { o.Rounds = 0 }, "--rounds 0"},
		{"unknown arch", func(o *benchOrtOptions) { o.Arch = "lenet9" }, "lenet9"},
		{"weights of another arch", func(o *benchOrtOptions) { o.Weights = weights }, "saved for architecture"},
		{"bad recipe", func(o *benchOrtOptions) { o.Recipe = "quant=int3" }, "--recipe"},
		{"recipe without data", func(o *benchOrtOptions) { o.Recipe, o.Data = "quant=int8", filepath.Join(dir, "nodata") }, "--data"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := ok
			c.edit(&o)
			err := runBenchOrt(context.Background(), &bytes.Buffer{}, o)
			var ue usageError
			if err == nil || !errors.As(err, &ue) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err %v, want a usage error containing %q", err, c.want)
			}
		})
	}
}

// TestRunBenchOrtStudy races the finished trial of a study as stored.
func TestRunBenchOrtStudy(t *testing.T) {
	dir := t.TempDir()
	dbPath, done, _ := exportDB(t, dir)
	var buf bytes.Buffer
	opts := benchOrtOptions{DB: dbPath, Study: "s", Batches: []int{1, 4}, Threads: 1, Rounds: 1, JSON: true, Latency: shortLatency}
	if err := runBenchOrt(context.Background(), &buf, opts); err != nil {
		t.Fatal(err)
	}
	var rep benchOrtStudyReport
	if err := json.Unmarshal(buf.Bytes(), &rep); err != nil {
		t.Fatalf("%v: %s", err, buf.String())
	}
	if len(rep.Trials) != 1 || rep.Trials[0].Trial != done.Name() || rep.Trials[0].TrialID != done.ID || rep.Trials[0].Params != 266610 || len(rep.Trials[0].Rows) != 2 {
		t.Fatalf("trials %+v, want the one finished trial with two batch rows", rep.Trials)
	}
	if len(rep.Dist) != 2 {
		t.Fatalf("distribution %+v, want one row per batch size", rep.Dist)
	}
	for i, d := range rep.Dist {
		r := rep.Trials[0].Rows[i].Ratio
		if d.Batch != opts.Batches[i] || d.Trials != 1 || d.Median != r || d.Worst != r || d.Best != r || (d.Above == 1) != (r > benchOrtLimit) {
			t.Errorf("distribution row %+v for the single ratio %v", d, r)
		}
	}
	buf.Reset()
	opts.JSON = false
	if err := runBenchOrt(context.Background(), &buf, opts); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "batch 4: median") {
		t.Errorf("text output %q", buf.String())
	}
	for _, c := range []struct {
		name string
		opts benchOrtOptions
		want string
	}{
		{"db without study", benchOrtOptions{DB: dbPath}, "--db and --study"},
		{"unknown study", benchOrtOptions{DB: dbPath, Study: "nope"}, `--study "nope"`},
		{"missing db", benchOrtOptions{DB: filepath.Join(dir, "none.db"), Study: "s"}, "none.db"},
		{"recipe on trials", benchOrtOptions{DB: dbPath, Study: "s", Recipe: "quant=int8"}, "as stored"},
	} {
		c.opts.Batches, c.opts.Threads, c.opts.Rounds = []int{1}, 1, 1
		err := runBenchOrt(context.Background(), &buf, c.opts)
		if !isBadInput(err) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want a bad-input error containing %q", c.name, err, c.want)
		}
	}
}
