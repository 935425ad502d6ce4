package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"hwnas/accel"
	"hwnas/nas"
	"hwnas/nas/compress"
)

var quickLatency = accel.LatencyOptions{Warmup: 1, MinRuns: 5, MinTime: time.Millisecond, MaxTime: 100 * time.Millisecond}

// testRounds keeps interleaved latency measurements short in tests.
var testRounds = accel.RoundsOptions{Rounds: 5, BurstTime: 100 * time.Microsecond}

func TestRunCompress(t *testing.T) {
	dir := t.TempDir()
	writeToyIDX(t, dir, 1200, 200)
	weights := filepath.Join(dir, "lenet300.hwnw")
	var out bytes.Buffer
	if err := runTrain(context.Background(), &out, trainOptions{Arch: "lenet300", Epochs: 2, Data: dir, Save: weights, Seed: 1,
		Batch: 32, Optimizer: "sgd", Threads: 1, JSON: true}); err != nil {
		t.Fatal(err)
	}
	outFile := filepath.Join(dir, "lenet300.hwnc")
	opts := compressOptions{Arch: "lenet300", Weights: weights, Recipe: "prune=0.9,share=4bit,huffman", Data: dir, Out: outFile,
		Epochs: 1, PruneRounds: 2, LR: 0.01, Seed: 1, Threads: 1, JSON: true, Latency: quickLatency}
	out.Reset()
	if err := runCompress(context.Background(), &out, opts); err != nil {
		t.Fatal(err)
	}
	var rep compressReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	b, err := os.ReadFile(outFile)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Bytes != len(b) || rep.Ratio < 20 || rep.DenseBytes != 4*266610 {
		t.Fatalf("bytes %d (file %d), ratio %.1f, dense %d", rep.Bytes, len(b), rep.Ratio, rep.DenseBytes)
	}
	if rep.TestAccAfter < 0.85 || rep.ValAccAfter < 0.85 || rep.LatencyBeforeUS <= 0 || rep.LatencyAfterUS <= 0 {
		t.Fatalf("report %+v", rep)
	}
	// The written model decodes with the written architecture.
	a, err := nas.LoadArch(rep.OutArch)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := compress.Decode(a, b); err != nil {
		t.Fatal(err)
	}

	// The text row.
	out.Reset()
	opts.JSON, opts.Out, opts.Recipe = false, "", "quant=int8"
	if err := runCompress(context.Background(), &out, opts); err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(out.String()), "\n"); len(lines) != 3 || !strings.Contains(lines[1], "quant=int8") ||
		!strings.Contains(lines[2], "params 266610 → 266610 (−0.0%), MACs/image 266200 → 266200 (−0.0%)") {
		t.Fatalf("text output:\n%s", out.String())
	}

	// Bad input is a usage error naming the problem.
	for _, c := range []struct {
		mod  func(o *compressOptions)
		want string
	}{
		{func(o *compressOptions) { o.Recipe = "squeeze=0.5" }, "unknown method"},
		{func(o *compressOptions) { o.Recipe = "prune=1.2" }, "out of range"},
		{func(o *compressOptions) { o.Recipe = "quant=int3" }, "unsupported quantization"},
		{func(o *compressOptions) { o.Recipe = "conv1.prune=0.5" }, `layer "conv1"`},
		{func(o *compressOptions) { o.Recipe = "fc1.channels=0.999" }, "remove all 300 channels"},
		{func(o *compressOptions) { o.Weights = filepath.Join(dir, "none.hwnw") }, "no such file"},
		{func(o *compressOptions) { o.Arch = "lenet5" }, "architecture"},
	} {
		o := opts
		c.mod(&o)
		err := runCompress(context.Background(), &out, o)
		var ue usageError
		if err == nil || !errors.As(err, &ue) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("recipe %q weights %s: err %v, want a usage error mentioning %q", o.Recipe, o.Weights, err, c.want)
		}
	}
}

// TestCompressAndExportAreDeterministic runs the help's structured-pruning
// example on the built-in LeNet-5 twice, each time in a folder of its own
// (the same file names), and exports each result: the compressed model,
// its architecture file and the ONNX file are the same bytes, and every
// figure but the timings is the same. The global channel ratio leaves the
// logits (fc2) alone and says so.
func TestCompressAndExportAreDeterministic(t *testing.T) {
	data := t.TempDir()
	writeToyIDX(t, data, 1200, 200)
	weights := filepath.Join(data, "lenet5.hwnw")
	if err := runTrain(context.Background(), io.Discard, trainOptions{Arch: "lenet5", Epochs: 1, Data: data, Save: weights, Seed: 1,
		Batch: 32, Optimizer: "sgd", Threads: 2, JSON: true}); err != nil {
		t.Fatal(err)
	}
	var files [2]map[string][32]byte
	var reps [2]compressReport
	for i := range files {
		dir := t.TempDir()
		out := filepath.Join(dir, "lenet5-c.hwnc")
		var buf bytes.Buffer
		if err := runCompress(context.Background(), &buf, compressOptions{Arch: "lenet5", Weights: weights, Recipe: "channels=0.5:l1,quant=int8",
			Data: data, Out: out, Epochs: 1, PruneRounds: 3, LR: 0.01, Seed: 1, Threads: 2, JSON: true, Latency: quickLatency}); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(buf.Bytes(), &reps[i]); err != nil {
			t.Fatal(err)
		}
		onnxFile := filepath.Join(dir, "lenet5-c.onnx")
		if err := runExport(context.Background(), io.Discard, exportOptions{Weights: out, Data: data, Out: onnxFile}); err != nil {
			t.Fatal(err)
		}
		files[i] = map[string][32]byte{}
		for _, f := range []string{out, out + ".arch.json", onnxFile} {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			files[i][filepath.Base(f)] = sha256.Sum256(b)
		}
	}
	for name, sum := range files[0] {
		if files[1][name] != sum {
			t.Errorf("%s differs between two runs: sha256 %x and %x", name, sum, files[1][name])
		}
	}
	figures := func(r compressReport) compressReport {
		r.LatencyBeforeUS, r.LatencyAfterUS, r.Speedup, r.Seconds, r.Out, r.OutArch = 0, 0, 0, 0, "", ""
		r.Stages = slices.Clone(r.Stages)
		for i := range r.Stages {
			r.Stages[i].Seconds = 0
		}
		return r
	}
	if a, b := figures(reps[0]), figures(reps[1]); !reflect.DeepEqual(a, b) {
		t.Errorf("figures differ between two runs:\n%+v\n%+v", a, b)
	}
	rep := reps[0]
	if len(rep.Notes) != 1 || !strings.Contains(rep.Notes[0], `"fc2"`) || rep.ParamsAfter >= rep.ParamsBefore/2 {
		t.Errorf("channels=0.5 on LeNet-5: params %d → %d, notes %q; want about a quarter left and a note on fc2", rep.ParamsBefore, rep.ParamsAfter, rep.Notes)
	}
	for _, l := range rep.Layers {
		if l.Format != "int8" || l.Kernel != "int8" {
			t.Errorf("layer %s: format %s, form %s; want int8", l.Layer, l.Format, l.Kernel)
		}
	}
}
