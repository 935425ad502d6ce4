package search

import (
	"cmp"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"hwnas/accel"
	"hwnas/store"
)

// coordEnv makes the test binary run a search coordinator (see
// TestMain): HWNAS_SEARCH_TEST_COORD=db,study,data,trials.
const coordEnv = "HWNAS_SEARCH_TEST_COORD"

// fastRounds keeps measurements short in tests.
var fastRounds = accel.RoundsOptions{Rounds: 5, BurstTime: 100 * time.Microsecond}

func testConfig(dataDir, strategy string) StudyConfig {
	return StudyConfig{Strategy: strategy, Seed: 3, Device: "cpu", Data: dataDir, Epochs: 1, Subset: 300,
		Reward: RewardConfig{Mode: RewardSoft, LatencyTargetNs: int64(50 * time.Microsecond)},
		Batch:  1, Rounds: fastRounds, Threads: 1}
}

func testOptions(t *testing.T, db *store.DB, study string, cfg StudyConfig, trials int) Options {
	return Options{DB: db, Study: study, Config: cfg, Trials: trials, Worker: testWorker(t),
		WorkerEnv: []string{workerEnv + "=1"}, Limits: WorkerLimits{Timeout: 2 * time.Minute, MemoryBytes: 4 << 30}}
}

func openDB(t *testing.T, path string) *store.DB {
	t.Helper()
	db, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// checkTrials asserts the study's trials are numbered 0..n−1 without gaps
// or duplicates, none is pending or running, and returns them.
func checkTrials(t *testing.T, db *store.DB, study string, n int) []store.Trial {
	t.Helper()
	ctx := context.Background()
	st, err := db.GetStudy(ctx, study)
	if err != nil {
		t.Fatal(err)
	}
	trials, err := db.ListTrials(ctx, st.ID, store.TrialFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(trials) != n {
		t.Fatalf("%d trials, want %d", len(trials), n)
	}
	for i, tr := range trials {
		if tr.Number != i {
			t.Fatalf("trial %d has number %d", i, tr.Number)
		}
		if tr.Status != store.Done && tr.Status != store.Failed {
			t.Fatalf("trial %d is %s", i, tr.Status)
		}
	}
	if err := db.IntegrityCheck(); err != nil {
		t.Fatal(err)
	}
	return trials
}

// TestRunRecordsTrialsAndResumes runs a tiny real search (worker
// processes, SQLite), with a forced crash and NaN on two trials, then
// extends it: numbers continue, nothing is lost, the per-op table fills.
func TestRunRecordsTrialsAndResumes(t *testing.T) {
	dir := miniMNIST(t)
	path := filepath.Join(t.TempDir(), "hwnas.db")
	db := openDB(t, path)
	ctx := context.Background()
	o := testOptions(t, db, "s", testConfig(dir, "rl"), 4)
	o.WorkerEnv = append(o.WorkerEnv, FaultEnv+"=crash@1")
	var progress []Progress
	o.Progress = func(p Progress) { progress = append(progress, p) }
	sum, err := Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Done != 4 || sum.Failed != 1 || sum.Resumed || len(progress) != 4 || progress[3].Done != 4 || len(sum.Pareto) == 0 {
		t.Fatalf("summary %+v, %d progress calls", sum, len(progress))
	}
	// The three measured trials stored their per-op times: each is
	// predicted from the other two's.
	if sum.HeldOut.Trials != 3 {
		t.Fatalf("predictor held out over %d trials, want the 3 measured: %+v", sum.HeldOut.Trials, sum.HeldOut)
	}
	trials := checkTrials(t, db, "s", 4)
	if trials[1].Status != store.Failed || !strings.Contains(trials[1].Error, "crash") || !strings.Contains(trials[1].Error, "forced worker fault") {
		t.Fatalf("trial 1: %s %q", trials[1].Status, trials[1].Error)
	}
	var refs []time.Duration // the reference's figures, in any order the trials ran
	// The probe's figures on the device: its usual figure at any moment
	// was the median of some of them.
	probes, err := db.ReferenceHistory(ctx, trials[0].Latencies[0].Device.Fingerprint, 1, "", store.ProbeModel, 1<<20)
	if err != nil || len(probes) == 0 {
		t.Fatalf("the probe's figures: %v, %v", probes, err)
	}
	spread := float64(slices.Max(probes)) / float64(slices.Min(probes))
	for _, i := range []int{0, 2, 3} {
		for _, l := range trials[i].Latencies {
			refs = append(refs, l.RefLatency)
		}
	}
	for _, i := range []int{0, 2, 3} {
		tr := trials[i]
		if tr.Status != store.Done || tr.Metrics == nil || len(tr.Latencies) != 1 {
			t.Fatalf("trial %d: %+v", i, tr)
		}
		m, l := tr.Metrics, tr.Latencies[0]
		if m.ValAccuracy < 0 || m.ValAccuracy > 1 || !m.HasTest || m.CompressedBytes <= 0 || m.Reward <= 0 || l.Stats.Rounds != 5 ||
			l.Stats.Latency <= 0 || l.Stats.Low > l.Stats.Latency || l.Stats.High < l.Stats.Latency {
			t.Fatalf("trial %d: metrics %+v latency %+v", i, m, l)
		}
		// Measured beside the reference: its figure and the trial's ratio,
		// which is to the reference's usual figure on the device (the
		// median of its figures so far, this one included).
		if l.Reference != DefaultReference || l.RefLatency <= 0 || l.Ratio == nil || !(l.Ratio.Value > 0) ||
			l.Ratio.Low > l.Ratio.Value || l.Ratio.High < l.Ratio.Value {
			t.Fatalf("trial %d: reference %q %v ratio %+v for latency %v", i, l.Reference, l.RefLatency, l.Ratio, l.Stats.Latency)
		}
		// (The search's end re-expresses the figure in the probe's usual
		// figure, rounded to the nanosecond, and the ratio with it.)
		usual := float64(l.Stats.Latency) / l.Ratio.Value
		if lo, hi := float64(slices.Min(refs)), float64(slices.Max(refs)); usual < lo*(1-1e-4) || usual > hi*(1+1e-4) {
			t.Fatalf("trial %d: ratio %v puts the reference's usual figure at %.0fns, outside its figures %v", i, l.Ratio.Value, usual, refs)
		}
		// The reward is the one the strategy observed, of the figure of the
		// moment (floors·usual/probe, the probe's usual figure then); the
		// search's end re-expressed the figure in the probe's usual figure
		// now. Both usual figures are medians of the probe's figures, so the
		// figure of the moment is this one times at most their spread
		// either way (on a quiet machine a few per cent; 1.2 was exceeded
		// on a noisy one), and the reward lies between those two figures'.
		rw := Reward{Mode: RewardSoft, LatencyTarget: 50 * time.Microsecond}
		at := func(f float64) time.Duration { return time.Duration(float64(l.Stats.Latency) * f) }
		lo, _ := rw.Compute(m.ValAccuracy, at(spread*(1+1e-6))+1, m.CompressedBytes)
		hi, _ := rw.Compute(m.ValAccuracy, at(1/spread*(1-1e-6))-1, m.CompressedBytes)
		if m.Reward < lo || m.Reward > hi {
			t.Fatalf("trial %d: reward %v, want the reward of about its figure %v: in [%v, %v]", i, m.Reward, l.Stats.Latency, lo, hi)
		}
		if w, err := db.TrialWeights(ctx, tr.ID); err != nil || len(w) == 0 {
			t.Fatalf("trial %d weights: %d bytes, %v", i, len(w), err)
		}
	}
	// Every row rests on one usual figure of the probe: probe / drift is
	// the same for all (and the reward above is its figure's).
	var usualProbe []float64
	for _, i := range []int{0, 2, 3} {
		l := trials[i].Latencies[0]
		if l.Probe <= 0 || !(l.Drift > 0) {
			t.Fatalf("trial %d: probe %v drift %v", i, l.Probe, l.Drift)
		}
		usualProbe = append(usualProbe, float64(l.Probe)/l.Drift)
	}
	if lo, hi := slices.Min(usualProbe), slices.Max(usualProbe); hi-lo > 1e-6*hi {
		t.Fatalf("the probe's usual figure behind the rows: %v, want one", usualProbe)
	}
	st, _ := db.GetStudy(ctx, "s")
	if st.Status != store.StudyDone {
		t.Fatalf("study status %s", st.Status)
	}
	table, err := db.OpLatencies(ctx, trials[0].Latencies[0].Device.Fingerprint)
	if err != nil || len(table) == 0 {
		t.Fatalf("per-op table: %d entries, %v", len(table), err)
	}
	ck, err := db.LatestCheckpoint(ctx, st.ID)
	if err != nil || ck.Step != 4 {
		t.Fatalf("checkpoint step %d, %v", ck.Step, err)
	}
	// Extend the budget; a NaN fault on trial 5 fails only that trial.
	o = testOptions(t, db, "s", StudyConfig{}, 6)
	o.WorkerEnv = append(o.WorkerEnv, FaultEnv+"=nan@5")
	sum, err = Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if !sum.Resumed || sum.Done != 6 || sum.Failed != 2 {
		t.Fatalf("resumed summary %+v", sum)
	}
	trials = checkTrials(t, db, "s", 6)
	if trials[4].Status != store.Done || trials[5].Status != store.Failed || !strings.HasPrefix(trials[5].Error, FailNaN) {
		t.Fatalf("trials 4, 5: %s, %s %q", trials[4].Status, trials[5].Status, trials[5].Error)
	}
	// Final training of the winner: a 7th trial marked final, outside the
	// budget; running again does not train it twice.
	best := -1
	for _, tr := range trials {
		if tr.Metrics != nil && (best < 0 || tr.Metrics.Reward > trials[best].Metrics.Reward) {
			best = tr.Number
		}
	}
	for round := 0; round < 2; round++ {
		o = testOptions(t, db, "s", StudyConfig{}, 6)
		o.Final = FinalOptions{Epochs: 2, Subset: 600}
		sum, err = Run(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		if sum.Done != 6 || (round == 0) != (sum.Final != nil) {
			t.Fatalf("round %d: summary %+v", round, sum)
		}
	}
	trials = checkTrials(t, db, "s", 7)
	d, fm, err := parseDecisions(trials[6].Decisions)
	if err != nil || fm == nil || fm.FinalOf != best || fm.Epochs != 2 || trials[6].Status != store.Done || trials[6].Metrics == nil {
		t.Fatalf("final trial: %+v %v %v", fm, d, err)
	}
	if string(trials[6].Arch) != string(trials[best].Arch) {
		t.Fatal("the final trial trains another architecture than the winner's")
	}
	// Another final learning rate and shifted copies are another budget:
	// it trains again and records both.
	o = testOptions(t, db, "s", StudyConfig{}, 6)
	o.Final = FinalOptions{Epochs: 2, Subset: 600, LR: 0.001, Augment: 1, BatchSize: 16, FineTuneLR: 1e-4}
	if sum, err = Run(ctx, o); err != nil || sum.Final == nil || sum.Final.Of != best {
		t.Fatalf("final with lr: %+v, %v", sum, err)
	}
	trials = checkTrials(t, db, "s", 8)
	if _, fm, err := parseDecisions(trials[7].Decisions); err != nil || fm == nil || fm.LR != 0.001 || fm.Augment != 1 || fm.BatchSize != 16 || fm.FineLR != 1e-4 || fm.FinalOf != best {
		t.Fatalf("final trial with lr: %+v %v", fm, err)
	}
}

// TestRunSurvivesSIGKILL kills a coordinator process with SIGKILL while
// a trial is running, then resumes: the running trial is re-run, no
// number is duplicated or lost, nothing is left running, and SQLite's
// integrity check passes.
func TestRunSurvivesSIGKILL(t *testing.T) {
	dir := miniMNIST(t)
	path := filepath.Join(t.TempDir(), "hwnas.db")
	ctx := context.Background()
	cmd := exec.Command(testWorker(t)[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), coordEnv+"="+strings.Join([]string{path, "k", dir, "50"}, ","))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait until at least two trials are done and a third is running.
	ro := waitForDB(t, path)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("no running trial after two finished ones")
		}
		st, err := ro.GetStudy(ctx, "k")
		if err == nil {
			trials, err := ro.ListTrials(ctx, st.ID, store.TrialFilter{})
			if err != nil {
				t.Fatal(err)
			}
			done, running := 0, 0
			for _, tr := range trials {
				switch tr.Status {
				case store.Done, store.Failed:
					done++
				case store.Running:
					running++
				}
			}
			if done >= 2 && running == 1 {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	ro.Close()
	db := openDB(t, path)
	st, _ := db.GetStudy(ctx, "k")
	before, _ := db.ListTrials(ctx, st.ID, store.TrialFilter{})
	finished := map[int]store.TrialStatus{}
	for _, tr := range before {
		if tr.Status == store.Done || tr.Status == store.Failed {
			finished[tr.Number] = tr.Status
		}
	}
	n := len(before) + 1
	o := testOptions(t, db, "k", StudyConfig{}, n)
	sum, err := Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if !sum.Resumed || sum.Requeued != 1 {
		t.Fatalf("resume summary %+v", sum)
	}
	after := checkTrials(t, db, "k", n)
	for num, status := range finished {
		if after[num].Status != status {
			t.Fatalf("trial %d was %s before the kill, %s after", num, status, after[num].Status)
		}
	}
	if after[len(before)-1].Attempts < 2 {
		t.Fatalf("the trial running at the kill has %d attempts", after[len(before)-1].Attempts)
	}
}

func waitForDB(t *testing.T, path string) *store.DB {
	t.Helper()
	for i := 0; i < 600; i++ {
		if db, err := store.OpenReadOnly(path); err == nil {
			return db
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("database never appeared")
	return nil
}

// runTestCoordinator is the body of the coordinator child process.
func runTestCoordinator(spec string) error {
	parts := strings.Split(spec, ",")
	trials, _ := strconv.Atoi(parts[3])
	db, err := store.Open(parts[0])
	if err != nil {
		return err
	}
	defer db.Close()
	exe, _ := os.Executable()
	o := Options{DB: db, Study: parts[1], Config: testConfig(parts[2], "evolution"), Trials: trials,
		Worker: []string{exe}, WorkerEnv: []string{workerEnv + "=1"}, Limits: WorkerLimits{Timeout: time.Minute}}
	_, err = Run(context.Background(), o)
	return err
}

// TestFinalFallsBackOverBounds: under a hard reward, a final model over
// the latency target is kept as a trial and the next-best trial with other
// decisions is trained, up to FinalOptions.Tries models; a second run
// trains none again.
func TestFinalFallsBackOverBounds(t *testing.T) {
	dir := miniMNIST(t)
	db := openDB(t, filepath.Join(t.TempDir(), "hwnas.db"))
	ctx := context.Background()
	cfg := testConfig(dir, "random")
	cfg.Reward = RewardConfig{Mode: RewardHard, LatencyTargetNs: 1} // no model runs in 1 ns
	o := testOptions(t, db, "f", cfg, 4)
	o.Final = FinalOptions{Epochs: 1, Subset: 300, Tries: 2}
	sum, err := Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Final == nil || sum.Final.WithinBounds || sum.Final.LatencyNs <= 1 {
		t.Fatalf("final %+v, want one over the 1 ns target", sum.Final)
	}
	trials := checkTrials(t, db, "f", 6)
	// The search's trials by reward, distinct decisions: the finals train
	// the first two, in that order.
	ranked := slices.Clone(trials[:4])
	slices.SortStableFunc(ranked, func(a, b store.Trial) int { return cmp.Compare(b.Metrics.Reward, a.Metrics.Reward) })
	var want []int
	seen := map[string]bool{}
	for _, tr := range ranked {
		if d, _, _ := parseDecisions(tr.Decisions); !seen[d.key()] {
			seen[d.key()] = true
			want = append(want, tr.Number)
		}
	}
	if len(want) < 2 {
		t.Fatalf("the random strategy proposed one network 4 times (seed %d)", cfg.Seed)
	}
	if sum.Distinct != len(want) {
		t.Fatalf("summary: %d distinct networks, want %d", sum.Distinct, len(want))
	}
	for i, tr := range trials[4:] {
		_, fm, err := parseDecisions(tr.Decisions)
		if err != nil || fm == nil || fm.FinalOf != want[i] || tr.Status != store.Done || tr.Metrics == nil || !tr.Metrics.HasTest {
			t.Fatalf("final %d: %+v %v, status %s, want the final of trial %d", i, fm, err, tr.Status, want[i])
		}
	}
	// None within the bounds: the final model is the better on validation.
	if fin := betterFinal(trials[4], trials[5]); sum.Final.Trial != fin.Number || sum.Final.ValAccuracy != fin.Metrics.ValAccuracy {
		t.Fatalf("summary's final %+v, want trial %d", sum.Final, fin.Number)
	}
	// Both finals are done: a second run reads them back and trains none.
	o = testOptions(t, db, "f", cfg, 4)
	o.Final = FinalOptions{Epochs: 1, Subset: 300, Tries: 2}
	if sum, err = Run(ctx, o); err != nil || sum.Final != nil {
		t.Fatalf("second run: final %+v, %v", sum.Final, err)
	}
	checkTrials(t, db, "f", 6)

	// Top 2 under a soft reward (no bounds): the two best are trained and
	// the final model is the better on validation.
	cfg.Reward = RewardConfig{Mode: RewardSoft, LatencyTargetNs: int64(50 * time.Microsecond)}
	o = testOptions(t, db, "g", cfg, 4)
	o.Final = FinalOptions{Epochs: 1, Subset: 300, Top: 2}
	if sum, err = Run(ctx, o); err != nil {
		t.Fatal(err)
	}
	trials = checkTrials(t, db, "g", 6)
	if trials[4].Metrics == nil || trials[5].Metrics == nil || sum.Final == nil || !sum.Final.WithinBounds {
		t.Fatalf("finals %+v %+v, summary %+v", trials[4].Metrics, trials[5].Metrics, sum.Final)
	}
	if fin := betterFinal(trials[4], trials[5]); sum.Final.Trial != fin.Number || sum.Final.ValAccuracy != fin.Metrics.ValAccuracy {
		t.Fatalf("final model %+v, want trial %d (validation %v and %v)", sum.Final, fin.Number, trials[4].Metrics.ValAccuracy, trials[5].Metrics.ValAccuracy)
	}
	// Unset, an enas study trains its best ten, any other its winner.
	if a, b := (FinalOptions{}).top(StrategyENAS), (FinalOptions{}).top("rl"); a != DefaultENASFinalTop || b != 1 {
		t.Fatalf("default final top: enas %d, rl %d", a, b)
	}
}

// betterFinal is the final trial with the better validation accuracy, the
// earlier among equals.
func betterFinal(a, b store.Trial) store.Trial {
	if b.Metrics.ValAccuracy > a.Metrics.ValAccuracy {
		return b
	}
	return a
}

// TestRunReusesTrainedNetworks searches a space of two networks: once both
// are trained, a proposal of either is answered from its trials, and only
// after maxReusedInARow such answers in a row is a repeat trained again.
// With TrainRepeats every proposal is trained.
func TestRunReusesTrainedNetworks(t *testing.T) {
	dir := miniMNIST(t)
	db := openDB(t, filepath.Join(t.TempDir(), "hwnas.db"))
	ctx := context.Background()
	cfg := testConfig(dir, "rl")
	cfg.Space = &Space{Version: 1, Input: []int{1, 28, 28}, Classes: 10, Distill: []bool{false},
		Stages: []StageSpace{{Block: []string{BlockConv}, Width: []int{8}, Kernel: []int{3}, Expansion: []int{1}, Repeats: []int{1},
			Stride: 2, Prune: []float64{0}, Bits: []int{32}, Rank: []float64{1}, Clusters: []int{0, 16}}}}
	sum, err := Run(ctx, testOptions(t, db, "r", cfg, 4))
	if err != nil {
		t.Fatal(err)
	}
	trials := checkTrials(t, db, "r", 4)
	if sum.Distinct != 2 {
		t.Fatalf("%d distinct networks in 4 trials of a two-network space, want 2", sum.Distinct)
	}
	// Two of the four trials repeat a network; each repeat came after
	// maxReusedInARow proposals answered from the study's trials.
	if sum.Reused < 2*maxReusedInARow || sum.Reused > 2*maxReusedInARow+50 {
		t.Fatalf("%d proposals answered from trials, want about %d", sum.Reused, 2*maxReusedInARow)
	}
	for _, tr := range trials {
		if tr.Status != store.Done || tr.Metrics == nil {
			t.Fatalf("trial %d: %s %q", tr.Number, tr.Status, tr.Error)
		}
	}
	// The strategy's checkpoint holds those answers: resuming with a
	// larger budget goes on from it.
	sum, err = Run(ctx, testOptions(t, db, "r", StudyConfig{}, 5))
	if err != nil || !sum.Resumed || sum.Reused != maxReusedInARow {
		t.Fatalf("resumed: %+v, %v; want %d more answers before the fifth trial", sum, err, maxReusedInARow)
	}

	o := testOptions(t, db, "t", cfg, 3)
	o.TrainRepeats = true
	if sum, err = Run(ctx, o); err != nil || sum.Reused != 0 || sum.Distinct > 2 {
		t.Fatalf("with TrainRepeats: %+v, %v", sum, err)
	}
	checkTrials(t, db, "t", 3)
}
