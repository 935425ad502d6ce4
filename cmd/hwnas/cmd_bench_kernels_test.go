package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"hwnas/accel"
	"hwnas/cpu"
)

func TestRunBenchKernelsJSON(t *testing.T) {
	var out bytes.Buffer
	opts := benchKernelsOptions{
		Sizes: []int{8, 33}, Threads: 1, MTThreads: 2, ISA: cpu.SupportedISAs()[0], Rounds: 2, Clock: "thread", JSON: true,
		Latency: accel.LatencyOptions{Warmup: 1, MinRuns: 3, MinTime: time.Microsecond},
	}
	if err := runBenchKernels(context.Background(), &out, opts); err != nil {
		t.Fatal(err)
	}
	var rep benchKernelsReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("%v in %s", err, out.String())
	}
	if rep.ISA != "generic" || rep.Device.Backend != "cpu" {
		t.Errorf("isa %q backend %q, want generic and cpu", rep.ISA, rep.Device.Backend)
	}
	want := []struct {
		n, threads int
		clock      string
	}{{8, 1, "thread-cpu"}, {33, 1, "thread-cpu"}, {33, 2, "wall"}}
	if len(rep.Rows) != len(want) {
		t.Fatalf("%d rows, want %d: %s", len(rep.Rows), len(want), out.String())
	}
	for i, r := range rep.Rows {
		if r.Kernel != "sgemm" || r.N != want[i].n || r.Threads != want[i].threads || r.Clock != want[i].clock {
			t.Errorf("row %d = %+v, want sgemm n=%d threads=%d clock %s", i, r, want[i].n, want[i].threads, want[i].clock)
		}
		if !(r.HwnasGFLOPS > 0) || !(r.HwnasMedianUS > 0) {
			t.Errorf("row %d: non-positive figures %+v", i, r)
		}
		// GFLOP/s and the median time describe the same measurement.
		if g := 2 * float64(r.N*r.N*r.N) / (r.HwnasMedianUS * 1e3); g/r.HwnasGFLOPS < 0.999 || g/r.HwnasGFLOPS > 1.001 {
			t.Errorf("row %d: %g GFLOP/s does not match %g µs", i, r.HwnasGFLOPS, r.HwnasMedianUS)
		}
		if cpu.PeerBuiltIn != (r.PeerGFLOPS != nil && r.Ratio != nil) {
			t.Errorf("row %d: peer figures %v/%v with PeerBuiltIn %v", i, r.PeerGFLOPS, r.Ratio, cpu.PeerBuiltIn)
		}
	}
	if !cpu.PeerBuiltIn && !strings.Contains(rep.Peer, "not built in") {
		t.Errorf("openblas %q should say it is not built in", rep.Peer)
	}
	if cpu.ISA() == "generic" && len(cpu.SupportedISAs()) > 1 {
		t.Error("--isa was not restored after the run")
	}
}

func TestRunBenchKernelsText(t *testing.T) {
	var out bytes.Buffer
	opts := benchKernelsOptions{Sizes: []int{5}, Threads: 1, Rounds: 1, Clock: "wall",
		Latency: accel.LatencyOptions{Warmup: 1, MinRuns: 2, MinTime: time.Microsecond}}
	if err := runBenchKernels(context.Background(), &out, opts); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, want := range []string{"hwnas GFLOP/s", "OpenBLAS GFLOP/s", "\n     5        1        wall "} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
}

func TestRunBenchKernelsBadInput(t *testing.T) {
	for _, opts := range []benchKernelsOptions{
		{Sizes: nil, Rounds: 1, Clock: "wall"},
		{Sizes: []int{0}, Rounds: 1, Clock: "wall"},
		{Sizes: []int{4}, Threads: -1, Rounds: 1, Clock: "wall"},
		{Sizes: []int{4}, Rounds: 0, Clock: "wall"},
		{Sizes: []int{4}, Rounds: 1, Clock: "thread", ISA: "avx1024"},
		{Sizes: []int{4}, Rounds: 1, Clock: "sundial"},
	} {
		err := runBenchKernels(context.Background(), &bytes.Buffer{}, opts)
		var ue usageError
		if !errors.As(err, &ue) {
			t.Errorf("%+v: err %v, want a usage error", opts, err)
		}
	}
}
