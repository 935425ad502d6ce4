package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"hwnas/accel"
	"hwnas/internal/testproc"
	"hwnas/store"
	"hwnas/store/pgtest"
)

func TestMain(m *testing.M) {
	if os.Getenv(cliEnv) != "" {
		os.Exit(run(context.Background(), os.Args[1:]))
	}
	code := m.Run()
	pgtest.StopShared()
	os.Exit(code)
}

// scaleEnv makes the test binary act as one process of a study spread over
// machines (TestScaleHelperProcess): "coord", "worker", "follow" or
// "reader", with the database URL, study and data folder in the other
// variables.
const scaleEnv = "HWNAS_SCALE_HELPER"

var trialProcess = []string{os.Args[0], "-test.run=^TestSearchHelperProcess$"}

const scaleLease = 3 * time.Second

// TestScaleHelperProcess is not a test: the tests below re-run the test
// binary with HWNAS_SCALE_HELPER set to run one role.
func TestScaleHelperProcess(t *testing.T) {
	role := os.Getenv(scaleEnv)
	if role == "" {
		return
	}
	db, study, data := os.Getenv("HWNAS_SCALE_DB"), os.Getenv("HWNAS_SCALE_STUDY"), os.Getenv("HWNAS_SCALE_DATA")
	ctx := context.Background()
	var err error
	switch role {
	case "coord":
		trials, _ := strconv.Atoi(os.Getenv("HWNAS_SCALE_TRIALS"))
		err = runSearch(ctx, io.Discard, scaleSearch(db, study, data, trials))
	case "worker":
		err = runWorker(ctx, workerOptions{DB: db, Study: study, Workers: 1, Lease: scaleLease, TrialTimeout: 2 * time.Minute,
			TrialMemory: 4 << 30, worker: trialProcess, workerEnv: []string{"HWNAS_SEARCH_HELPER=worker"}, stderr: os.Stderr})
	case "follow":
		err = runMeasure(ctx, os.Stdout, measureOptions{Study: study, DB: db, Device: "cpu", Threads: 2, Batch: 1, Follow: true,
			Lease: scaleLease, Poll: 200 * time.Millisecond, JSON: true, stderr: os.Stderr,
			rounds: testRounds})
	case "reader":
		// `hwnas best` in a loop until the stop file appears.
		stop := os.Getenv("HWNAS_SCALE_STOP")
		rootCmd.SetOut(io.Discard)
		runs, failures := 0, 0
		for deadline := time.Now().Add(5 * time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if testproc.Stopped(stop) {
				break
			}
			runs++
			if code := run(ctx, []string{"best", "--db", db, "--device", "cpu", "-n", "3", "--json"}); code != 0 {
				failures++
			}
			if runs == 1 {
				testproc.Ready(stop)
			}
		}
		fmt.Printf("runs %d failures %d\n", runs, failures)
		if failures > 0 {
			os.Exit(1)
		}
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// scaleSearch is the coordinator of the scale tests: random search (fast
// proposals), tiny trials, no local workers.
func scaleSearch(db, study, data string, trials int) searchOptions {
	return searchOptions{rounds: testRounds, Study: study, DB: db, Device: "cpu", Strategy: "random", Trials: trials, Reward: "soft",
		LatencyTarget: "50us", Data: data, Epochs: 1, Subset: 200, ValSubset: 100, Optimizer: "adam", LR: 0.02,
		TrainBatch: 32, Seed: 4, Threads: 1, Batch: 1, TrialTimeout: 2 * time.Minute, TrialMemory: 4 << 30,
		Lease: scaleLease, coordOnly: true, progress: 0}
}

func startScale(t *testing.T, role, db, study, data string, extra ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestScaleHelperProcess$")
	cmd.Env = append(os.Environ(), scaleEnv+"="+role, "HWNAS_SCALE_DB="+db, "HWNAS_SCALE_STUDY="+study, "HWNAS_SCALE_DATA="+data)
	cmd.Env = append(cmd.Env, extra...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	})
	return cmd, &out
}

// waitFor polls cond every 50 ms until it holds or limit passes.
func waitFor(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	for start := time.Now(); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Since(start) > limit {
			t.Fatalf("%s: not within %v", what, limit)
		}
	}
}

// TestPostgresStudyAcrossProcesses is the many-machines layout on one
// machine: a PostgreSQL server, a coordinator and three worker processes
// (as separate machines would run them), a measurer of another device
// fingerprint, and 20 processes querying `hwnas best` meanwhile. One
// worker is killed with SIGKILL mid-trial (another finishes its trial
// within a lease), then the coordinator (a rerun resumes): all 30 trials
// finish, none twice, none left running, every query answers, and the
// measurer measured every trial.
func TestPostgresStudyAcrossProcesses(t *testing.T) {
	url := pgtest.NewDatabase(t)
	data := searchTestData(t)
	const study, trials = "pg", 30
	ctx := context.Background()
	coord, coordOut := startScale(t, "coord", url, study, data, "HWNAS_SCALE_TRIALS="+strconv.Itoa(trials))
	var workers []*exec.Cmd
	var outs []*bytes.Buffer
	for range 3 {
		w, out := startScale(t, "worker", url, study, data)
		workers, outs = append(workers, w), append(outs, out)
	}
	follower, followOut := startScale(t, "follow", url, study, data)

	var db *store.DB
	waitFor(t, "the study", time.Minute, func() bool {
		var err error
		if db == nil {
			db, err = store.OpenReadOnly(url)
		}
		return err == nil && db != nil && func() bool { _, err := db.GetStudy(ctx, study); return err == nil }()
	})
	defer db.Close()
	st, _ := db.GetStudy(ctx, study)
	counts := func() store.TrialCounts {
		c, err := db.CountTrials(ctx, st.ID)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	waitFor(t, "a first finished trial", 2*time.Minute, func() bool { return counts().Done > 0 })
	stop := filepath.Join(t.TempDir(), "stop")
	readers := testproc.Start(t, 20, []string{"-test.run=^TestScaleHelperProcess$"}, []string{scaleEnv + "=reader", "HWNAS_SCALE_DB=" + url, "HWNAS_SCALE_STOP=" + stop}, stop, 2*time.Minute)

	// Kill worker 0 in the middle of a trial.
	victim := workers[0].Process.Pid
	var held store.Trial
	waitFor(t, "worker 0 running a trial", 2*time.Minute, func() bool {
		ts, _ := db.ListTrials(ctx, st.ID, store.TrialFilter{Status: store.Running})
		for _, tr := range ts {
			if strings.Contains(tr.Worker, "/"+strconv.Itoa(victim)+"/") {
				held = tr
				return true
			}
		}
		return false
	})
	syscall.Kill(-victim, syscall.SIGKILL)
	killed := time.Now()
	workers[0].Wait()
	var reclaimed, finished time.Duration
	waitFor(t, "the killed worker's trial finished by another", 2*time.Minute, func() bool {
		tr, err := db.GetTrial(ctx, held.ID)
		if err != nil {
			t.Fatal(err)
		}
		if reclaimed == 0 && tr.Attempts > held.Attempts {
			reclaimed = time.Since(killed)
		}
		if tr.Status == store.Done || tr.Status == store.Failed {
			finished = time.Since(killed)
			if tr.Attempts != held.Attempts+1 || strings.Contains(tr.Worker, "/"+strconv.Itoa(victim)+"/") {
				t.Fatalf("trial %d after the kill: %+v", tr.Number, tr)
			}
			return true
		}
		return false
	})
	t.Logf("worker killed mid-trial %d: re-claimed after %v, finished after %v (lease %v)", held.Number, reclaimed.Round(time.Millisecond), finished.Round(time.Millisecond), scaleLease)
	// Re-claimed because the lease ran out, not at the trial's 2-minute
	// timeout; the bound leaves the 2-core machine room for a slow poll.
	if reclaimed > 3*scaleLease {
		t.Errorf("re-claimed %v after the kill, lease %v", reclaimed, scaleLease)
	}

	// Kill the coordinator once a third of the study is done; rerun it.
	waitFor(t, "10 finished trials", 3*time.Minute, func() bool { return counts().Done >= 10 })
	syscall.Kill(-coord.Process.Pid, syscall.SIGKILL)
	coord.Wait()
	before, _ := db.ListTrials(ctx, st.ID, store.TrialFilter{Status: store.Done})
	coord2, coord2Out := startScale(t, "coord", url, study, data, "HWNAS_SCALE_TRIALS="+strconv.Itoa(trials))
	if err := coord2.Wait(); err != nil {
		t.Fatalf("resumed coordinator: %v\n%s\nfirst coordinator:\n%s", err, coord2Out, coordOut)
	}
	for i, w := range workers[1:] {
		done := make(chan error, 1)
		go func() { done <- w.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("worker %d: %v\n%s", i+1, err, outs[i+1])
			}
		case <-time.After(time.Minute):
			t.Errorf("worker %d did not exit when the study was done\n%s", i+1, outs[i+1])
		}
	}
	errs, rout := readers.Finish()
	queries := 0
	for i, err := range errs {
		var runs int
		fmt.Sscanf(rout[i][strings.LastIndex(rout[i], "runs "):], "runs %d", &runs)
		queries += runs
		if err != nil || !strings.Contains(rout[i], "failures 0") {
			t.Errorf("reader %d: %v\n%s", i, err, rout[i])
		}
	}
	t.Logf("20 readers ran %d `hwnas best` queries, 0 failed", queries)

	all, err := db.ListTrials(ctx, st.ID, store.TrialFilter{})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, tr := range all {
		if seen[tr.Number] {
			t.Fatalf("trial number %d twice", tr.Number)
		}
		seen[tr.Number] = true
		if tr.Status != store.Done && tr.Status != store.Failed {
			t.Fatalf("trial %d left %s", tr.Number, tr.Status)
		}
	}
	if len(all) != trials {
		t.Fatalf("%d trials, want %d", len(all), trials)
	}
	for _, b := range before {
		after, _ := db.GetTrial(ctx, b.ID)
		if after.Status != store.Done || after.Metrics == nil || *after.Metrics != *b.Metrics {
			t.Fatalf("trial %d changed after the coordinator was killed: %+v", b.Number, after)
		}
	}
	if s, _ := db.GetStudy(ctx, study); s.Status != store.StudyDone {
		t.Fatalf("study status %s", s.Status)
	}

	// The measurer (2 threads: another device fingerprint) measured every
	// finished trial and exited once the study was done.
	fdone := make(chan error, 1)
	go func() { fdone <- follower.Wait() }()
	select {
	case err := <-fdone:
		if err != nil {
			t.Fatalf("measure --follow: %v\n%s", err, followOut)
		}
	case <-time.After(time.Minute):
		t.Fatalf("measure --follow did not exit after the study\n%s", followOut)
	}
	be, err := accel.Open("cpu", accel.Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	dev2 := be.Device()
	be.Close()
	measured := 0
	for _, tr := range all {
		if tr.Status != store.Done {
			continue
		}
		full, _ := db.GetTrial(ctx, tr.ID)
		ok := false
		for _, l := range full.Latencies {
			ok = ok || (l.Device.Fingerprint == dev2.Fingerprint && l.Stats.Median > 0)
		}
		if !ok {
			t.Fatalf("trial %d has no latency on %s: %+v\n%s", tr.Number, dev2.Fingerprint, full.Latencies, followOut)
		}
		measured++
	}
	var out bytes.Buffer
	if err := runBest(ctx, &out, bestOptions{DB: url, Device: dev2.Fingerprint, N: 3, Batch: 1, By: "val", JSON: true}); err != nil {
		t.Fatal(err)
	}
	var rep bestReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil || len(rep.Results) == 0 || rep.Results[0].Latency.Device.Fingerprint != dev2.Fingerprint {
		t.Fatalf("best --device %s: %s (%v)", dev2.Fingerprint, out.String(), err)
	}
	t.Logf("measure --follow on %s measured all %d finished trials", dev2.Fingerprint, measured)
	// Every query command answers against PostgreSQL.
	rootCmd.SetOut(io.Discard)
	defer rootCmd.SetOut(nil)
	for _, args := range [][]string{{"studies", "--db", url}, {"trials", "--db", url, "--study", study},
		{"pareto", "--db", url, "--study", study}, {"export", "--db", url, "--trial", strconv.FormatInt(rep.Results[0].TrialID, 10), "-o", filepath.Join(t.TempDir(), "m.onnx")}} {
		if code := run(ctx, args); code != 0 {
			t.Errorf("hwnas %s: exit %d", strings.Join(args, " "), code)
		}
	}
}

// TestPinnedStudyWaitsForMeasurer: a study pinned to another device
// (--measure-device) trains in the search's workers and gets its latency
// and reward from `hwnas measure --follow` on that device; a trial waits
// trained (running, stage measure) while no measurer is there, and is
// completed once one comes. Then the database is imported into another
// twice: the second import adds nothing.
func TestPinnedStudyWaitsForMeasurer(t *testing.T) {
	data := searchTestData(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "pinned.db")
	ctx := context.Background()
	be, err := accel.Open("cpu", accel.Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	board := be.Device()
	be.Close()
	o := scaleSearch(path, "pinned", data, 3)
	o.coordOnly, o.Workers, o.MeasureDevice = false, 1, board.Fingerprint
	o.worker, o.workerEnv = trialProcess, []string{"HWNAS_SEARCH_HELPER=worker"}
	searched := make(chan error, 1)
	go func() { searched <- runSearch(ctx, io.Discard, o) }()
	var db *store.DB
	waitFor(t, "a trained trial waiting for its measurement", 2*time.Minute, func() bool {
		if db == nil {
			db, _ = store.OpenReadOnly(path)
			if db == nil {
				return false
			}
		}
		st, err := db.GetStudy(ctx, "pinned")
		if err != nil {
			return false
		}
		c, _ := db.CountTrials(ctx, st.ID)
		return c.Measuring > 0
	})
	defer db.Close()
	select {
	case err := <-searched:
		t.Fatalf("the search ended without its measurements: %v", err)
	case <-time.After(time.Second):
	}
	var out bytes.Buffer
	if err := runMeasure(ctx, &out, measureOptions{Study: "pinned", DB: path, Device: "cpu", Threads: 2, Batch: 1, Follow: true,
		Lease: scaleLease, Poll: 100 * time.Millisecond, JSON: true,
		rounds: testRounds}); err != nil {
		t.Fatal(err)
	}
	if err := <-searched; err != nil {
		t.Fatal(err)
	}
	st, _ := db.GetStudy(ctx, "pinned")
	trials, _ := db.ListTrials(ctx, st.ID, store.TrialFilter{})
	if len(trials) != 3 || st.Status != store.StudyDone {
		t.Fatalf("%d trials, study %s", len(trials), st.Status)
	}
	for _, tr := range trials {
		if tr.Status != store.Done || tr.Metrics == nil || tr.Metrics.Reward <= 0 || len(tr.Latencies) != 1 ||
			tr.Latencies[0].Device.Fingerprint != board.Fingerprint {
			t.Fatalf("trial %d: %+v metrics %+v latencies %+v\n%s", tr.Number, tr, tr.Metrics, tr.Latencies, out.String())
		}
	}
	// Import into another database twice.
	other := filepath.Join(dir, "main.db")
	for i, want := range []string{"1 studies, 3 trials, 3 latencies, 3 weights", "0 studies, 0 trials, 0 latencies, 0 weights, 0 devices, 0 op latencies, 0 reference figures, 0 checkpoints"} {
		out.Reset()
		if err := runImport(ctx, &out, path, importOptions{DB: other}); err != nil || !strings.Contains(out.String(), want) {
			t.Fatalf("import %d: %q (%v), want %q", i+1, out.String(), err, want)
		}
	}
	if err := runImport(ctx, io.Discard, other, importOptions{DB: other}); !isBadInput(err) {
		t.Fatalf("import into itself: %v", err)
	}
}
