package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"hwnas/accel"
	"hwnas/nas"
	"hwnas/nas/compress"
)

var quickLatency = accel.LatencyOptions{Warmup: 1, MinRuns: 5, MinTime: time.Millisecond, MaxTime: 100 * time.Millisecond}

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
