package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"hwnas/store"
)

// TestTrialNamesAgree follows the trial a search's summary names through
// trials, best, pareto, export and measure: the same words name the same
// trial everywhere. A second study, created first, makes database ids and
// study numbers differ.
func TestTrialNamesAgree(t *testing.T) {
	ctx := context.Background()
	dataDir := searchTestData(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "hwnas.db")
	db, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	other, err := db.CreateStudy(ctx, store.Study{Name: "other", Dataset: "mnist", DeviceSpec: "cpu", Strategy: "random"})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := db.AddTrial(ctx, other.ID, store.TrialSpec{}); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	var out bytes.Buffer
	o := searchOptions{Study: "quick", DB: path, Device: "cpu", Strategy: "random", Trials: 4, Reward: "soft",
		LatencyTarget: "50us", rounds: testRounds, Data: dataDir, Epochs: 1, Subset: 300, Optimizer: "adam", LR: 0.02,
		TrainBatch: 32, Seed: 3, Threads: 1, Batch: 1, TrialTimeout: 2 * time.Minute, TrialMemory: 4 << 30,
		worker: []string{os.Args[0], "-test.run=^TestSearchHelperProcess$"}, workerEnv: []string{"HWNAS_SEARCH_HELPER=worker"}}
	if err := runSearch(ctx, &out, o); err != nil {
		t.Fatal(err)
	}
	summary := out.String()
	m := regexp.MustCompile(`best reward ([0-9.]+) \(trial (quick/[0-9]+)\)`).FindStringSubmatch(summary)
	if m == nil {
		t.Fatalf("summary names no best trial:\n%s", summary)
	}
	reward, name := m[1], m[2]
	number := strings.TrimPrefix(name, "quick/")

	// trials: the row of that name has that reward.
	out.Reset()
	if err := runTrials(ctx, &out, trialsOptions{DB: path, Study: "quick"}); err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `\s+done\s.*\s` + regexp.QuoteMeta(reward) + `\s`).MatchString(out.String()) {
		t.Errorf("hwnas trials has no done row %s with reward %s:\n%s", name, reward, out.String())
	}
	// best lists it by that name.
	out.Reset()
	if err := runBest(ctx, &out, bestOptions{DB: path, Device: "cpu", Study: "quick", N: 10, Batch: 1, By: "val"}); err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`\s` + regexp.QuoteMeta(name) + `\s`).MatchString(out.String()) {
		t.Errorf("hwnas best does not list %s:\n%s", name, out.String())
	}
	// pareto shows the front the summary named.
	front := regexp.MustCompile(`pareto front \(accuracy, latency, bytes\): trials (.*) \(hwnas pareto`).FindStringSubmatch(summary)
	out.Reset()
	if err := runPareto(ctx, &out, paretoOptions{DB: path, Study: "quick", Batch: 1, By: "val"}); err != nil {
		t.Fatal(err)
	}
	if front == nil || front[1] == "" {
		t.Fatalf("summary names no pareto front:\n%s", summary)
	}
	for _, n := range strings.Split(front[1], ", ") {
		if !regexp.MustCompile(`\s` + regexp.QuoteMeta(n) + `\n`).MatchString(out.String()) {
			t.Errorf("hwnas pareto does not list %s of the summary's front:\n%s", n, out.String())
		}
	}

	// export --trial NAME exports that trial, and its number in its study
	// is the same file; a bare number is ambiguous with two studies.
	first := filepath.Join(dir, "best.onnx")
	out.Reset()
	if err := runExport(ctx, &out, exportOptions{DB: path, Trial: name, Out: first, JSON: true}); err != nil {
		t.Fatal(err)
	}
	var rep exportReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprintf("%.4f", rep.Figures["reward"]) != reward || rep.Source != "trial "+name+" in hwnas.db" {
		t.Errorf("export --trial %s: source %q, reward %v; want that trial, reward %s", name, rep.Source, rep.Figures["reward"], reward)
	}
	again := filepath.Join(dir, "again.onnx")
	if err := runExport(ctx, io.Discard, exportOptions{DB: path, Study: "quick", Trial: number, Out: again}); err != nil {
		t.Fatal(err)
	}
	if a, b := mustRead(t, first), mustRead(t, again); !bytes.Equal(a, b) {
		t.Errorf("--study quick --trial %s exports another file than --trial %s", number, name)
	}
	if err := runExport(ctx, io.Discard, exportOptions{DB: path, Trial: number, Out: again}); !isBadInput(err) || !strings.Contains(err.Error(), "other, quick") {
		t.Errorf("--trial %s with two studies: %v, want a usage error naming them", number, err)
	}

	// measure names each trial the same way, measured alone beside the
	// reference (--group 1) or together.
	for _, group := range []int{1, 0} {
		out.Reset()
		if err := runMeasure(ctx, &out, measureOptions{Study: "quick", DB: path, Device: "cpu", Threads: 1, Batch: 1, Group: group, rounds: testRounds}); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), "trial "+name+" ") || !strings.Contains(out.String(), " measured (") {
			t.Errorf("hwnas measure --group %d does not name %s:\n%s", group, name, out.String())
		}
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
