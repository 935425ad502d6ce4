package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
	"hwnas/nas/compress"
	"hwnas/nas/data"
	"hwnas/nas/onnx"
	"hwnas/search"
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
	if err := runExport(context.Background(), &buf, exportOptions{DB: dbPath, Trial: done.Name(), Out: out, JSON: true}); err != nil {
		t.Fatal(err)
	}
	var rep exportReport
	if err := json.Unmarshal(buf.Bytes(), &rep); err != nil {
		t.Fatalf("%v: %s", err, buf.String())
	}
	if rep.Arch != "lenet300" || rep.Params != 266610 || rep.Figures["val_accuracy"] != 0.98 || rep.Source != "trial s/0 in results.db" {
		t.Errorf("report %+v", rep)
	}
	// The same trial by its number in the database's only study, and by
	// its database id: the same file.
	want, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []exportOptions{{Trial: "0"}, {Trial: "0", Study: "s"}, {TrialID: done.ID}} {
		o.DB, o.Out = dbPath, filepath.Join(dir, "again.onnx")
		if err := runExport(context.Background(), io.Discard, o); err != nil {
			t.Fatalf("%+v: %v", o, err)
		}
		if got, _ := os.ReadFile(o.Out); !bytes.Equal(got, want) {
			t.Errorf("--trial %q --study %q --trial-id %d exports another file than --trial s/0", o.Trial, o.Study, o.TrialID)
		}
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
	// The trial stored plain weights beside a recipe: that must be a note.
	if len(rep.Notes) != 1 || !strings.Contains(rep.Notes[0], "plain weights") {
		t.Errorf("notes %q, want one about the plain weights", rep.Notes)
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
		{"no output", exportOptions{Arch: "lenet5", Weights: weights}, "-o/--out"},
		{"nothing to export", exportOptions{Out: out}, "nothing to export"},
		{"both sources", exportOptions{Arch: "lenet5", Weights: weights, DB: dbPath, Trial: "s/1", Out: out}, "not both"},
		{"arch without weights", exportOptions{Arch: "lenet5", Out: out}, "both are needed"},
		{"unknown arch", exportOptions{Arch: "lenet9", Weights: weights, Out: out}, "lenet9"},
		{"weights of another arch", exportOptions{Arch: "lenet300", Weights: weights, Out: out}, "saved for architecture"},
		{"missing weights file", exportOptions{Arch: "lenet5", Weights: filepath.Join(dir, "nope.hwnw"), Out: out}, "nope.hwnw"},
		{"missing db", exportOptions{DB: filepath.Join(dir, "nope.db"), Trial: "s/1", Out: out}, "nope.db"},
		{"unknown trial", exportOptions{DB: dbPath, Trial: "s/999", Out: out}, `trial s/999: not found`},
		{"unknown study", exportOptions{DB: dbPath, Trial: "t/0", Out: out}, `study "t"`},
		{"study disagrees", exportOptions{DB: dbPath, Trial: "s/0", Study: "t", Out: out}, `--study says "t"`},
		{"bad trial name", exportOptions{DB: dbPath, Trial: "s/x", Out: out}, "want a trial number"},
		{"unknown trial id", exportOptions{DB: dbPath, TrialID: 999, Out: out}, "no trial with that database id"},
		{"name and id", exportOptions{DB: dbPath, Trial: "s/0", TrialID: 1, Out: out}, "not both"},
		{"study without trial", exportOptions{DB: dbPath, Study: "s", Out: out}, "both are needed"},
		{"trial without weights", exportOptions{DB: dbPath, Trial: pending.Name(), Out: out}, "has no stored weights"},
		{"bad recipe", exportOptions{Arch: "lenet5", Weights: weights, Recipe: weights, Out: out}, "--recipe"},
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

// compressedLeNet300 compresses a LeNet-300-100 with int8 weights and 80%
// unstructured pruning (compress.Apply without fine-tuning, calibrated on
// a toy IDX set written to dir) and returns the result and the data.
func compressedLeNet300(t *testing.T, dir string) (*compress.Result, *data.Set) {
	t.Helper()
	writeToyIDX(t, dir, 600, 100)
	train, val, test, err := data.LoadDir(dir)
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
	r, err := compress.ParseRecipe("prune=0.8,quant=int8,huffman")
	if err != nil {
		t.Fatal(err)
	}
	res, err := compress.Apply(context.Background(), m, r, train, val, compress.Config{NoFineTune: true, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	return res, test
}

// sameArgmax runs the exported file in onnxruntime and m's lowered plan on
// the cpu backend over set and returns the fraction of equal argmaxes.
func sameArgmax(t *testing.T, path string, m *nas.Model, set *data.Set) float64 {
	t.Helper()
	model, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := nas.Lower(m)
	if err != nil {
		t.Fatal(err)
	}
	b, err := accel.Open("cpu", accel.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	prog, err := b.Compile(plan, set.N)
	if err != nil {
		t.Fatal(err)
	}
	defer prog.Close()
	a, err := onnx.Compare(prog, plan, model, set.Images, nil, set.N, onnx.SessionOptions{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	return a.ArgmaxAgree
}

// TestRunExportVerify exports an int8 model with --verify: the report
// carries onnxruntime's agreement with hwnas on the test split.
func TestRunExportVerify(t *testing.T) {
	dir := t.TempDir()
	writeToyIDX(t, dir, 300, 120)
	weights := filepath.Join(dir, "w.hwnw")
	savedModel(t, "lenet300", weights, 3)
	out := filepath.Join(dir, "m.onnx")
	var buf bytes.Buffer
	opts := exportOptions{Arch: "lenet300", Weights: weights, Recipe: "quant=int8", Data: dir, Out: out, Verify: true, JSON: true}
	if err := runExport(context.Background(), &buf, opts); err != nil {
		t.Fatal(err)
	}
	var rep exportReport
	if err := json.Unmarshal(buf.Bytes(), &rep); err != nil {
		t.Fatalf("%v: %s", err, buf.String())
	}
	a := rep.Verify
	if a == nil || a.Images != 120 {
		t.Fatalf("verify %+v, want 120 test images compared", a)
	}
	if a.ArgmaxAgree < 0.99 || a.MaxSteps > 1 || !(a.MaxSteps > 0) || math.Abs(a.HwnasAccuracy-a.OrtAccuracy) > 0.01 {
		t.Errorf("verify %+v: want ≥ 99%% agreement, ≤ 1 output step, equal accuracies", *a)
	}
	buf.Reset()
	opts.JSON = false
	if err := runExport(context.Background(), &buf, opts); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "verified on 120 test images") {
		t.Errorf("text output %q", buf.String())
	}
	opts.Data = filepath.Join(dir, "none")
	if err := runExport(context.Background(), &buf, opts); !isBadInput(err) || !strings.Contains(err.Error(), "--data") {
		t.Errorf("--verify without data: %v, want a bad-input error naming --data", err)
	}
}

// TestRunExportCompressed exports compressed models three ways — a
// compressed model file (hwnas compress --out), a recipe applied to plain
// weights, and a search trial whose blob holds a compressed model — and
// checks that the int8 layers, sparsity and Huffman note come through and
// that onnxruntime agrees with hwnas on the file.
func TestRunExportCompressed(t *testing.T) {
	dir := t.TempDir()
	res, test := compressedLeNet300(t, dir)
	hwnc := filepath.Join(dir, "c.hwnc")
	if err := os.WriteFile(hwnc, res.Encoded, 0o644); err != nil {
		t.Fatal(err)
	}
	archFile := hwnc + ".arch.json"
	if err := os.WriteFile(archFile, res.Model.Arch.JSON(), 0o644); err != nil {
		t.Fatal(err)
	}
	plain := filepath.Join(dir, "plain.hwnw")
	savedModel(t, "lenet300", plain, 5)

	// A trial whose weights blob is the compressed model.
	dbPath := filepath.Join(dir, "results.db")
	db, err := store.Open(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := db.CreateStudy(ctx, store.Study{Name: "c", Dataset: "toy", DeviceSpec: "cpu", Strategy: "random"})
	if err != nil {
		t.Fatal(err)
	}
	layers := []byte(`[{"layer":"fc1","prune":0.8,"bits":8},{"layer":"fc2","prune":0.8,"bits":8},{"layer":"fc3","prune":0.8,"bits":8}]`)
	tr, err := db.AddTrial(ctx, st.ID, store.TrialSpec{Arch: res.Model.Arch.JSON(), Recipe: layers})
	if err != nil {
		t.Fatal(err)
	}
	blob, err := search.EncodeTrialWeights(res)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.StartTrial(ctx, tr.ID, "w"); err != nil {
		t.Fatal(err)
	}
	if err := db.FinishTrial(ctx, tr.ID, store.Metrics{ValAccuracy: 0.5, CompressedBytes: int64(res.Bytes)}, nil, blob); err != nil {
		t.Fatal(err)
	}
	db.Close()

	cases := []struct {
		name      string
		opts      exportOptions
		wantNotes []string
	}{
		{"compressed file", exportOptions{Arch: archFile, Weights: hwnc, Recipe: "prune=0.8,quant=int8,huffman"},
			[]string{"unstructured sparsity", "Huffman coding of the weights"}},
		{"recipe on plain weights", exportOptions{Arch: "lenet300", Weights: plain, Recipe: "prune=0.8,quant=int8", Data: dir},
			[]string{"unstructured sparsity", "without fine-tuning"}},
		{"trial", exportOptions{DB: dbPath, Trial: tr.Name()},
			[]string{"unstructured sparsity", "Huffman coding of the stored weights"}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.opts.Out = filepath.Join(dir, fmt.Sprintf("m%d.onnx", i))
			c.opts.JSON = true
			var buf bytes.Buffer
			if err := runExport(ctx, &buf, c.opts); err != nil {
				t.Fatal(err)
			}
			var rep exportReport
			if err := json.Unmarshal(buf.Bytes(), &rep); err != nil {
				t.Fatalf("%v: %s", err, buf.String())
			}
			if rep.Int8Ops != 3 {
				t.Errorf("%d int8 ops, want 3", rep.Int8Ops)
			}
			all := strings.Join(rep.Notes, "\n")
			for _, w := range c.wantNotes {
				if !strings.Contains(all, w) {
					t.Errorf("notes %q: none mentions %q", rep.Notes, w)
				}
			}
			// 20% of the weights at one byte plus an 8-byte index each
			// (stored sparse) is under a third of the fp32 file.
			if limit := int64(4*266610) / 3; rep.Bytes > limit {
				t.Errorf("file of %d bytes, want ≤ %d", rep.Bytes, limit)
			}
			if c.opts.Data == "" {
				// The stored compressed model: onnxruntime must agree with it.
				if agree := sameArgmax(t, c.opts.Out, res.Model, test); agree < 0.99 {
					t.Errorf("argmax agrees on %.1f%% of %d images", 100*agree, test.N)
				}
			}
		})
	}
	bad := exportOptions{Arch: "lenet300", Weights: plain, Recipe: "quant=int3", Out: filepath.Join(dir, "bad.onnx")}
	if err := runExport(ctx, &bytes.Buffer{}, bad); err == nil || !strings.Contains(err.Error(), "--recipe") {
		t.Errorf("bad recipe: err %v", err)
	}
	bad.Recipe, bad.Data = "quant=int8", filepath.Join(dir, "nodata")
	if err := runExport(ctx, &bytes.Buffer{}, bad); err == nil || !strings.Contains(err.Error(), "--data") {
		t.Errorf("missing data: err %v", err)
	}
	if _, err := os.Stat(bad.Out); !os.IsNotExist(err) {
		t.Error("a failed export left a file")
	}
}
