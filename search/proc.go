package search

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// WorkerLimits bound one worker process.
type WorkerLimits struct {
	// Timeout is the wall-clock limit of the whole trial (0: none).
	Timeout time.Duration
	// MemoryBytes is the address-space limit (RLIMIT_AS) set on the child
	// right after it starts (0: none). Go and cgo reserve address space
	// beyond what they touch, so leave headroom (≥ 1 GiB).
	MemoryBytes int64
}

// Failure reasons stored with a failed trial.
const (
	FailCrash   = "crash"
	FailTimeout = "timeout"
	FailOOM     = "out of memory"
	FailNaN     = "nan"
	FailInvalid = "invalid"
	FailError   = "error"
	// FailSkipped: not trained, the predictor placed the candidate far
	// outside the latency budget (StudyConfig.SkipOver).
	FailSkipped = "skipped"
)

// TrialError is why a trial failed: Reason is one of the Fail* constants
// and Detail the evidence (exit status, the tail of the worker's stderr,
// the worker's own message).
type TrialError struct {
	Reason string
	Detail string
}

func (e *TrialError) Error() string { return e.Reason + ": " + e.Detail }

// RunWorker starts command (typically [os.Executable(), "worker"]) in its
// own process group, writes spec as JSON to its stdin, enforces the
// limits, and decodes the TrialResult it prints on stdout. Every way a
// trial can fail (non-zero exit, signal, timeout, out of memory, a result
// with Error set, unreadable output) comes back as a *TrialError; other
// errors mean the worker could not be started at all.
func RunWorker(ctx context.Context, command []string, env []string, spec *TrialSpec, lim WorkerLimits) (*TrialResult, error) {
	return runTrialProcess(ctx, command, env, spec, lim, procPlace{})
}

// procPlace is where a trial process runs among its siblings: the cores
// it is pinned to (nil: any) and the quiet slot its measurement takes
// (nil: none).
type procPlace struct {
	cpus  []int
	quiet *QuietSlot
}

func runTrialProcess(ctx context.Context, command []string, env []string, spec *TrialSpec, lim WorkerLimits, place procPlace) (*TrialResult, error) {
	if len(command) == 0 {
		return nil, errors.New("worker: empty command")
	}
	in, err := json.Marshal(spec)
	if err != nil {
		return nil, fmt.Errorf("worker: encoding trial spec: %w", err)
	}
	runCtx := ctx
	if lim.Timeout > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, lim.Timeout)
		defer cancel()
	}
	cmd := exec.CommandContext(runCtx, command[0], command[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = bytes.NewReader(in)
	var stdout bytes.Buffer
	stderr := &tailBuffer{max: 4096}
	cmd.Stdout, cmd.Stderr = &stdout, stderr
	// A process group, so a timeout also ends what the worker started
	// (and, on Linux, a worker does not outlive a coordinator killed with
	// -9: workerProcAttr).
	cmd.SysProcAttr = workerProcAttr()
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	var pipes *quietPipes
	if place.quiet != nil {
		if pipes, err = newQuietPipes(); err != nil {
			return nil, fmt.Errorf("worker: %w", err)
		}
		cmd.ExtraFiles = []*os.File{pipes.reqW, pipes.grantR}
		cmd.Env = append(cmd.Env, QuietEnv+"=3,4")
	}
	err = startPinned(cmd.Start, place.cpus)
	if pipes != nil {
		pipes.reqW.Close() // the child's ends
		pipes.grantR.Close()
		if err != nil {
			pipes.reqR.Close()
			pipes.grantW.Close()
		}
	}
	if err != nil {
		return nil, fmt.Errorf("worker: starting %s: %w", command[0], err)
	}
	if pipes != nil {
		pg := cmd.Process.Pid
		place.quiet.add(pg)
		defer place.quiet.remove(pg)
		go pipes.relay(place.quiet, pg)
	}
	if lim.MemoryBytes > 0 {
		if err := limitAddressSpace(cmd.Process.Pid, lim.MemoryBytes); err != nil {
			_ = cmd.Cancel()
			_ = cmd.Wait()
			return nil, fmt.Errorf("worker: setting the memory limit: %w", err)
		}
	}
	waitErr := cmd.Wait()
	tail := strings.TrimSpace(stderr.String())
	if ctx.Err() != nil {
		return nil, ctx.Err() // the coordinator is stopping: not the trial's fault
	}
	if runCtx.Err() == context.DeadlineExceeded {
		return nil, &TrialError{FailTimeout, fmt.Sprintf("no result after %v (killed)", lim.Timeout)}
	}
	var res TrialResult
	decErr := json.Unmarshal(stdout.Bytes(), &res)
	if decErr == nil && res.Error != "" {
		reason := res.FailReason
		if reason == "" {
			reason = FailError
		}
		return nil, &TrialError{reason, res.Error}
	}
	if waitErr != nil {
		reason := FailCrash
		if lim.MemoryBytes > 0 && looksOOM(tail) {
			reason = FailOOM
		}
		return nil, &TrialError{reason, fmt.Sprintf("worker %v; stderr: %s", waitErr, lastLines(tail, 6))}
	}
	if decErr != nil {
		return nil, &TrialError{FailCrash, fmt.Sprintf("worker printed no result (%v); stderr: %s", decErr, lastLines(tail, 6))}
	}
	if err := res.check(!spec.SkipMeasure); err != nil {
		return nil, &TrialError{FailNaN, err.Error()}
	}
	return &res, nil
}

// looksOOM recognises the messages of an allocation refused by RLIMIT_AS
// in Go, in C, and in threads that cannot get a stack (pthread_create
// fails with EAGAIN when the address space is exhausted).
func looksOOM(stderr string) bool {
	for _, s := range []string{"out of memory", "cannot allocate memory", "std::bad_alloc",
		"failed to create new os thread", "pthread_create failed"} {
		if strings.Contains(strings.ToLower(stderr), s) {
			return true
		}
	}
	return false
}

// lastLines shortens stderr to its first two and last n−2 lines, joined
// on one line: a Go panic names its cause first, a C abort last.
func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = append(append(lines[:2:2], "…"), lines[len(lines)-(n-2):]...)
	}
	return strings.Join(lines, " | ")
}

// tailBuffer keeps the first and last bytes written to it (a Go panic
// starts with its message, a C crash ends with it).
type tailBuffer struct {
	max       int
	head, buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	if len(t.head) < t.max/4 {
		n := min(len(p), t.max/4-len(t.head))
		t.head = append(t.head, p[:n]...)
	}
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append([]byte(nil), t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	if bytes.HasPrefix(t.buf, t.head) {
		return string(t.buf)
	}
	return string(t.head) + "\n…\n" + string(t.buf)
}
