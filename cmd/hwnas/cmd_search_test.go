package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"hwnas/internal/testproc"
	"hwnas/nas/data"
	"hwnas/search"
	"hwnas/store"
)

// searchTestData writes a small real-MNIST folder: 1,200 training images
// (the last 100 become validation) and 300 test images.
func searchTestData(t *testing.T) string {
	t.Helper()
	full := t.TempDir()
	if _, err := data.Fetch(full); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeMNISTSubset(t, full, dir, 1200, 300)
	return dir
}

// writeMNISTSubset writes into to (which may be from) the first ntrain
// training and ntest test images of the MNIST-format folder from, as
// plain files.
func writeMNISTSubset(t *testing.T, from, to string, ntrain, ntest int) {
	t.Helper()
	train, _, test, err := data.LoadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		s          *data.Set
		imgs, lbls string
	}{{train.Subset(ntrain), data.TrainImagesFile, data.TrainLabelsFile}, {test.Subset(ntest), data.TestImagesFile, data.TestLabelsFile}} {
		for _, name := range []string{f.imgs, f.lbls} {
			os.Remove(filepath.Join(to, name+".gz")) // found before the plain file
		}
		var b bytes.Buffer
		for _, v := range []uint32{0x803, uint32(f.s.N), uint32(f.s.H), uint32(f.s.W)} {
			binary.Write(&b, binary.BigEndian, v)
		}
		for _, x := range f.s.Images {
			b.WriteByte(byte(min(255, max(0, x*255+0.5))))
		}
		if err := os.WriteFile(filepath.Join(to, f.imgs), b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		b.Reset()
		for _, v := range []uint32{0x801, uint32(f.s.N)} {
			binary.Write(&b, binary.BigEndian, v)
		}
		for _, l := range f.s.Labels {
			b.WriteByte(byte(l))
		}
		if err := os.WriteFile(filepath.Join(to, f.lbls), b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSearchBadInput: unknown device, malformed space file, a database that
// is not hwnas's or is newer, a missing data folder, an unknown strategy:
// a usage error (exit status 2) and nothing written.
func TestSearchBadInput(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.db")
	os.WriteFile(garbage, []byte("this is not a database at all, just text"), 0o644)
	foreign := filepath.Join(dir, "foreign.db")
	fdb, err := sql.Open("sqlite3", foreign)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fdb.Exec(`CREATE TABLE notes (x TEXT); INSERT INTO notes VALUES ('mine')`); err != nil {
		t.Fatal(err)
	}
	fdb.Close()
	newer := filepath.Join(dir, "newer.db")
	ndb, err := store.Open(newer)
	if err != nil {
		t.Fatal(err)
	}
	ndb.Close()
	raw, _ := sql.Open("sqlite3", newer)
	if _, err := raw.Exec(fmt.Sprintf(`PRAGMA user_version = %d`, store.SchemaVersion+5)); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	badSpace := filepath.Join(dir, "space.json")
	os.WriteFile(badSpace, []byte("{\"version\": 1,\n \"stages\": [ {\"block\": [\"resnet\"]} ]\n"), 0o644)
	unknownBlock := filepath.Join(dir, "space2.json")
	os.WriteFile(unknownBlock, []byte(`{"version":1,"input":[1,28,28],"classes":10,"distill":[false],"stages":[
		{"block":["resnet"],"width":[8],"kernel":[3],"expansion":[1],"repeats":[1],"stride":2,"prune":[0],"bits":[8],"rank":[1],"clusters":[0]}]}`), 0o644)
	unknownHead := filepath.Join(dir, "space3.json")
	os.WriteFile(unknownHead, []byte(`{"version":1,"input":[1,28,28],"classes":10,"distill":[false],"head":["gap","pool"],"stages":[
		{"block":["conv"],"width":[8],"kernel":[3],"expansion":[1],"repeats":[1],"stride":2,"prune":[0],"bits":[32],"rank":[1],"clusters":[0]}]}`), 0o644)
	fresh := func(name string) string { return filepath.Join(dir, name) }
	for _, tc := range []struct {
		name string
		opts searchOptions
		db   string
		want string
	}{
		{"unknown device", searchOptions{Device: "tpu"}, fresh("a.db"), "unknown device"},
		{"bad device index", searchOptions{Device: "cpu:x"}, fresh("b.db"), "index"},
		{"malformed space", searchOptions{Space: badSpace}, fresh("c.db"), "line 3, column 1: unexpected end"},
		{"unknown block", searchOptions{Space: unknownBlock}, fresh("d.db"), `unknown block type "resnet"`},
		{"missing space", searchOptions{Space: fresh("none.json")}, fresh("e.db"), "none.json"},
		{"unknown strategy", searchOptions{Strategy: "bayes"}, fresh("f.db"), "unknown strategy"},
		{"missing data", searchOptions{Data: fresh("nodata")}, fresh("g.db"), "does not exist"},
		{"no budget", searchOptions{Trials: -1}, fresh("h.db"), "--trials"},
		{"bad reward", searchOptions{Reward: "medium"}, fresh("i.db"), "reward mode"},
		{"not hwnas (text)", searchOptions{}, garbage, "not an hwnas database"},
		{"not hwnas (sqlite)", searchOptions{}, foreign, "not an hwnas database"},
		{"newer schema", searchOptions{}, newer, "newer"},
		{"negative final lr", searchOptions{FinalLR: -0.1}, fresh("j.db"), "--final-*"},
		{"bad latency target", searchOptions{LatencyTarget: "fast"}, fresh("l.db"), "--latency-target"},
		{"bad quiet mode", searchOptions{Quiet: "sometimes"}, fresh("q.db"), `--quiet: quiet mode "sometimes": want auto, on or off`},
		{"unknown final optimizer", searchOptions{FinalOptimizer: "lbfgs"}, fresh("o.db"), "--final-optimizer \"lbfgs\""},
		{"unknown reference", searchOptions{LatencyTarget: "0.2xlenet7"}, fresh("m.db"), "lenet7"},
		{"two references", searchOptions{LatencyTarget: "0.2xlenet5", Reference: "resnet20"}, fresh("n.db"), "one reference"},
		{"unknown runtime", searchOptions{Runtime: "tflite"}, fresh("o.db"), "tflite"},
		{"skip factor below 1", searchOptions{SkipOver: 0.5}, fresh("p.db"), "--skip-over"},
		{"negative predictor sweep", searchOptions{PredictorSweep: -1}, fresh("r.db"), "--predictor-sweep -1"},
		{"unknown head", searchOptions{Space: unknownHead}, fresh("k.db"), `unknown head "pool"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := searchOptions{rounds: testRounds, Study: "s", DB: tc.db, Device: "cpu", Strategy: "rl", Trials: 2, Reward: "soft",
				LatencyTarget: "100us", Data: fresh("nodata-default"), Epochs: 1}
			if tc.opts.Device != "" {
				o.Device = tc.opts.Device
			}
			if tc.opts.Strategy != "" {
				o.Strategy = tc.opts.Strategy
			}
			if tc.opts.Reward != "" {
				o.Reward = tc.opts.Reward
			}
			if tc.opts.Trials < 0 {
				o.Trials = 0
			}
			o.Space, o.Data, o.FinalLR, o.FinalOptimizer = tc.opts.Space, tc.opts.Data, tc.opts.FinalLR, tc.opts.FinalOptimizer
			o.Reference, o.Runtime, o.SkipOver, o.Quiet = tc.opts.Reference, tc.opts.Runtime, tc.opts.SkipOver, tc.opts.Quiet
			o.PredictorSweep = tc.opts.PredictorSweep
			if tc.opts.LatencyTarget != "" {
				o.LatencyTarget = tc.opts.LatencyTarget
			}
			if o.Data == "" {
				o.Data = fresh("nodata-default")
			}
			before, _ := os.ReadFile(tc.db)
			err := runSearch(context.Background(), io.Discard, o)
			if !isBadInput(err) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want a usage error containing %q", err, tc.want)
			}
			after, statErr := os.ReadFile(tc.db)
			if before == nil && statErr == nil {
				t.Fatalf("%s was created", tc.db)
			}
			if !bytes.Equal(before, after) {
				t.Fatalf("%s was changed", tc.db)
			}
		})
	}
	// measure: unknown study, unknown device, missing database.
	hw := filepath.Join(dir, "hw.db")
	hdb, _ := store.Open(hw)
	hdb.Close()
	for _, tc := range []struct {
		opts measureOptions
		want string
	}{
		{measureOptions{Study: "nope", DB: hw, Device: "cpu"}, "not found"},
		{measureOptions{Study: "nope", DB: hw, Device: "tpu"}, "unknown device"},
		{measureOptions{Study: "nope", DB: fresh("missing.db"), Device: "cpu"}, "does not exist"},
		{measureOptions{Study: "nope", DB: garbage, Device: "cpu"}, "not an hwnas database"},
		{measureOptions{Study: "nope", DB: hw, Device: "cpu", Group: -1}, "--group -1"},
	} {
		err := runMeasure(context.Background(), io.Discard, tc.opts)
		if !isBadInput(err) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("measure %+v: error %v, want a usage error containing %q", tc.opts, err, tc.want)
		}
	}
	if _, err := os.Stat(fresh("missing.db")); err == nil {
		t.Error("measure created a database")
	}
}

// TestSearchHelperProcess is not a test: the tests below re-run the test
// binary with HWNAS_SEARCH_HELPER set to act as `hwnas worker` ("worker")
// or to run `hwnas best` and `hwnas trials` in a loop ("reader:DB:STOP")
// until the stop file appears, printing "runs N failures M".
func TestSearchHelperProcess(t *testing.T) {
	mode := os.Getenv("HWNAS_SEARCH_HELPER")
	switch {
	case mode == "":
		return
	case mode == "worker":
		os.Exit(run(context.Background(), []string{"worker"}))
	case strings.HasPrefix(mode, "reader:"):
		parts := strings.SplitN(mode, ":", 3)
		db, stop := parts[1], parts[2]
		rootCmd.SetOut(io.Discard)
		runs, failures := 0, 0
		for deadline := time.Now().Add(3 * time.Minute); time.Now().Before(deadline); {
			if testproc.Stopped(stop) {
				break
			}
			for _, args := range [][]string{
				{"best", "--db", db, "--device", "cpu", "-n", "5", "--json"},
				{"trials", "--db", db, "--study", "live", "--json"},
			} {
				runs++
				if code := run(context.Background(), args); code != 0 {
					failures++
				}
			}
			if runs == 2 {
				testproc.Ready(stop)
			}
		}
		fmt.Printf("runs %d failures %d\n", runs, failures)
		if failures > 0 {
			os.Exit(1)
		}
		os.Exit(0)
	}
}

// TestSearchWhileReading runs a real search (worker processes, SQLite)
// while two other processes run `hwnas best` and `hwnas trials` on the same
// database in a loop: no query may fail (no "database is locked"), the
// search finishes its trials, and then `hwnas measure` re-measures them.
func TestSearchWhileReading(t *testing.T) {
	dataDir := searchTestData(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "hwnas.db")
	// Create the study first so the readers' `trials --study live` finds it.
	o := searchOptions{rounds: testRounds, Study: "live", DB: path, Device: "cpu", Strategy: "evolution", Trials: 1, Reward: "soft",
		LatencyTarget: "50us", Data: dataDir, Epochs: 1, Subset: 300, Optimizer: "adam", LR: 0.02,
		TrainBatch: 32, Seed: 2, Threads: 1, Batch: 1, TrialTimeout: 2 * time.Minute, TrialMemory: 4 << 30,
		worker:    []string{os.Args[0], "-test.run=^TestSearchHelperProcess$"},
		workerEnv: []string{"HWNAS_SEARCH_HELPER=worker"}}
	if err := runSearch(context.Background(), io.Discard, o); err != nil {
		t.Fatal(err)
	}
	stop := filepath.Join(dir, "stop")
	readers := testproc.Start(t, 2, []string{"-test.run=^TestSearchHelperProcess$"}, []string{"HWNAS_SEARCH_HELPER=reader:" + path + ":" + stop}, stop, time.Minute)
	o.Trials = 5
	var out bytes.Buffer
	o.JSON = true
	if err := runSearch(context.Background(), &out, o); err != nil {
		t.Fatal(err)
	}
	var sum struct {
		Done    int  `json:"done"`
		Resumed bool `json:"resumed"`
	}
	if err := json.Unmarshal(out.Bytes(), &sum); err != nil || sum.Done != 5 || !sum.Resumed {
		t.Fatalf("summary %s (%v)", out.String(), err)
	}
	errs, outs := readers.Finish()
	for i, err := range errs {
		s := outs[i]
		if err != nil || !strings.Contains(s, "failures 0") || strings.Contains(s, "locked") {
			t.Fatalf("reader %d: %v\n%s", i, err, s)
		}
		var runs int
		fmt.Sscanf(s[strings.LastIndex(s, "runs "):], "runs %d", &runs)
		if runs < 4 {
			t.Fatalf("reader %d ran only %d queries", i, runs)
		}
	}
	db, err := store.OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.IntegrityCheck(); err != nil {
		t.Fatal(err)
	}
	db.Close()
	// Re-measure the finished trials from their stored weights.
	out.Reset()
	if err := runMeasure(context.Background(), &out, measureOptions{Study: "live", DB: path, Device: "cpu", Threads: 1, Batch: 2, JSON: true, rounds: testRounds}); err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Measured  int    `json:"measured"`
		Reference string `json:"reference"`
		Usual     int64  `json:"usual_ns"`
		Load      string `json:"loadavg"`
		Predictor struct {
			Trials int `json:"trials"`
		} `json:"predictor"`
		Trials []struct {
			Trial   int    `json:"trial"`
			Batch   int    `json:"batch"`
			Runtime string `json:"runtime"`
			Error   string `json:"error"`
			Latency struct {
				Rounds  int   `json:"rounds"`
				Latency int64 `json:"latency_ns"`
				Low     int64 `json:"ci_low_ns"`
				High    int64 `json:"ci_high_ns"`
			} `json:"latency"`
			RefNs int64 `json:"reference_ns"`
			Ratio struct {
				Value float64 `json:"value"`
			} `json:"ratio"`
			Predicted float64 `json:"predicted_ns"`
		} `json:"trials"`
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil || len(rep.Trials) == 0 || rep.Measured != len(rep.Trials) ||
		rep.Reference != "lenet5" || rep.Usual <= 0 || rep.Load == "" {
		t.Fatalf("measure output %s (%v)", out.String(), err)
	}
	for _, m := range rep.Trials {
		l := m.Latency
		if m.Error != "" || m.Batch != 2 || m.Runtime != "hwnas" || l.Rounds != testRounds.Rounds || l.Latency <= 0 ||
			l.Low > l.Latency || l.High < l.Latency || m.RefNs <= 0 || math.Abs(m.Ratio.Value-float64(l.Latency)/float64(rep.Usual)) > 1e-9 {
			t.Fatalf("measurement %+v", m)
		}
	}
	// A trial whose figure moved more than 5% from its earlier one is
	// measured again: halve one trial's batch-2 figure and measure again.
	wdb, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	live, err := wdb.GetStudy(context.Background(), "live")
	if err != nil {
		t.Fatal(err)
	}
	trs, err := wdb.ListTrials(context.Background(), live.ID, store.TrialFilter{Status: store.Done})
	if err != nil {
		t.Fatal(err)
	}
	doctored := -1
	for _, tr := range trs {
		for _, l := range tr.Latencies {
			if l.Batch == 2 && doctored < 0 {
				l.Stats.Latency /= 2
				if err := wdb.PutLatency(context.Background(), tr.ID, l); err != nil {
					t.Fatal(err)
				}
				doctored = tr.Number
			}
		}
	}
	wdb.Close()
	out.Reset()
	if err := runMeasure(context.Background(), &out, measureOptions{Study: "live", DB: path, Device: "cpu", Threads: 1, Batch: 2, JSON: true, rounds: testRounds}); err != nil {
		t.Fatal(err)
	}
	var again struct {
		Remeasured int     `json:"remeasured"`
		Slowdown   float64 `json:"group_slowdown"`
		Trials     []struct {
			Trial      int  `json:"trial"`
			Remeasured bool `json:"remeasured"`
			Disturbed  bool `json:"disturbed"`
			Kept       bool `json:"kept_previous"`
		} `json:"trials"`
	}
	if err := json.Unmarshal(out.Bytes(), &again); err != nil || doctored < 0 || len(again.Trials) == 0 {
		t.Fatalf("measure after a doctored figure (trial %d): %s (%v)", doctored, out.String(), err)
	}
	// On a busy machine the whole group may run more than 6% slower than
	// the first time: then it is flagged and every earlier figure kept
	// (nothing re-measured); otherwise the doctored trial is re-measured.
	for _, m := range again.Trials {
		switch {
		case again.Slowdown > 0.06:
			if !m.Disturbed || !m.Kept || m.Remeasured {
				t.Fatalf("group %.0f%% slower: trial %d not flagged and kept: %s", 100*again.Slowdown, m.Trial, out.String())
			}
		case again.Slowdown != 0:
			t.Fatalf("slowdown %v reported below the 6%% threshold", again.Slowdown)
		case m.Trial == doctored && !m.Remeasured:
			t.Fatalf("trial %d, whose earlier figure was halved, was not measured again: %s", doctored, out.String())
		}
	}
	// The deployment runtime as a device of its own: measure in
	// onnxruntime, then ask best and trials about it.
	out.Reset()
	if err := runMeasure(context.Background(), &out, measureOptions{Study: "live", DB: path, Device: "cpu", Threads: 1, Batch: 1,
		Runtime: "onnxruntime", rounds: testRounds}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "onnxruntime") || strings.Contains(out.String(), "error") {
		t.Fatalf("measure --runtime onnxruntime:\n%s", out.String())
	}
	out.Reset()
	if err := runBest(context.Background(), &out, bestOptions{DB: path, Device: "cpu", Runtime: "onnxruntime", N: 10, Batch: 1, By: "val", JSON: true}); err != nil {
		t.Fatal(err)
	}
	var best struct {
		Runtime string         `json:"runtime"`
		Results []store.Result `json:"results"`
	}
	if err := json.Unmarshal(out.Bytes(), &best); err != nil || best.Runtime != "onnxruntime" || len(best.Results) != len(rep.Trials) {
		t.Fatalf("best --runtime onnxruntime: %s (%v)", out.String(), err)
	}
	for _, r := range best.Results {
		if r.Latency.RuntimeName() != "onnxruntime" || r.Latency.Figure() <= 0 || r.Latency.Ratio == nil {
			t.Fatalf("onnxruntime result %+v", r.Latency)
		}
	}
	out.Reset()
	if err := runTrials(context.Background(), &out, trialsOptions{DB: path, Study: "live"}); err != nil {
		t.Fatal(err)
	}
	if s := out.String(); !strings.Contains(s, "LATENCY (hwnas)") || !strings.Contains(s, "LATENCY (onnxruntime)") || !strings.Contains(s, "×lenet5") {
		t.Fatalf("trials shows one runtime:\n%s", s)
	}
	for _, bad := range []error{
		runMeasure(context.Background(), io.Discard, measureOptions{Study: "live", DB: path, Device: "cpu", Runtime: "tflite"}),
		runBest(context.Background(), io.Discard, bestOptions{DB: path, Device: "cpu", Runtime: "tflite", N: 1, Batch: 1, By: "val"}),
		runPareto(context.Background(), io.Discard, paretoOptions{DB: path, Study: "live", Runtime: "tflite", Batch: 1, By: "val"}),
	} {
		if !isBadInput(bad) || !strings.Contains(bad.Error(), "tflite") {
			t.Errorf("unknown runtime: %v", bad)
		}
	}
}

// TestBenchSearch runs a tiny real benchmark (two strategies, one seed,
// two trials) and checks the report and the Markdown file.
func TestBenchSearch(t *testing.T) {
	dataDir := searchTestData(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "SEARCH.md")
	var buf bytes.Buffer
	o := benchSearchOptions{DB: filepath.Join(dir, "b.db"), Data: dataDir, Out: out, Device: "cpu", Prefix: "b",
		Strategies: []string{"random", "rl"}, Seeds: 1, Trials: 2, Epochs: 1, Subset: 200, ValSubset: 100,
		LatencyTarget: "50us", Threads: 1, JSON: true,
		worker: []string{os.Args[0], "-test.run=^TestSearchHelperProcess$"}, workerEnv: []string{"HWNAS_SEARCH_HELPER=worker"}}
	if err := runBenchSearch(context.Background(), &buf, o); err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Trials int `json:"trials"`
		Runs   []struct {
			Strategy  string    `json:"strategy"`
			BestSoFar []float64 `json:"best_so_far"`
		} `json:"runs"`
		Rows []struct {
			Strategy string `json:"strategy"`
		} `json:"rows"`
	}
	if err := json.Unmarshal(buf.Bytes(), &rep); err != nil || rep.Trials != 2 || len(rep.Runs) != 2 || len(rep.Rows) != 2 {
		t.Fatalf("report %s (%v)", buf.String(), err)
	}
	for _, r := range rep.Runs {
		if len(r.BestSoFar) != 2 || r.BestSoFar[1] < r.BestSoFar[0] || r.BestSoFar[1] <= 0 {
			t.Fatalf("run %+v", r)
		}
	}
	md, err := os.ReadFile(out)
	if err != nil || !strings.Contains(string(md), "| random |") || !strings.Contains(string(md), "Trials to reach random search's final best") {
		t.Fatalf("markdown: %v\n%s", err, md)
	}
	o.Seeds = 0
	if err := runBenchSearch(context.Background(), io.Discard, o); !isBadInput(err) {
		t.Fatalf("--seeds 0: %v", err)
	}
	o.Seeds, o.Space = 1, filepath.Join(dir, "no-such-space.json")
	if err := runBenchSearch(context.Background(), io.Discard, o); !isBadInput(err) || !strings.Contains(err.Error(), "no-such-space.json") {
		t.Fatalf("--space of a missing file: %v", err)
	}
}

// TestWorkerOut: the worker writes its result to --out; a trial it cannot
// evaluate (no data here) is a result with the reason, not a crash.
func TestWorkerOut(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "result.json")
	spec := `{"study":"s","trial":3,"arch":{"version":1,"name":"x","input":[1,28,28],"classes":10,"layers":[{"name":"fc","type":"linear","out":10}]},` +
		`"data":"` + filepath.Join(dir, "none") + `","epochs":1,"device":"cpu","batch":1,"config":{"input":null,"classes":0,"stages":null,"distill":false},"test":false,"measure":{}}`
	if err := runTrialSpec(context.Background(), strings.NewReader(spec), io.Discard, out); err != nil {
		t.Fatal(err)
	}
	var res struct {
		Trial      int    `json:"trial"`
		Error      string `json:"error"`
		FailReason string `json:"fail_reason"`
	}
	b, err := os.ReadFile(out)
	if err != nil || json.Unmarshal(b, &res) != nil || res.Trial != 3 || res.FailReason != "error" || !strings.Contains(res.Error, "does not exist") {
		t.Fatalf("result %s (%v)", b, err)
	}
	if err := runTrialSpec(context.Background(), strings.NewReader("{bad"), io.Discard, out+"2"); err == nil {
		t.Fatal("a malformed spec was accepted")
	}
	if _, err := os.Stat(out + "2"); err == nil {
		t.Fatal("a result file was written for a malformed spec")
	}
}

// TestQuietFlag: --no-quiet is --quiet off whatever --quiet says; an
// unknown mode is a usage error naming it.
func TestQuietFlag(t *testing.T) {
	if m, err := quietFlag("on", true); err != nil || m != search.QuietOff {
		t.Errorf("--quiet on --no-quiet: %q, %v; want off", m, err)
	}
	if m, err := quietFlag("", false); err != nil || m != search.QuietAuto {
		t.Errorf("no flag: %q, %v; want auto", m, err)
	}
	if _, err := quietFlag("yes", false); !isBadInput(err) || !strings.Contains(err.Error(), `"yes"`) {
		t.Errorf("--quiet yes: %v", err)
	}
}
