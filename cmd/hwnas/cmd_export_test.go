package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"hwnas/accel"
	"hwnas/accel/ref"
	"hwnas/nas"
	"hwnas/nas/onnx"
	"hwnas/store"
)

// savedModel writes the weights of a freshly initialised built-in
// architecture (batch-norm statistics perturbed so folding matters) and
// returns the model.
func savedModel(t *testing.T, arch, path string, seed uint64) *nas.Model {
	t.Helper()
	a, err := nas.BuiltinArch(arch)
	if err != nil {
		t.Fatal(err)
	}
	m, err := nas.NewModel(a, seed)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(seed, 1))
	for _, p := range m.Params {
		if strings.HasSuffix(p.Name, ".b") {
			for i := range p.Data {
				p.Data[i] = float32(r.NormFloat64() * 0.1)
			}
		}
	}
	if err := nas.SaveWeights(path, m); err != nil {
		t.Fatal(err)
	}
	return m
}

// randomImages returns n images of m's input shape with pixels in [0, 1].
func randomImages(m *nas.Model, n int) []float32 {
	r := rand.New(rand.NewPCG(7, 8))
	x := make([]float32, n*m.Graph.Tensors[0].Size())
	for i := range x {
		x[i] = r.Float32()
	}
	return x
}

// TestRunExportFromWeightsFile exports a weights file and checks that
// onnxruntime, running the written file, gives the logits of the model's
// own forward pass.
func TestRunExportFromWeightsFile(t *testing.T) {
	dir := t.TempDir()
	weights := filepath.Join(dir, "lenet5.hwnw")
	m := savedModel(t, "lenet5", weights, 3)
	out := filepath.Join(dir, "lenet5.onnx")
	var buf bytes.Buffer
	if err := runExport(context.Background(), &buf, exportOptions{Arch: "lenet5", Weights: weights, Out: out, JSON: true}); err != nil {
		t.Fatal(err)
	}
	var rep exportReport
	if err := json.Unmarshal(buf.Bytes(), &rep); err != nil {
		t.Fatalf("%v: %s", err, buf.String())
	}
	st, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Bytes != st.Size() || rep.Arch != "lenet5" || rep.Params != 431080 || rep.Opset != onnx.Opset || len(rep.Notes) != 0 {
		t.Errorf("report %+v (file %d bytes)", rep, st.Size())
	}
	// 431,080 float32 parameters and a little structure.
	if rep.Bytes < 4*431080 || rep.Bytes > 4*431080+8192 {
		t.Errorf("file of %d bytes for 431,080 fp32 parameters", rep.Bytes)
	}

	model, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	const n = 8
	x := randomImages(m, n)
	m.Kernels = ref.Kernels{}
	want, err := m.Forward(x, n)
	if err != nil {
		t.Fatal(err)
	}
	s, err := onnx.NewSession(model, n, onnx.SessionOptions{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got := make([]float32, len(want))
	if err := s.Run(x, got); err != nil {
		t.Fatal(err)
	}
	for i := range got {
		if d := math.Abs(float64(got[i] - want[i])); d > 1e-4 {
			t.Fatalf("logit %d: onnxruntime %v, model %v", i, got[i], want[i])
		}
	}

	// The text form names the file and its size.
	buf.Reset()
	if err := runExport(context.Background(), &buf, exportOptions{Arch: "lenet5", Weights: weights, Out: out}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "wrote "+out) {
		t.Errorf("text output %q", buf.String())
	}
}

// exportDB creates a results database with one finished trial (weights,
// metrics, a latency) and one pending trial (no weights).
func exportDB(t *testing.T, dir string) (path string, done, pending store.Trial) {
	t.Helper()
	ctx := context.Background()
	path = filepath.Join(dir, "results.db")
	db, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st, err := db.CreateStudy(ctx, store.Study{Name: "s", Dataset: "mnist", DeviceSpec: "cpu", Strategy: "random"})
	if err != nil {
		t.Fatal(err)
	}
	a, err := nas.BuiltinArch("lenet300")
	if err != nil {
		t.Fatal(err)
	}
	m, err := nas.NewModel(a, 5)
	if err != nil {
		t.Fatal(err)
	}
	recipe := []byte(`[{"layer":"fc1","bits":8}]`)
	done, err = db.AddTrial(ctx, st.ID, store.TrialSpec{Arch: a.JSON(), Recipe: recipe})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.StartTrial(ctx, done.ID, "w1"); err != nil {
		t.Fatal(err)
	}
	dev := accel.DetectCPU(1, "test")
	lat := store.Latency{Device: dev, Batch: 1, Stats: accel.LatencyStats{Runs: 30, Median: 41500 * time.Nanosecond}}
	if err := db.FinishTrial(ctx, done.ID, store.Metrics{ValAccuracy: 0.98, Params: m.NumParams(), CompressedBytes: 4 * m.NumParams(), MACs: 266200, Reward: 0.9},
		[]store.Latency{lat}, nas.EncodeWeights(m)); err != nil {
		t.Fatal(err)
	}
	if pending, err = db.AddTrial(ctx, st.ID, store.TrialSpec{Arch: a.JSON()}); err != nil {
		t.Fatal(err)
	}
	return path, done, pending
}

// TestRunExportFromTrial exports a finished trial's stored weights and
// carries its figures into the report and the file's metadata.
func TestRunExportFromTrial(t *testing.T) {
	dir := t.TempDir()
	dbPath, done, _ := exportDB(t, dir)
	out := filepath.Join(dir, "trial.onnx")
	var buf bytes.Buffer
	if err := runExport(context.Background(), &buf, exportOptions{DB: dbPath, Trial: done.ID, Out: out, JSON: true}); err != nil {
		t.Fatal(err)
	}
	var rep exportReport
	if err := json.Unmarshal(buf.Bytes(), &rep); err != nil {
		t.Fatalf("%v: %s", err, buf.String())
	}
	if rep.Arch != "lenet300" || rep.Params != 266610 || rep.Figures["val_accuracy"] != 0.98 {
		t.Errorf("report %+v", rep)
	}
	found := false
	for k, v := range rep.Figures {
		if strings.HasPrefix(k, "latency_us.") && v == 41.5 {
			found = true
		}
	}
	if !found {
		t.Errorf("figures %v: no latency of 41.5 µs", rep.Figures)
	}
	// The trial's recipe is recorded but not applied: that must be a note.
	if len(rep.Notes) != 1 || !strings.Contains(rep.Notes[0], "recipe") {
		t.Errorf("notes %q, want one about the unapplied recipe", rep.Notes)
	}
	if _, err := os.Stat(out); err != nil {
		t.Fatal(err)
	}
}

// TestRunExportBadInput: every input error is a usage error (exit status
// 2) that names the problem, and no output file is left behind.
func TestRunExportBadInput(t *testing.T) {
	dir := t.TempDir()
	dbPath, _, pending := exportDB(t, dir)
	weights := filepath.Join(dir, "lenet5.hwnw")
	savedModel(t, "lenet5", weights, 3)
	out := filepath.Join(dir, "out.onnx")
	cases := []struct {
		name string
		opts exportOptions
		want string
	}{
		{"no output", exportOptions{Arch: "lenet5", Weights: weights}, "-o/--output"},
		{"nothing to export", exportOptions{Out: out}, "nothing to export"},
		{"both sources", exportOptions{Arch: "lenet5", Weights: weights, DB: dbPath, Trial: 1, Out: out}, "not both"},
		{"arch without weights", exportOptions{Arch: "lenet5", Out: out}, "both are needed"},
		{"unknown arch", exportOptions{Arch: "lenet9", Weights: weights, Out: out}, "lenet9"},
		{"weights of another arch", exportOptions{Arch: "lenet300", Weights: weights, Out: out}, "saved for architecture"},
		{"missing weights file", exportOptions{Arch: "lenet5", Weights: filepath.Join(dir, "nope.hwnw"), Out: out}, "nope.hwnw"},
		{"missing db", exportOptions{DB: filepath.Join(dir, "nope.db"), Trial: 1, Out: out}, "nope.db"},
		{"unknown trial", exportOptions{DB: dbPath, Trial: 999, Out: out}, "no such trial"},
		{"trial without weights", exportOptions{DB: dbPath, Trial: pending.ID, Out: out}, "has no stored weights"},
		{"bad recipe file", exportOptions{Arch: "lenet5", Weights: weights, Recipe: weights, Out: out}, "not valid JSON"},
		{"unwritable output", exportOptions{Arch: "lenet5", Weights: weights, Out: filepath.Join(dir, "no", "such", "dir", "m.onnx")}, "cannot write"},
		{"output is a folder", exportOptions{Arch: "lenet5", Weights: weights, Out: dir}, "writing " + dir},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := runExport(context.Background(), &bytes.Buffer{}, c.opts)
			var ue usageError
			if err == nil || !errors.As(err, &ue) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err %v, want a usage error containing %q", err, c.want)
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("%s exists after a failed export", out)
			}
		})
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp") || strings.HasSuffix(e.Name(), ".onnx") {
			t.Errorf("left behind: %s", e.Name())
		}
	}
}
