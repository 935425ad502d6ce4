package search

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"hwnas/store"
)

// TestPredictorSweep: a search with a predictor sweep measures that many
// untrained networks of its space before the first trial, so the first
// trial is already predicted (an empty table predicts nothing); the
// held-out report learns from the sweep but predicts only the trials; a
// resumed study on the same device does not sweep again.
func TestPredictorSweep(t *testing.T) {
	dir := miniMNIST(t)
	db := openDB(t, filepath.Join(t.TempDir(), "hwnas.db"))
	ctx := context.Background()
	cfg := testConfig(dir, "rl")
	cfg.PredictorSweep = 4
	o := testOptions(t, db, "sw", cfg, 2)
	var log strings.Builder
	o.Log = &log
	sum, err := Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	st, err := db.GetStudy(ctx, "sw")
	if err != nil {
		t.Fatal(err)
	}
	var stored StudyConfig
	if err := json.Unmarshal(st.Config, &stored); err != nil {
		t.Fatal(err)
	}
	digest, err := spaceDigest(stored.Space)
	if err != nil {
		t.Fatal(err)
	}
	runs, err := db.SweepRuns(ctx, st.DeviceFingerprint, 1, digest)
	if err != nil || len(runs) != 4 {
		t.Fatalf("%d sweep runs stored (%v), want 4; log:\n%s", len(runs), err, log.String())
	}
	for _, r := range opRuns(runs, true) {
		if !(r.Figure > 0) || len(r.Ops) == 0 {
			t.Fatalf("sweep run %+v", r)
		}
	}
	trials := checkTrials(t, db, "sw", 2)
	if l := trials[0].Latencies; len(l) != 1 || l[0].Predicted <= 0 {
		t.Fatalf("the first trial was not predicted from the swept table: %+v", l)
	}
	if sum.HeldOut.Trials != 2 {
		t.Fatalf("held out over %d runs, want the 2 trials (sweep runs are learnt from, not predicted): %+v", sum.HeldOut.Trials, sum.HeldOut)
	}
	if !strings.Contains(log.String(), "predictor sweep: 4 network(s) measured") {
		t.Fatalf("no sweep line in the log:\n%s", log.String())
	}

	// Resumed with a larger budget: the device holds the space's sweep.
	o = testOptions(t, db, "sw", cfg, 3)
	log.Reset()
	o.Log = &log
	if _, err := Run(ctx, o); err != nil {
		t.Fatal(err)
	}
	if runs, _ := db.SweepRuns(ctx, st.DeviceFingerprint, 1, ""); len(runs) != 4 || strings.Contains(log.String(), "predictor sweep") {
		t.Fatalf("resumed: %d sweep runs, log:\n%s", len(runs), log.String())
	}
	if trials := checkTrials(t, db, "sw", 3); trials[2].Status != store.Done {
		t.Fatalf("trial 2 %s", trials[2].Status)
	}
}
