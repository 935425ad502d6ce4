package search

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	_ "hwnas/cpu" // the worker measures on the cpu backend
	"hwnas/nas"
)

// workerEnv makes the test binary act as `hwnas worker` (see TestMain).
const workerEnv = "HWNAS_SEARCH_TEST_WORKER"

// TestMain lets the test binary act as a worker (workerEnv, checked
// first: workers inherit the coordinator's environment) or as a search
// coordinator (coordEnv) for the real-process tests.
func TestMain(m *testing.M) {
	if os.Getenv(workerEnv) == "1" {
		if err := ServeWorker(context.Background(), os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "worker:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if spec := os.Getenv(coordEnv); spec != "" {
		if err := runTestCoordinator(spec); err != nil {
			fmt.Fprintln(os.Stderr, "coordinator:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	code := m.Run()
	if miniDir != "" {
		os.RemoveAll(miniDir)
	}
	os.Exit(code)
}

// testWorker is the command that runs this test binary as a worker.
func testWorker(t *testing.T) []string {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return []string{exe}
}

func tinySpec(t *testing.T, trial int) *TrialSpec {
	a, err := nas.BuiltinArch("lenet300")
	if err != nil {
		t.Fatal(err)
	}
	return &TrialSpec{Study: "t", Trial: trial, Arch: a, Data: t.TempDir(), Epochs: 1, Subset: 100, Device: "cpu", Batch: 1}
}

// TestRunWorkerFaults runs real worker processes with forced faults and
// checks each is reported with its reason, within its limits.
func TestRunWorkerFaults(t *testing.T) {
	for _, tc := range []struct {
		fault, reason, detail string
		lim                   WorkerLimits
	}{
		{"crash", FailCrash, "forced worker fault", WorkerLimits{Timeout: time.Minute}},
		{"hang", FailTimeout, "no result after 1s", WorkerLimits{Timeout: time.Second}},
		{"oom", FailOOM, "worker", WorkerLimits{Timeout: time.Minute, MemoryBytes: 1 << 30}},
	} {
		t.Run(tc.fault, func(t *testing.T) {
			t0 := time.Now()
			_, err := RunWorker(context.Background(), testWorker(t), []string{workerEnv + "=1", FaultEnv + "=" + tc.fault + "@7"}, tinySpec(t, 7), tc.lim)
			var te *TrialError
			if !errors.As(err, &te) || te.Reason != tc.reason || !strings.Contains(te.Detail, tc.detail) {
				t.Fatalf("error %v, want reason %q with %q", err, tc.reason, tc.detail)
			}
			if el := time.Since(t0); el > 30*time.Second {
				t.Fatalf("took %v", el)
			}
		})
	}
	// The fault is for trial 7 only: trial 8 gets past it and fails on
	// the missing data instead, which the worker reports as an error.
	_, err := RunWorker(context.Background(), testWorker(t), []string{workerEnv + "=1", FaultEnv + "=crash@7"}, tinySpec(t, 8), WorkerLimits{Timeout: time.Minute})
	var te *TrialError
	if !errors.As(err, &te) || te.Reason != FailError || !strings.Contains(te.Detail, "data") {
		t.Fatalf("trial 8: %v", err)
	}
	// A cancelled coordinator context is not the trial's failure.
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, err = RunWorker(ctx, testWorker(t), []string{workerEnv + "=1", FaultEnv + "=hang"}, tinySpec(t, 1), WorkerLimits{Timeout: time.Minute})
	if !errors.Is(err, context.DeadlineExceeded) || errors.As(err, &te) {
		t.Fatalf("cancelled run: %v", err)
	}
	if _, err := RunWorker(context.Background(), []string{"/nonexistent/hwnas"}, nil, tinySpec(t, 1), WorkerLimits{}); err == nil || errors.As(err, &te) {
		t.Fatalf("missing worker binary: %v", err)
	}
}
