package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"hwnas/internal/testproc"
	"hwnas/store/pgtest"
)

// The tests below re-run this test binary as helper processes: a reader
// that queries in a loop, and a writer that is killed with SIGKILL. The
// environment variable selects the role.
const helperEnv = "HWNAS_STORE_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		code := m.Run()
		pgtest.StopShared()
		os.Exit(code)
	case "reader":
		os.Exit(readerMain(os.Getenv("HWNAS_STORE_DB"), os.Getenv("HWNAS_STORE_STOP")))
	case "writer":
		os.Exit(writerMain(os.Getenv("HWNAS_STORE_DB")))
	default:
		fmt.Fprintln(os.Stderr, "unknown helper role")
		os.Exit(3)
	}
}

func helper(t *testing.T, role, db, stop string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+role, "HWNAS_STORE_DB="+db, "HWNAS_STORE_STOP="+stop)
	return cmd
}

// readerMain queries the database as `hwnas best` and `hwnas trials` do
// until the stop file appears, reopening it every few rounds, and prints
// "reads N errors M" (and the first errors). It calls testproc.Ready
// after its first round.
func readerMain(path, stop string) int {
	reads, errs := 0, 0
	var first []string
	fail := func(err error) {
		errs++
		if len(first) < 5 {
			first = append(first, err.Error())
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for round := 0; time.Now().Before(deadline); round++ {
		if testproc.Stopped(stop) {
			break
		}
		d, err := OpenReadOnly(path)
		if err != nil {
			fail(err)
			continue
		}
		for range 5 {
			s, err := d.GetStudy(ctx, "busy")
			if err != nil {
				fail(err)
				continue
			}
			if _, err := d.ListStudies(ctx); err != nil {
				fail(err)
			}
			if _, err := d.ListTrials(ctx, s.ID, TrialFilter{}); err != nil {
				fail(err)
			}
			if _, err := d.Best(ctx, Query{Device: "cpu", N: 5}); err != nil {
				fail(err)
			}
			reads += 4
		}
		d.Close()
		if round == 0 {
			testproc.Ready(stop)
		}
	}
	fmt.Printf("reads %d errors %d\n", reads, errs)
	for _, e := range first {
		fmt.Println(e)
	}
	if errs > 0 || reads == 0 {
		return 1
	}
	return 0
}

// TestConcurrentReaderProcesses runs three reader processes in a loop while
// this process writes trials: none may see an error ("database is locked"
// above all).
func TestConcurrentReaderProcesses(t *testing.T) {
	dir := t.TempDir()
	path, stop := filepath.Join(dir, "busy.db"), filepath.Join(dir, "stop")
	w, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	cpu := testDevice("Test CPU", "cpu", 2)
	s, err := w.CreateStudy(ctx, Study{Name: "busy", DeviceSpec: "cpu", DeviceName: cpu.Name, DeviceFingerprint: cpu.Fingerprint})
	if err != nil {
		t.Fatal(err)
	}
	addDone(t, w, s.ID, cpu, 0.5, 100, time.Microsecond)

	const readers = 3
	procs := testproc.Start(t, readers, []string{"-test.run=^$"},
		[]string{helperEnv + "=reader", "HWNAS_STORE_DB=" + path, "HWNAS_STORE_STOP=" + stop}, stop, 30*time.Second)

	weights := bytes.Repeat([]byte{7}, 20000)
	const trials = 500
	for i := range trials {
		tr := addDone(t, w, s.ID, cpu, 0.9+float64(i)/10000, int64(1000+i), time.Duration(100+i)*time.Microsecond)
		if err := w.SaveCheckpoint(ctx, s.ID, i, weights); err != nil {
			t.Fatal(err)
		}
		if err := w.PutLatency(ctx, tr.ID, lat(cpu, 8, time.Millisecond)); err != nil {
			t.Fatal(err)
		}
	}
	errs, outs := procs.Finish()
	for i, err := range errs {
		t.Logf("reader %d: %s", i, strings.TrimSpace(outs[i]))
		if err != nil {
			t.Errorf("reader %d failed (%v): %s", i, err, outs[i])
		}
	}
	if err := w.IntegrityCheck(); err != nil {
		t.Fatal(err)
	}
}

// writerMain adds and finishes trials as fast as it can until killed.
func writerMain(path string) int {
	d, err := Open(path)
	if err != nil {
		fmt.Println(err)
		return 1
	}
	s, err := d.GetStudy(ctx, "crash")
	if err != nil {
		fmt.Println(err)
		return 1
	}
	cpu := testDevice("Test CPU", "cpu", 2)
	weights := bytes.Repeat([]byte{1, 2, 3, 4}, 5000)
	for i := 0; ; i++ {
		tr, err := d.AddTrial(ctx, s.ID, TrialSpec{Decisions: json.RawMessage(fmt.Sprintf("[%d]", i))})
		if err == nil {
			err = d.StartTrial(ctx, tr.ID, "w")
		}
		if err == nil {
			err = d.SaveCheckpoint(ctx, s.ID, i, weights[:100])
		}
		if err == nil {
			err = d.FinishTrial(ctx, tr.ID, Metrics{ValAccuracy: 0.5, CompressedBytes: 10, Reward: 0.5},
				[]Latency{lat(cpu, 1, time.Microsecond)}, weights)
		}
		if err != nil {
			fmt.Println(err)
			return 1
		}
	}
}

// TestKilledWriter kills a writer process with SIGKILL in the middle of its
// work and checks what it leaves: an intact database, trial numbers
// 0..n-1 without gaps or repeats, every done trial complete (metrics,
// latency, weights) and no other trial with any of them; RequeueRunning
// then leaves nothing running and numbering continues at n.
func TestKilledWriter(t *testing.T) {
	path := filepath.Join(t.TempDir(), "crash.db")
	d, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := d.CreateStudy(ctx, Study{Name: "crash"})
	d.Close()

	for kill := range 3 {
		cmd := helper(t, "writer", path, "")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Kill it once it has written a few more trials.
		r, err := waitForTrials(path, 20*(kill+1))
		if err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("%v; writer said: %s", err, out.String())
		}
		r.Close()
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()

		// A reader opens the crashed database (its -wal and -shm left
		// behind) before any writer has recovered it.
		r, err = OpenReadOnly(path)
		if err != nil {
			t.Fatalf("read-only open after the kill: %v", err)
		}
		if _, err := r.ListTrials(ctx, s.ID, TrialFilter{}); err != nil {
			t.Fatalf("read after the kill: %v", err)
		}
		r.Close()

		d, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.IntegrityCheck(); err != nil {
			t.Fatal(err)
		}
		trials, err := d.ListTrials(ctx, s.ID, TrialFilter{})
		if err != nil {
			t.Fatal(err)
		}
		running := 0
		for i, tr := range trials {
			if tr.Number != i {
				t.Fatalf("after kill %d: trial at %d has number %d", kill, i, tr.Number)
			}
			_, werr := d.TrialWeights(ctx, tr.ID)
			complete := tr.Metrics != nil && len(tr.Latencies) == 1 && werr == nil
			switch tr.Status {
			case Done:
				if !complete {
					t.Fatalf("done trial %d incomplete: metrics %v latencies %d weights %v", tr.Number, tr.Metrics, len(tr.Latencies), werr)
				}
			case Running, Pending:
				running++
				if tr.Metrics != nil || len(tr.Latencies) != 0 || werr == nil {
					t.Fatalf("%s trial %d has results", tr.Status, tr.Number)
				}
			case Failed: // failed by an earlier round below
				if tr.Error != "killed" {
					t.Fatalf("trial %d failed: %s", tr.Number, tr.Error)
				}
			}
		}
		if running > 1 {
			t.Fatalf("%d trials in flight, the writer ran one at a time", running)
		}
		if _, err := d.RequeueRunning(ctx, s.ID); err != nil {
			t.Fatal(err)
		}
		if left, _ := d.ListTrials(ctx, s.ID, TrialFilter{Status: Running}); len(left) != 0 {
			t.Fatalf("%d trials still running after RequeueRunning", len(left))
		}
		// Finish or fail what was requeued so the next round starts clean.
		for _, tr := range trials {
			if tr.Status != Done {
				d.FailTrial(ctx, tr.ID, "killed")
			}
		}
		if n, _ := d.NextTrialNumber(ctx, s.ID); n != len(trials) {
			t.Fatalf("next number %d after %d trials", n, len(trials))
		}
		t.Logf("kill %d: %d trials, %d were in flight", kill, len(trials), running)
		d.Close()
	}
}

// waitForTrials polls read-only until the database holds n done trials.
func waitForTrials(path string, n int) (*DB, error) {
	start := time.Now()
	for time.Since(start) < 30*time.Second {
		if r, err := OpenReadOnly(path); err == nil {
			ss, err := r.ListStudies(ctx)
			if err == nil && len(ss) == 1 && ss[0].Done >= n {
				return r, nil
			}
			r.Close()
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil, fmt.Errorf("the writer did not finish %d trials in 30s", n)
}
