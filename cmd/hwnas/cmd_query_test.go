package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"hwnas/accel"
	"hwnas/cpu"
	"hwnas/internal/testproc"
	"hwnas/store"
)

// queryTestDB writes a database with two studies: "alpha" with four
// finished trials on a made-up CPU (one of them off the front), a failed
// and a pending one; "beta" with one trial measured on this machine's CPU
// (as `hwnas best --device cpu` resolves it) and on the made-up CPU.
func queryTestDB(t *testing.T) (path string, ids map[string]int64, local accel.Device) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "hwnas.db")
	db, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	other := accel.Device{Backend: "cpu", Name: "Made-up CPU", Cores: 4, Features: []string{"avx2"}}
	other.Fingerprint = other.ComputeFingerprint()
	local = accel.DetectCPU(0, cpu.ISA()) // what the registered cpu backend reports
	alpha, err := db.CreateStudy(ctx, store.Study{Name: "alpha", Dataset: "mnist", DeviceSpec: "cpu", DeviceName: other.Name,
		DeviceFingerprint: other.Fingerprint, Strategy: "rl"})
	if err != nil {
		t.Fatal(err)
	}
	beta, _ := db.CreateStudy(ctx, store.Study{Name: "beta", Dataset: "fashion", DeviceSpec: "cpu", DeviceName: local.Name,
		DeviceFingerprint: local.Fingerprint, Strategy: "random"})
	ids = map[string]int64{}
	finish := func(key string, study int64, acc, test float64, bytes int64, lats ...devLatency) {
		tr, err := db.AddTrial(ctx, study, store.TrialSpec{Arch: json.RawMessage(`{"name":"` + key + `"}`)})
		if err != nil {
			t.Fatal(err)
		}
		db.StartTrial(ctx, tr.ID, "worker-1")
		var ls []store.Latency
		for _, dl := range lats {
			dev, med := dl.dev, dl.median
			ls = append(ls, store.Latency{Device: dev, Batch: 1, Predicted: med * 9 / 10,
				Stats: accel.LatencyStats{Runs: 30, Median: med, P90: med + med/10}})
		}
		m := store.Metrics{ValAccuracy: acc, TestAccuracy: test, HasTest: test > 0, Params: bytes, CompressedBytes: bytes, MACs: 1e5, TrainSeconds: 3, Reward: acc / 2}
		if err := db.FinishTrial(ctx, tr.ID, m, ls, []byte("w")); err != nil {
			t.Fatal(err)
		}
		ids[key] = tr.ID
	}
	us := time.Microsecond
	finish("a", alpha.ID, 0.992, 0.991, 9000, devLatency{other, 80 * us})
	finish("b", alpha.ID, 0.990, 0.989, 6000, devLatency{other, 40 * us})
	finish("c", alpha.ID, 0.985, 0, 7000, devLatency{other, 45 * us}) // dominated by b; no test accuracy
	finish("d", alpha.ID, 0.970, 0.969, 3000, devLatency{other, 12 * us})
	failed, _ := db.AddTrial(ctx, alpha.ID, store.TrialSpec{})
	db.StartTrial(ctx, failed.ID, "worker-2")
	db.FailTrial(ctx, failed.ID, "worker crashed:\nSIGSEGV in conv")
	db.AddTrial(ctx, alpha.ID, store.TrialSpec{})
	finish("e", beta.ID, 0.95, 0.94, 500, devLatency{local, 5 * us}, devLatency{other, 7 * us})
	return path, ids, local
}

type devLatency struct {
	dev    accel.Device
	median time.Duration
}

func compactJSON(raw json.RawMessage) string {
	var b bytes.Buffer
	json.Compact(&b, raw)
	return b.String()
}

func isBadInput(err error) bool {
	var ue usageError
	return errors.As(err, &ue)
}

func TestRunStudies(t *testing.T) {
	path, _, _ := queryTestDB(t)
	var out bytes.Buffer
	if err := runStudies(context.Background(), &out, studiesOptions{DB: path, JSON: true}); err != nil {
		t.Fatal(err)
	}
	var got []store.StudySummary
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Name != "alpha" || got[0].Done != 4 || got[0].Failed != 1 || got[0].Pending != 1 ||
		got[0].BestReward == nil || *got[0].BestReward != 0.496 || got[1].Name != "beta" || got[1].Done != 1 {
		t.Fatalf("studies %+v", got)
	}
	out.Reset()
	if err := runStudies(context.Background(), &out, studiesOptions{DB: path}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "STUDY") || !strings.Contains(lines[1], "alpha") ||
		!strings.Contains(lines[1], "0.4960") || !strings.Contains(lines[2], "random") {
		t.Fatalf("table:\n%s", out.String())
	}
}

func TestRunTrials(t *testing.T) {
	path, ids, _ := queryTestDB(t)
	ctx := context.Background()
	var out bytes.Buffer
	if err := runTrials(ctx, &out, trialsOptions{DB: path, Study: "alpha", JSON: true}); err != nil {
		t.Fatal(err)
	}
	var got []store.Trial
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 6 || got[0].ID != ids["a"] || got[4].Status != store.Failed || got[5].Status != store.Pending ||
		got[1].Metrics == nil || got[1].Metrics.CompressedBytes != 6000 || len(got[1].Latencies) != 1 ||
		got[1].Latencies[0].Stats.Median != 40*time.Microsecond || compactJSON(got[1].Arch) != `{"name":"b"}` {
		t.Fatalf("trials %+v", got)
	}
	out.Reset()
	if err := runTrials(ctx, &out, trialsOptions{DB: path, Study: "alpha", Status: "failed"}); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	if !strings.Contains(text, "1 trials failed") || !strings.Contains(text, "worker crashed: SIGSEGV in conv") || strings.Count(text, "\n") != 4 ||
		!strings.Contains(text, "LATENCY (hwnas)") {
		t.Fatalf("failed trials:\n%s", text)
	}
	out.Reset()
	runTrials(ctx, &out, trialsOptions{DB: path, Study: "alpha", Status: "done"})
	// Trial b: 99.00% val, 98.90% test, 6.00 KB, 40µs, predicted 36µs (−10%).
	if !strings.Contains(out.String(), "99.00%") || !strings.Contains(out.String(), "6.00 KB") || !strings.Contains(out.String(), "36µs (-10%)") {
		t.Fatalf("done trials:\n%s", out.String())
	}
}

func TestRunBest(t *testing.T) {
	path, ids, local := queryTestDB(t)
	ctx := context.Background()
	best := func(opts bestOptions) (bestReport, error) {
		t.Helper()
		opts.DB, opts.JSON = path, true
		if opts.N == 0 {
			opts.N = 10
		}
		if opts.Batch == 0 {
			opts.Batch = 1
		}
		if opts.By == "" {
			opts.By = "val"
		}
		var out bytes.Buffer
		err := runBest(ctx, &out, opts)
		var rep bestReport
		if err == nil {
			if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
				t.Fatalf("%v: %s", err, out.String())
			}
		}
		return rep, err
	}
	resultIDs := func(rep bestReport) []int64 {
		var out []int64
		for _, r := range rep.Results {
			out = append(out, r.TrialID)
		}
		return out
	}
	tests := []struct {
		name    string
		opts    bestOptions
		matched string
		want    []string
	}{
		{"by name", bestOptions{Device: "made-up cpu"}, "made-up cpu", []string{"a", "b", "c", "d", "e"}},
		{"bounds", bestOptions{Device: "Made-up CPU", MaxLatency: 50 * time.Microsecond, MinAccuracy: 0.98, MaxBytes: 6500}, "Made-up CPU", []string{"b"}},
		{"n", bestOptions{Device: "Made-up CPU", N: 2}, "Made-up CPU", []string{"a", "b"}},
		{"by test", bestOptions{Device: "Made-up CPU", By: "test"}, "Made-up CPU", []string{"a", "b", "d", "e"}},
		{"study", bestOptions{Device: "Made-up CPU", Study: "beta"}, "Made-up CPU", []string{"e"}},
		// "cpu" resolves to this machine's CPU, which only trial e was measured on.
		{"spec", bestOptions{Device: "cpu"}, local.Fingerprint, []string{"e"}},
		{"fingerprint", bestOptions{Device: local.Fingerprint}, local.Fingerprint, []string{"e"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := best(tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			var want []int64
			for _, k := range tc.want {
				want = append(want, ids[k])
			}
			if got := resultIDs(rep); !slices.Equal(got, want) || rep.Matched != tc.matched {
				t.Fatalf("results %v matched %q, want %v (%v) %q", got, rep.Matched, want, tc.want, tc.matched)
			}
		})
	}

	// The text table shows test accuracy, bytes, latency, trial and study.
	var out bytes.Buffer
	if err := runBest(ctx, &out, bestOptions{DB: path, Device: "Made-up CPU", N: 1, Batch: 1, By: "val"}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "RANK") || !strings.HasPrefix(lines[2], "latency: ") {
		t.Fatalf("table:\n%s", out.String())
	}
	for _, want := range []string{"99.10%", "99.20%", "9.00 KB", "80µs", "alpha", "Made-up CPU"} {
		if !strings.Contains(lines[1], want) {
			t.Errorf("row %q lacks %q", lines[1], want)
		}
	}

	for _, tc := range []struct {
		name   string
		opts   bestOptions
		errHas string
	}{
		{"unknown device", bestOptions{Device: "TPU"}, `device "TPU": not found`},
		{"unknown study", bestOptions{Device: "cpu", Study: "gamma"}, `study "gamma": not found`},
		{"accuracy as percent", bestOptions{Device: "cpu", MinAccuracy: 99}, "give a fraction"},
		{"negative latency", bestOptions{Device: "cpu", MaxLatency: -1}, "must not be negative"},
		{"bad metric", bestOptions{Device: "cpu", By: "train"}, `--by "train"`},
		{"bad n", bestOptions{Device: "cpu", N: -1}, "-n -1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := best(tc.opts)
			if err == nil || !isBadInput(err) || !strings.Contains(err.Error(), tc.errHas) {
				t.Fatalf("err = %v, want bad input containing %q", err, tc.errHas)
			}
		})
	}
}

func TestQueryCommandsOnBadDatabases(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.db")
	notDB := filepath.Join(dir, "notes.txt")
	os.WriteFile(notDB, []byte("hello"), 0o644)
	ctx := context.Background()
	for _, path := range []string{missing, notDB} {
		var out bytes.Buffer
		errs := []error{
			runStudies(ctx, &out, studiesOptions{DB: path}),
			runTrials(ctx, &out, trialsOptions{DB: path, Study: "s"}),
			runBest(ctx, &out, bestOptions{DB: path, Device: "cpu", N: 1, Batch: 1, By: "val"}),
			runPareto(ctx, &out, paretoOptions{DB: path, Study: "s", Batch: 1, By: "val"}),
		}
		for i, err := range errs {
			if err == nil || !isBadInput(err) || !strings.Contains(err.Error(), path) {
				t.Errorf("%s: command %d: err = %v, want bad input naming the file", filepath.Base(path), i, err)
			}
		}
	}
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a query created %s", missing)
	}
	path, _, _ := queryTestDB(t)
	var out bytes.Buffer
	if err := runTrials(ctx, &out, trialsOptions{DB: path, Study: "gamma"}); !isBadInput(err) || !strings.Contains(err.Error(), "studies: alpha, beta") {
		t.Errorf("unknown study: err = %v", err)
	}
	if err := runTrials(ctx, &out, trialsOptions{DB: path, Study: "alpha", Status: "lost"}); !isBadInput(err) {
		t.Errorf("bad status: err = %v", err)
	}
	// Through the CLI: exit status 2.
	if code := run(ctx, []string{"studies", "--db", missing}); code != exitUsage {
		t.Errorf("hwnas studies on a missing db: exit %d, want %d", code, exitUsage)
	}
}

func TestRunPareto(t *testing.T) {
	path, ids, _ := queryTestDB(t)
	ctx := context.Background()
	dir := t.TempDir()
	var out bytes.Buffer
	plotPath := filepath.Join(dir, "front.png")
	if err := runPareto(ctx, &out, paretoOptions{DB: path, Study: "alpha", Batch: 1, By: "val", Plot: plotPath, JSON: true}); err != nil {
		t.Fatal(err)
	}
	var rep paretoReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	var front []int64
	for _, r := range rep.Front {
		front = append(front, r.TrialID)
	}
	// d (12µs), b (40µs), a (80µs); c is beaten by b on all three.
	if want := []int64{ids["d"], ids["b"], ids["a"]}; !slices.Equal(front, want) || rep.Trials != 4 || rep.Device.Name != "Made-up CPU" {
		t.Fatalf("front %v of %d trials on %q, want %v of 4", front, rep.Trials, rep.Device.Name, want)
	}
	f, err := os.Open(plotPath)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(f)
	f.Close()
	if err != nil {
		t.Fatalf("plot is not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() < 800 || b.Dy() < 300 {
		t.Errorf("plot is %v", b)
	}

	// Text, an SVG plot, and the other device of study beta by name.
	out.Reset()
	svg := filepath.Join(dir, "front.svg")
	if err := runPareto(ctx, &out, paretoOptions{DB: path, Study: "beta", Device: "made-up cpu", Batch: 1, By: "val", Plot: svg}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "1 of 1 finished trials on the front") || !strings.Contains(out.String(), "7µs") {
		t.Fatalf("text:\n%s", out.String())
	}
	if b, err := os.ReadFile(svg); err != nil || !bytes.Contains(b, []byte("<svg")) {
		t.Fatalf("svg plot: %v", err)
	}

	for _, tc := range []struct {
		opts   paretoOptions
		errHas string
	}{
		{paretoOptions{Study: "gamma"}, `study "gamma": not found`},
		{paretoOptions{Study: "alpha", Device: "TPU"}, `device "TPU": not found`},
		{paretoOptions{Study: "alpha", Plot: "front.gif"}, "give a .png or .svg"},
		{paretoOptions{Study: "alpha", By: "x"}, `--by "x"`},
	} {
		o := tc.opts
		o.DB, o.Batch = path, 1
		if o.By == "" {
			o.By = "val"
		}
		if err := runPareto(ctx, &out, o); err == nil || !isBadInput(err) || !strings.Contains(err.Error(), tc.errHas) {
			t.Errorf("%+v: err = %v, want bad input containing %q", tc.opts, err, tc.errHas)
		}
	}
}

func TestParseByteSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"4096", 4096, true}, {"10KB", 10000, true}, {"10 kb", 10000, true}, {"1.5MB", 1500000, true},
		{"2KiB", 2048, true}, {"1MiB", 1 << 20, true}, {"7B", 7, true}, {"3k", 3000, true}, {"1GB", 1e9, true},
		{"", 0, false}, {"-1KB", 0, false}, {"ten", 0, false}, {"10TB", 0, false},
	} {
		got, err := parseByteSize(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseByteSize(%q) = %d, %v; want %d ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestRunDevices(t *testing.T) {
	var out bytes.Buffer
	if err := runDevices(context.Background(), &out, devicesOptions{JSON: true}); err != nil {
		t.Fatal(err)
	}
	var got []backendDevices
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, b := range got {
		names = append(names, b.Backend)
		if len(b.Devices) == 0 && b.Unavailable == "" {
			t.Errorf("backend %s lists no devices and gives no reason", b.Backend)
		}
		if b.Backend == "cpu" {
			if len(b.Devices) != 1 {
				t.Fatalf("cpu devices: %+v (%s)", b.Devices, b.Unavailable)
			}
			d := b.Devices[0]
			want := accel.DetectCPU(0, d.ISA)
			if d.Name != want.Name || d.Cores <= 0 || len(d.Fingerprint) != 12 || d.ISA == "" || !slices.Equal(d.Features, accel.CPUFeatures()) {
				t.Errorf("cpu device %+v", d)
			}
		}
	}
	if !slices.Equal(names, accel.Registered()) || !slices.Contains(names, "cpu") {
		t.Fatalf("backends %v, registered %v", names, accel.Registered())
	}

	// A backend whose Devices fails, one with none, and an unknown name
	// each say why.
	regs := map[string]accel.Registration{
		"gpu": {Name: "gpu", Devices: func() ([]accel.Device, error) { return nil, errors.New("built without GPU support") }},
		"npu": {Name: "npu", Devices: func() ([]accel.Device, error) { return nil, nil }},
		"multi": {Name: "multi", Devices: func() ([]accel.Device, error) {
			return []accel.Device{{Backend: "multi", Name: "A"}, {Backend: "multi", Index: 1, Name: "B", MemoryBytes: 80 << 30, ComputeCapability: "9.0", Driver: "580.1"}}, nil
		}},
	}
	lookup := func(n string) (accel.Registration, error) {
		r, ok := regs[n]
		if !ok {
			return r, errors.New("unknown device " + n)
		}
		return r, nil
	}
	list := collectDevices([]string{"gpu", "multi", "npu", "tpu"}, lookup)
	if list[0].Unavailable != "built without GPU support" || len(list[1].Devices) != 2 || list[2].Unavailable != "no devices found" || list[3].Unavailable != "unknown device tpu" {
		t.Fatalf("collectDevices = %+v", list)
	}
	out.Reset()
	printDevices(&out, list)
	for _, want := range []string{"gpu: unavailable: built without GPU support", "multi:1  B", "memory       80.0 GiB", "compute      sm_90", "driver       580.1"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("devices text lacks %q:\n%s", want, out.String())
		}
	}
}

func TestRunData(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "mnist")
	var out bytes.Buffer
	if err := runData(context.Background(), &out, dataOptions{Out: dir, JSON: true}); err != nil {
		t.Fatal(err)
	}
	var rep dataReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Train != 55000 || rep.Val != 5000 || rep.Test != 10000 || rep.Classes != 10 || rep.Side != 28 || len(rep.Files) != 4 {
		t.Fatalf("report %+v", rep)
	}
	for _, f := range rep.Files {
		if st, err := os.Stat(filepath.Join(dir, f.Name)); err != nil || st.Size() != f.Bytes {
			t.Errorf("%s: %v", f.Name, err)
		}
	}
	if err := runData(context.Background(), &out, dataOptions{}); !isBadInput(err) {
		t.Errorf("no --out: err = %v", err)
	}
}

// TestQueryHelperProcess is not a test: TestQueriesWhileWriting re-runs the
// test binary with HWNAS_QUERY_HELPER set, and then this runs `hwnas best`
// and `hwnas trials` through the CLI in a loop until the stop file
// appears, printing "runs N failures M" and exiting 1 on any failure.
func TestQueryHelperProcess(t *testing.T) {
	db, stop := os.Getenv("HWNAS_QUERY_HELPER"), os.Getenv("HWNAS_QUERY_STOP")
	if db == "" {
		return
	}
	rootCmd.SetOut(io.Discard)
	runs, failures := 0, 0
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); {
		if testproc.Stopped(stop) {
			break
		}
		for _, args := range [][]string{
			{"best", "--db", db, "--device", "Made-up CPU", "-n", "5", "--json"},
			{"trials", "--db", db, "--study", "alpha", "--json"},
			{"studies", "--db", db},
		} {
			runs++
			if code := run(context.Background(), args); code != 0 {
				failures++
			}
		}
		if runs == 3 {
			testproc.Ready(stop)
		}
	}
	fmt.Printf("runs %d failures %d\n", runs, failures)
	if failures > 0 || runs == 0 {
		os.Exit(1)
	}
	os.Exit(0)
}

// TestQueriesWhileWriting runs `hwnas best`, `hwnas trials` and
// `hwnas studies` from two other processes in a loop while this one writes
// trials as a search does: no run may fail ("database is locked" above
// all; the helpers print hwnas's error messages to their stderr).
func TestQueriesWhileWriting(t *testing.T) {
	path, _, _ := queryTestDB(t)
	stop := filepath.Join(t.TempDir(), "stop")
	readers := testproc.Start(t, 2, []string{"-test.run=^TestQueryHelperProcess$"}, []string{"HWNAS_QUERY_HELPER=" + path, "HWNAS_QUERY_STOP=" + stop}, stop, 30*time.Second)

	db, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	st, _ := db.GetStudy(ctx, "alpha")
	dev := accel.Device{Backend: "cpu", Name: "Made-up CPU", Cores: 4, Features: []string{"avx2"}}
	dev.Fingerprint = dev.ComputeFingerprint()
	weights := bytes.Repeat([]byte{3}, 50000)
	for i := range 200 {
		tr, err := db.AddTrial(ctx, st.ID, store.TrialSpec{Arch: json.RawMessage(`{"i":` + strconv.Itoa(i) + `}`)})
		if err == nil {
			err = db.StartTrial(ctx, tr.ID, "w")
		}
		if err == nil {
			err = db.FinishTrial(ctx, tr.ID, store.Metrics{ValAccuracy: 0.9, CompressedBytes: int64(1000 + i), Reward: 0.5},
				[]store.Latency{{Device: dev, Batch: 1, Stats: accel.LatencyStats{Runs: 30, Median: time.Duration(i+1) * time.Microsecond}}}, weights)
		}
		if err == nil {
			err = db.SaveCheckpoint(ctx, st.ID, i, weights)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	errs, outs := readers.Finish()
	for i, err := range errs {
		t.Logf("query process %d: %s", i, strings.TrimSpace(outs[i]))
		if err != nil {
			t.Errorf("query process %d failed (%v): %s", i, err, outs[i])
		}
	}
	if err := db.IntegrityCheck(); err != nil {
		t.Fatal(err)
	}
}

// `--device cpu` finds this machine's CPU model measured at another thread
// count by its name, and falls back to every CPU with a note when the
// database has only other models.
func TestResolveQueryDevice(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hwnas.db")
	db, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	one := accel.DetectCPU(1, "test") // this CPU, one thread
	other := accel.Device{Backend: "cpu", Name: "Made-up CPU", Cores: 4}
	other.Fingerprint = other.ComputeFingerprint()
	if err := db.PutDevice(ctx, one); err != nil {
		t.Fatal(err)
	}
	db.Close()
	r, err := store.OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	matched, note, err := resolveQueryDevice(ctx, r, "cpu")
	r.Close()
	local := accel.DetectCPU(0, cpu.ISA())
	if err != nil || note != "" || (matched != one.Name && matched != local.Fingerprint) {
		t.Fatalf("this CPU at 1 thread: matched %q note %q err %v", matched, note, err)
	}

	path2 := filepath.Join(t.TempDir(), "hwnas.db")
	db, _ = store.Open(path2)
	db.PutDevice(ctx, other)
	db.Close()
	r, _ = store.OpenReadOnly(path2)
	defer r.Close()
	matched, note, err = resolveQueryDevice(ctx, r, "cpu")
	if err != nil || matched != "cpu" || !strings.Contains(note, "showing every cpu device") {
		t.Fatalf("only another CPU: matched %q note %q err %v", matched, note, err)
	}
	if _, _, err := resolveQueryDevice(ctx, r, "cuda:3"); !isBadInput(err) || !strings.Contains(err.Error(), `cpu "Made-up CPU"`) {
		t.Fatalf("cuda with no results: err = %v", err)
	}
	if m, _, err := resolveQueryDevice(ctx, r, other.Fingerprint); err != nil || m != other.Fingerprint {
		t.Fatalf("fingerprint: %q, %v", m, err)
	}
}
