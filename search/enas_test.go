package search

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"hwnas/accel"
	"hwnas/nas"
	"hwnas/store"
)

// everyBlockSpace offers every block type, both heads, two kernels,
// expansions and depths in each stage (even widths, as ShuffleNetV2
// needs).
func everyBlockSpace() *Space {
	st := func(w []int, stride int) StageSpace {
		return StageSpace{Block: BlockTypes, Width: w, Kernel: []int{3, 5}, Expansion: []int{1, 2}, Repeats: []int{1, 2},
			Stride: stride, Prune: []float64{0, 0.5}, Bits: []int{32, 8}, Rank: []float64{1}, Clusters: []int{0, 16}}
	}
	return &Space{Version: 1, Input: []int{1, 28, 28}, Classes: 10, Head: []string{HeadGAP, HeadFlatten}, Distill: []bool{false},
		Stages: []StageSpace{st([]int{8, 12}, 2), st([]int{16, 24}, 2), st([]int{24, 32}, 2)}}
}

// TestSupernetBindsEverySubnet: every valid point of a space with every
// block type binds to the supernet; the largest conv network is the
// supernet's own initial weights; and depth takes the first blocks: a
// stage-3 block has the same slot and weights whatever the depth of
// stage 2 (the builder's layer names shift, the slots do not).
func TestSupernetBindsEverySubnet(t *testing.T) {
	space := everyBlockSpace()
	sn, err := NewSupernet(space, 5)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	bound := 0
	for i := 0; i < 60; i++ {
		cfg, err := space.Decode(uniform(rng, space.Sizes()))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := BuildCandidate(cfg); err != nil {
			continue // invalid points (a stride-1 ShuffleNetV2 changing width) have no network at all
		}
		if _, err := sn.Sub(cfg); err != nil {
			t.Fatalf("%+v: %v", cfg.Stages, err)
		}
		bound++
	}
	if bound < 30 {
		t.Fatalf("only %d of 60 points were valid", bound)
	}
	// The built sub-networks kept are bounded, the most recent kept.
	var last *Subnet
	for i := 0; i < 3*maxSubnets; i++ {
		cfg, err := space.Decode(uniform(rng, space.Sizes()))
		if err != nil {
			t.Fatal(err)
		}
		if s, err := sn.Sub(cfg); err == nil {
			if again, _ := sn.Sub(cfg); again != s {
				t.Fatal("a sub-network just built was not kept")
			}
			last = s
		}
	}
	if len(sn.subs) > maxSubnets || last == nil {
		t.Fatalf("%d sub-networks kept (at most %d)", len(sn.subs), maxSubnets)
	}

	largest := Config{Input: space.Input, Classes: 10, Head: HeadFlatten}
	for _, st := range space.Stages {
		largest.Stages = append(largest.Stages, StageConfig{Block: BlockConv, Width: slices.Max(st.Width), Kernel: 5, Expansion: 2, Repeats: 2, Stride: 2, Bits: 32, Rank: 1})
	}
	cand, err := BuildCandidate(largest)
	if err != nil {
		t.Fatal(err)
	}
	init, err := nas.NewModel(cand.Arch, 5)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := sn.Sub(largest)
	if err != nil {
		t.Fatal(err)
	}
	sub.Load()
	for _, p := range init.Params {
		if !slices.Equal(p.Data, sub.Model.Param(p.Name).Data) {
			t.Fatalf("%s: the largest conv network does not carry the supernet's initial weights", p.Name)
		}
	}

	shallow := largest
	shallow.Stages = slices.Clone(largest.Stages)
	shallow.Stages[1].Repeats = 1
	sc, err := BuildCandidate(shallow)
	if err != nil {
		t.Fatal(err)
	}
	slotDeep, slotShallow := slotsOf(cand), slotsOf(sc)
	s2, err := sn.Sub(shallow)
	if err != nil {
		t.Fatal(err)
	}
	s2.Load()
	compared := 0
	for _, p := range s2.Model.Params {
		layer := p.Name[:len(p.Name)-len(".w")]
		if p.Name[len(p.Name)-2:] != ".w" || slotShallow(layer)[:2] != "s3" {
			continue
		}
		for _, q := range sub.Model.Params {
			if q.Name[len(q.Name)-2:] == ".w" && slotDeep(q.Name[:len(q.Name)-2]) == slotShallow(layer) {
				if p.Name == q.Name {
					t.Fatalf("%s: expected the builder's names to shift with depth", p.Name)
				}
				if !slices.Equal(p.Data, q.Data) {
					t.Fatalf("slot %s: %s (stage 2 depth 1) and %s (depth 2) differ", slotShallow(layer), p.Name, q.Name)
				}
				compared++
			}
		}
	}
	if compared == 0 {
		t.Fatal("no stage-3 weights compared")
	}
}

// TestENASSearch runs the weight-sharing search on real MNIST images: its
// trials are supernet estimates, Best ranks only the winner trained on its
// own, the checkpoint carries the shared weights, and a trial left running
// by a dead coordinator is evaluated again on resume.
func TestENASSearch(t *testing.T) {
	dir := miniMNIST(t)
	db := openDB(t, filepath.Join(t.TempDir(), "hwnas.db"))
	ctx := context.Background()
	cfg := testConfig(dir, StrategyENAS)
	cfg.ValSubset = 100
	cfg.ENAS = &ENASConfig{Steps: 8, Samples: 2, CalibImages: 64, Warmup: 1}
	o := testOptions(t, db, "e", cfg, 4)
	o.Final = FinalOptions{Epochs: 1, Subset: 300, Top: 1}
	sum, err := Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Done != 4 || sum.Failed != 0 || sum.Final == nil {
		t.Fatalf("summary %+v", sum)
	}
	trials := checkTrials(t, db, "e", 5)
	for _, tr := range trials[:4] {
		if tr.Metrics == nil || !tr.Metrics.Estimate || len(tr.Latencies) != 1 || tr.Metrics.CompressedBytes <= 0 {
			t.Fatalf("trial %d: %+v, want a measured supernet estimate", tr.Number, tr.Metrics)
		}
	}
	if fin := trials[4]; fin.Metrics == nil || fin.Metrics.Estimate {
		t.Fatalf("final trial %+v is not a standalone figure", fin.Metrics)
	}
	best, err := db.Best(ctx, store.Query{Device: "cpu", Study: "e"})
	if err != nil {
		t.Fatal(err)
	}
	if len(best) != 1 || best[0].Number != 4 {
		t.Fatalf("best ranks %d results (%v), want the final trial alone", len(best), best)
	}
	st, _ := db.GetStudy(ctx, "e")
	ck, err := db.LatestCheckpoint(ctx, st.ID)
	if err != nil {
		t.Fatal(err)
	}
	var cs checkpointState
	var ec enasCheckpoint
	if err := json.Unmarshal(ck.Blob, &cs); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(cs.Strategy, &ec); err != nil {
		t.Fatal(err)
	}
	if ec.Round != 3 || len(ec.Supernet) == 0 { // one warm-up round, two of two candidates
		t.Fatalf("checkpoint at round %d with %d bytes of shared weights", ec.Round, len(ec.Supernet))
	}

	// A coordinator killed while it evaluated a trial leaves it running
	// under its (dead) process.
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	tr, err := db.AddTrial(ctx, st.ID, store.TrialSpec{Decisions: trials[0].Decisions, Arch: trials[0].Arch, Recipe: trials[0].Recipe})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.StartTrial(ctx, tr.ID, fmt.Sprintf("%s/%d/enas", host, dead.Process.Pid)); err != nil {
		t.Fatal(err)
	}
	o = testOptions(t, db, "e", StudyConfig{}, 7)
	sum, err = Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if !sum.Resumed || sum.Requeued != 1 || sum.Done != 7 {
		t.Fatalf("resume summary %+v", sum)
	}
	trials = checkTrials(t, db, "e", 8)
	if trials[5].Metrics == nil {
		t.Fatalf("re-queued trial: %s %s", trials[5].Status, trials[5].Error)
	}
	if re := trials[5]; !re.Metrics.Estimate || re.Attempts != 2 {
		t.Fatalf("re-queued trial: attempts %d, metrics %+v", re.Attempts, re.Metrics)
	}
	ck2, _ := db.LatestCheckpoint(ctx, st.ID)
	_ = json.Unmarshal(ck2.Blob, &cs)
	_ = json.Unmarshal(cs.Strategy, &ec)
	if ec.Round != 4 {
		t.Fatalf("resumed at round %d, want 4", ec.Round)
	}

	// Specialised for a second device (two threads: another fingerprint),
	// the winner is recorded with that device's latency, exportable.
	sp, err := Specialize(ctx, db, SpecializeOptions{Study: "e", Device: "cpu", Threads: 2, MaxLatency: time.Second,
		Evaluations: 4, Population: 2, FineTuneEpochs: 1, Seed: 2, Rounds: fastRounds})
	if err != nil {
		t.Fatal(err)
	}
	if sp.Evaluated < 2 || sp.Feasible != sp.Evaluated || !sp.WithinBounds || sp.Trial != 8 || sp.Device.Cores != 2 {
		t.Fatalf("specialize result %+v", sp)
	}
	spec, err := db.TrialByNumber(ctx, "e", sp.Trial)
	if err != nil {
		t.Fatal(err)
	}
	if spec.Metrics == nil || spec.Metrics.Estimate || len(spec.Latencies) != 1 || spec.Latencies[0].Device.Fingerprint != sp.Device.Fingerprint {
		t.Fatalf("specialised trial %+v", spec)
	}
	// The better of the inherited and the fine-tuned weights is recorded;
	// the inherited ones compressed again score what the estimate said.
	if want := max(sp.InheritedVal, sp.FineTunedVal); sp.ValAccuracy != want || spec.Metrics.ValAccuracy != want || sp.FineTuned != (sp.FineTunedVal > sp.InheritedVal) {
		t.Fatalf("recorded val %.4f (stored %.4f), inherited %.4f, fine-tuned %.4f, fine_tuned %v", sp.ValAccuracy, spec.Metrics.ValAccuracy, sp.InheritedVal, sp.FineTunedVal, sp.FineTuned)
	}
	if math.Abs(sp.InheritedVal-sp.Estimate) > 0.02 {
		t.Fatalf("inherited weights compressed again score %.4f, their estimate was %.4f", sp.InheritedVal, sp.Estimate)
	}
	blob, err := db.TrialWeights(ctx, spec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := TrialModel(spec.Arch, blob); err != nil {
		t.Fatalf("the specialised trial's model does not load: %v", err)
	}
	if _, err := Specialize(ctx, db, SpecializeOptions{Study: "e", Device: "cpu", MaxLatency: time.Nanosecond, Evaluations: 2, Rounds: fastRounds}); err == nil {
		t.Fatal("a 1 ns bound was met")
	}
	rl := testConfig(dir, "random")
	rl.Space = DefaultMNISTSpace()
	if _, err := db.CreateStudy(ctx, store.Study{Name: "plain", Dataset: dir, DeviceSpec: "cpu", DeviceName: "x", DeviceFingerprint: "x",
		Strategy: "random", Config: mustJSON(t, rl)}); err != nil {
		t.Fatal(err)
	}
	if _, err := Specialize(ctx, db, SpecializeOptions{Study: "plain", Device: "cpu", MaxLatency: time.Second}); !errors.Is(err, ErrNoSupernet) {
		t.Fatalf("specialising a random study: %v", err)
	}

	// The controller checkpoint of another supernet is refused.
	e := &ENAS{RL: NewRL(space3Sizes(), DefaultRLConfig(), 1)}
	if err := e.Restore(cs.Strategy); err == nil {
		t.Fatal("an enas checkpoint of another space was accepted")
	}
	sn, _ := NewSupernet(everyBlockSpace(), 1)
	if err := sn.Weights.UnmarshalBinary(ec.Supernet); err == nil {
		t.Fatal("shared weights of another space were accepted")
	}
}

func space3Sizes() []int { return everyBlockSpace().Sizes() }

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestKendallTau checks τ-b against values worked by hand: identical and
// reversed orders, one swapped pair of four (C = 5, D = 1: 4/6), ties
// (x = 1,1,2,3 against y = 1,2,3,4: C = 5, D = 0, T_x = 1: 5/√(5·6)),
// and a constant sample (NaN).
func TestKendallTau(t *testing.T) {
	for _, tc := range []struct {
		x, y []float64
		want float64
	}{
		{[]float64{1, 2, 3, 4}, []float64{10, 20, 30, 40}, 1},
		{[]float64{1, 2, 3, 4}, []float64{4, 3, 2, 1}, -1},
		{[]float64{1, 2, 3, 4}, []float64{1, 3, 2, 4}, 4.0 / 6},
		{[]float64{1, 1, 2, 3}, []float64{1, 2, 3, 4}, 5 / math.Sqrt(30)},
	} {
		if got := KendallTau(tc.x, tc.y); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("τ(%v, %v) = %v, want %v", tc.x, tc.y, got, tc.want)
		}
	}
	if got := KendallTau([]float64{1, 1, 1}, []float64{1, 2, 3}); !math.IsNaN(got) {
		t.Errorf("τ of a constant sample = %v, want NaN", got)
	}
}

// TestLatencyCache: a compressed network measured once in a run is not
// measured again (same architecture, recipe and batch); another recipe or
// batch is another network, and a disturbed figure is not kept.
func TestLatencyCache(t *testing.T) {
	a, err := nas.BuiltinArchFor("lenet5", nas.DataShape{Input: []int{1, 28, 28}, Classes: 10})
	if err != nil {
		t.Fatal(err)
	}
	lc := latencyCache{}
	k := lc.key(a, json.RawMessage(`[{"layer":"conv1","bits":8}]`), 1)
	if k == "" || k != lc.key(a, json.RawMessage(`[{"layer":"conv1","bits":8}]`), 1) {
		t.Fatalf("key %q is not stable", k)
	}
	if k == lc.key(a, json.RawMessage(`[{"layer":"conv1","bits":32}]`), 1) || k == lc.key(a, json.RawMessage(`[{"layer":"conv1","bits":8}]`), 8) {
		t.Fatal("another recipe or batch has the same key")
	}
	var res TrialResult
	if lc.reuse(k, &res) {
		t.Fatal("reused a latency never measured")
	}
	measured := &TrialResult{Latencies: []store.Latency{{Batch: 1, Stats: accel.LatencyStats{Latency: 5 * time.Microsecond}}}, PredictedNs: 5100, Attempts: 1,
		PerOp: []OpTime{{Key: "x", Ns: 5000}}}
	lc.keep(k, measured)
	if !lc.reuse(k, &res) || !res.LatencyReused || len(res.Latencies) != 1 || res.Latencies[0].Figure() != 5*time.Microsecond || res.PredictedNs != 5100 || res.PerOp != nil {
		t.Fatalf("reused %+v", res)
	}
	measured.Latencies[0].Stats.Latency = 6 * time.Microsecond // the cache holds its own copy
	if res2 := (TrialResult{}); !lc.reuse(k, &res2) || res2.Latencies[0].Figure() != 5*time.Microsecond {
		t.Fatalf("cache shares the measured slice: %+v", res2)
	}
	k2 := lc.key(a, nil, 1)
	lc.keep(k2, &TrialResult{Latencies: []store.Latency{{Batch: 1, Disturbed: true}}})
	if lc.reuse(k2, &res) {
		t.Fatal("a disturbed figure was kept")
	}
}

// TestENASWarmupDefault: the default warm-up is warmupSteps of training
// in whole rounds; a negative one is none; a given one is kept.
func TestENASWarmupDefault(t *testing.T) {
	for _, c := range []struct{ steps, warmup, want int }{{100, 0, 10}, {79, 0, 13}, {8, 0, 125}, {100, -1, 0}, {100, 3, 3}} {
		if got := (ENASConfig{Steps: c.steps, Warmup: c.warmup}).withDefaults(5000, 64).Warmup; got != c.want {
			t.Errorf("steps %d, warmup %d: %d warm-up rounds, want %d", c.steps, c.warmup, got, c.want)
		}
	}
}
