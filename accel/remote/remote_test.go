package remote

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"hwnas/accel"
	_ "hwnas/cpu" // the backend the test workers serve
)

// serveEnv makes the test binary a worker: "cpu" serves the CPU backend
// with Serve, "garbage" prints what gorgonia.org/cu prints when cuInit fails
// and exits 1, as hwnas-cuda does on a machine without a GPU.
const serveEnv = "HWNAS_REMOTE_TEST_SERVE"

func TestMain(m *testing.M) {
	switch os.Getenv(serveEnv) {
	case "":
		os.Exit(m.Run())
	case "garbage":
		fmt.Println("Error in initialization, please refer to \"https://docs.nvidia.com/cuda/\" for details on: no CUDA-capable device is detected")
		os.Exit(1)
	default:
		reg, err := accel.Lookup(os.Getenv(serveEnv))
		if err == nil {
			err = Serve(os.Stdin, os.Stdout, reg)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "test worker:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
}

// workerConfig re-executes this test binary as a worker in mode.
func workerConfig(mode string) Config {
	return Config{Path: os.Args[0], Args: []string{"-test.run=^$"}, Env: []string{serveEnv + "=" + mode}, HelloTimeout: 30 * time.Second}
}

// testPlan is conv 3→4 (3×3, pad 1, ReLU) on 3×6×6, 2×2 max pool,
// flatten, linear 36→5: every weight a distinct deterministic value.
func testPlan() *accel.Plan {
	fill := func(n int, seed float32) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(math.Sin(float64(seed) + float64(i)*0.37))
		}
		return v
	}
	return &accel.Plan{
		Name:    "remote-test",
		Tensors: []accel.Shape{{3, 6, 6}, {4, 6, 6}, {4, 3, 3}, {36}, {5}},
		Input:   0, Output: 4,
		Ops: []accel.Op{
			{Name: "conv", Kind: accel.OpConv, In: []int{0}, Out: []int{1}, Act: accel.ActReLU,
				Conv: accel.ConvParams{K: 4, KH: 3, KW: 3, PadH: 1, PadW: 1}, W: fill(4*3*9, 1), B: fill(4, 2)},
			{Name: "pool", Kind: accel.OpMaxPool, In: []int{1}, Out: []int{2}, Pool: accel.PoolParams{KH: 2, KW: 2, StrideH: 2, StrideW: 2}},
			{Name: "flat", Kind: accel.OpFlatten, In: []int{2}, Out: []int{3}},
			{Name: "fc", Kind: accel.OpLinear, In: []int{3}, Out: []int{4}, W: fill(36*5, 3), B: fill(5, 4)},
		},
	}
}

func TestRoundTripMatchesInProcess(t *testing.T) {
	plan := testPlan()
	const batch = 3
	in := make([]float32, batch*plan.Tensors[0].Size())
	for i := range in {
		in[i] = float32(math.Cos(float64(i) * 0.11))
	}

	local, err := accel.Open("cpu", accel.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	lp, err := local.Compile(plan, batch)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]float32, batch*5)
	if err := lp.Run(in, want); err != nil {
		t.Fatal(err)
	}

	b, err := Open("cpu", workerConfig("cpu"), accel.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if got, w := b.Device(), local.Device(); got.Name != w.Name || got.Backend != "cpu" || got.Fingerprint != w.Fingerprint {
		t.Errorf("worker device %+v, want %+v", got, w)
	}
	p, err := b.Compile(plan, batch)
	if err != nil {
		t.Fatal(err)
	}
	if p.Batch() != batch || p.InputSize() != 108 || p.OutputSize() != 5 {
		t.Errorf("program sizes batch %d in %d out %d, want %d 108 5", p.Batch(), p.InputSize(), p.OutputSize(), batch)
	}
	got := make([]float32, batch*5)
	if err := p.Run(in, got); err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("output %d: worker %v, in process %v", i, got[i], want[i])
		}
	}
	if d, err := p.(accel.TimedProgram).RunTimed(in, got); err != nil || d <= 0 {
		t.Errorf("RunTimed = %v, %v; want a positive duration", d, err)
	}
	_, localOT := lp.(accel.OpTimedProgram)
	ot, remoteOT := p.(accel.OpTimedProgram)
	if localOT != remoteOT {
		t.Fatalf("worker program times its ops: %v, in process: %v", remoteOT, localOT)
	}
	if remoteOT {
		per := make([]time.Duration, len(plan.Ops))
		for i := range got {
			got[i] = 0
		}
		if err := ot.RunOpTimed(in, got, per); err != nil {
			t.Fatal(err)
		}
		if got[0] != want[0] || got[len(got)-1] != want[len(want)-1] || per[0] <= 0 || per[3] <= 0 {
			t.Errorf("op-timed run: out %v…, per op %v", got[:2], per)
		}
		if err := ot.RunOpTimed(in, got, per[:2]); err == nil {
			t.Error("op-timed run with 2 durations for 4 ops accepted")
		}
	}
	m, err := accel.Measure(b, p, in, accel.LatencyOptions{Warmup: 1, MinRuns: 7, MinTime: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if m.Latency.Runs < 7 || m.Latency.Median <= 0 || m.Batch != batch {
		t.Errorf("measurement %+v: want ≥7 runs, a positive median, batch %d", m, batch)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Run(in, got); err == nil || !strings.Contains(err.Error(), "no program") {
		t.Errorf("run after close: %v, want a no-program error", err)
	}
}

func TestErrorsKeepTheWorker(t *testing.T) {
	b, err := Open("cpu", workerConfig("cpu"), accel.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	bad := testPlan()
	bad.Ops[3].W = bad.Ops[3].W[:10]
	for _, tc := range []struct {
		name  string
		plan  *accel.Plan
		batch int
		want  string
	}{
		{"short weights", bad, 1, "weights"},
		{"nil plan", nil, 1, "nil plan"},
	} {
		if _, err := b.Compile(tc.plan, tc.batch); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: compile error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
	p, err := b.Compile(testPlan(), 2)
	if err != nil {
		t.Fatalf("compile after errors: %v", err)
	}
	out := make([]float32, 10)
	for _, in := range [][]float32{nil, make([]float32, 5), make([]float32, 217)} {
		if err := p.Run(in, out); err == nil || !strings.Contains(err.Error(), "want 216") {
			t.Errorf("run with %d inputs: %v, want a length error", len(in), err)
		}
	}
	if err := p.Run(make([]float32, 216), out); err != nil {
		t.Errorf("run after errors: %v", err)
	}
}

func TestWorkerCrash(t *testing.T) {
	b, err := Open("cpu", workerConfig("cpu"), accel.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	p, err := b.Compile(testPlan(), 1)
	if err != nil {
		t.Fatal(err)
	}
	proc, _ := os.FindProcess(b.Conn().Pid())
	if err := proc.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	out := make([]float32, 5)
	err1 := p.Run(make([]float32, 108), out)
	if err1 == nil || !strings.Contains(err1.Error(), "worker exited") || !strings.Contains(err1.Error(), "killed") {
		t.Fatalf("run on a killed worker: %v, want worker exited … killed", err1)
	}
	if _, err2 := b.Compile(testPlan(), 1); err2 == nil || err2.Error() != err1.Error() {
		t.Errorf("later call: %v, want the same sticky error", err2)
	}
}

func TestWorkerThatIsNotOne(t *testing.T) {
	_, err := Start(workerConfig("garbage"))
	if err == nil {
		t.Fatal("a worker printing text and exiting 1 started")
	}
	for _, want := range []string{"did not start", "exit status 1", "no CUDA-capable device is detected"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	_, err = Start(Config{Path: filepath.Join(t.TempDir(), "missing")})
	if err == nil || !strings.Contains(err.Error(), "start worker") {
		t.Errorf("missing binary: %v", err)
	}
	// A worker that serves an unknown backend ends without a hello.
	_, err = Open("nope", workerConfig("nope"), accel.Options{})
	if err == nil || !strings.Contains(err.Error(), `unknown device "nope"`) {
		t.Errorf("unknown backend: %v", err)
	}
}

func TestRegistrationDevicesAndReasons(t *testing.T) {
	reg := Registration("cpu-remote", func() (Config, error) { return workerConfig("cpu"), nil })
	devs, err := reg.Devices()
	if err != nil || len(devs) == 0 || devs[0].Backend != "cpu" {
		t.Fatalf("devices through a worker: %+v, %v", devs, err)
	}
	none := Registration("cuda-test", func() (Config, error) { return Config{}, ErrNoCUDA })
	if _, err := none.Devices(); !errors.Is(err, ErrNoCUDA) {
		t.Errorf("devices without a binary: %v, want ErrNoCUDA", err)
	}
	if _, err := none.Open(accel.Options{Index: 2}); !errors.Is(err, ErrNoCUDA) || !strings.Contains(err.Error(), "cuda-test:2") {
		t.Errorf("open without a binary: %v", err)
	}
	t.Setenv(workerEnv, "1")
	if _, err := reg.Open(accel.Options{}); !errors.Is(err, ErrNoCUDA) {
		t.Errorf("open inside a worker: %v, want ErrNoCUDA", err)
	}
}

func TestCUDAConfig(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "hwnas-cuda")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv(CUDABinEnv, bin)
	cfg, err := CUDAConfig()
	if err != nil || cfg.Path != bin || strings.Join(cfg.Args, " ") != "cuda-worker --backend cuda" {
		t.Errorf("CUDAConfig with %s set: %+v, %v", CUDABinEnv, cfg, err)
	}
	t.Setenv(CUDABinEnv, filepath.Join(dir, "absent"))
	if _, err := CUDAConfig(); err == nil || !strings.Contains(err.Error(), "absent") {
		t.Errorf("CUDAConfig with a missing file: %v", err)
	}
	t.Setenv(CUDABinEnv, "")
	// The test binary has no hwnas-cuda beside it.
	if _, err := CUDAConfig(); !errors.Is(err, ErrNoCUDA) {
		t.Errorf("CUDAConfig without a binary: %v, want ErrNoCUDA", err)
	}
}

func TestFrames(t *testing.T) {
	var buf bytes.Buffer
	want := request{Kind: kindRun, Program: 7, In: []float32{1, -2.5, float32(math.Inf(1))}, Timed: true}
	if err := writeFrame(&buf, &want); err != nil {
		t.Fatal(err)
	}
	var got request
	if err := readFrame(&buf, &got, maxFrame); err != nil {
		t.Fatal(err)
	}
	if got.Kind != want.Kind || got.Program != 7 || len(got.In) != 3 || got.In[1] != -2.5 || !math.IsInf(float64(got.In[2]), 1) || !got.Timed {
		t.Errorf("frame round trip: %+v, want %+v", got, want)
	}
	for _, tc := range []struct {
		name, data string
		limit      int
	}{
		{"text", "Error in initialization", maxHello},
		{"not gob", "\x00\x00\x00\x03abc", maxHello},
	} {
		var fe *frameError
		if err := readFrame(strings.NewReader(tc.data), &got, tc.limit); !errors.As(err, &fe) {
			t.Errorf("%s: %v, want a frameError", tc.name, err)
		}
	}
	if err := readFrame(strings.NewReader("\x00\x00\x00\x09abc"), &got, maxHello); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("truncated frame: %v, want ErrUnexpectedEOF", err)
	}
}
