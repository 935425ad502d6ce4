package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"hwnas/nas"
	"hwnas/nas/data"
	"hwnas/search"
	"hwnas/store"
)

// trainExportCheck trains arch on dir for one epoch, saves it, exports it
// to ONNX (the architecture comes from FILE.arch.json beside the
// weights) and checks that onnxruntime predicts what hwnas predicts on
// the test split's raw pixels. It returns the train report.
func trainExportCheck(t *testing.T, arch, dir string, extra func(o *trainOptions)) trainReport {
	t.Helper()
	out := t.TempDir()
	weights := filepath.Join(out, arch+".hwnw")
	opts := trainOptions{Arch: arch, Epochs: 1, Data: dir, Save: weights, Seed: 1, Batch: 16, LR: 0.02, Optimizer: "sgd",
		Threads: 1, Augment: "auto", Normalize: "auto", JSON: true}
	if extra != nil {
		extra(&opts)
	}
	var buf bytes.Buffer
	if err := runTrain(context.Background(), &buf, opts); err != nil {
		t.Fatal(err)
	}
	var rep trainReport
	if err := json.Unmarshal(buf.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.SavedArch != weights+".arch.json" {
		t.Fatalf("saved architecture %q", rep.SavedArch)
	}
	onnxPath := filepath.Join(out, arch+".onnx")
	buf.Reset()
	if err := runExport(context.Background(), &buf, exportOptions{Weights: weights, Out: onnxPath, Data: dir, Resize: opts.Resize, Verify: true, JSON: true}); err != nil {
		t.Fatal(err)
	}
	var er exportReport
	if err := json.Unmarshal(buf.Bytes(), &er); err != nil || er.Verify == nil || er.Verify.ArgmaxAgree != 1 || er.Verify.Images != rep.DataInfo.Test {
		t.Fatalf("export --verify: %s (%v)", buf.String(), err)
	}
	a, err := nas.LoadArch(rep.SavedArch)
	if err != nil {
		t.Fatal(err)
	}
	m, err := nas.NewModel(a, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := nas.LoadWeights(weights, m); err != nil {
		t.Fatal(err)
	}
	d, err := data.Load(dir, data.Options{Resize: rep.DataInfo.Options.Resize})
	if err != nil {
		t.Fatal(err)
	}
	if agree := sameArgmax(t, onnxPath, m, d.Test); agree != 1 {
		t.Errorf("%s: onnxruntime and hwnas agree on %.1f%% of %d test images, want all", arch, 100*agree, d.Test.N)
	}
	return rep
}

// TestResNet20OnCIFARAndImageFolders: resnet20 trains end to end on a
// synthetic CIFAR-10 folder in the binary format and on PNG folders of
// 3×32×32 and of mixed sizes resized to a non-square 24×40; each export
// runs in onnxruntime with hwnas's predictions. Colour data is normalised
// and augmented (crop+flip) by default, and the normalisation is in the
// saved architecture.
func TestResNet20OnCIFARAndImageFolders(t *testing.T) {
	cifar := filepath.Join(t.TempDir(), "cifar")
	if err := data.WriteSyntheticCIFAR(cifar, data.CIFAR10, 2, 60, 40, 1); err != nil {
		t.Fatal(err)
	}
	rep := trainExportCheck(t, "resnet20", cifar, nil)
	if rep.DataInfo.Format != data.FormatCIFAR10 || !slices.Equal(rep.DataInfo.Shape, []int{3, 32, 32}) || rep.Normalize == nil ||
		len(rep.Normalize.Mean) != 3 || rep.Augment != "crop=4,flip" || rep.Params != 272474 {
		t.Fatalf("cifar report: %+v", rep)
	}

	t.Setenv(data.CacheEnv, t.TempDir())
	pngs := filepath.Join(t.TempDir(), "pngs")
	if err := data.WriteSyntheticImages(pngs, data.SyntheticImages{Classes: 3, PerClass: 20, H: 32, W: 32, Seed: 2}); err != nil {
		t.Fatal(err)
	}
	rep = trainExportCheck(t, "resnet20", pngs, nil)
	if rep.DataInfo.Format != data.FormatImages || rep.DataInfo.Classes != 3 || rep.DataInfo.Digest == "" {
		t.Fatalf("png report: %+v", rep.DataInfo)
	}

	mixed := filepath.Join(t.TempDir(), "mixed")
	if err := data.WriteSyntheticImages(mixed, data.SyntheticImages{Classes: 2, PerClass: 20, Sizes: [][2]int{{30, 50}, {36, 60}, {24, 40}}, JPEG: true, Seed: 3}); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	err := runTrain(context.Background(), &buf, trainOptions{Arch: "resnet20", Epochs: 1, Data: mixed, Batch: 16, Threads: 1, Optimizer: "sgd"})
	if !isBadInput(err) || !strings.Contains(err.Error(), "need --resize") {
		t.Fatalf("mixed sizes without --resize: %v", err)
	}
	rep = trainExportCheck(t, "resnet20", mixed, func(o *trainOptions) { o.Resize = "24x40" })
	if !slices.Equal(rep.DataInfo.Shape, []int{3, 24, 40}) || !slices.Equal(rep.DataInfo.Options.Resize, []int{24, 40}) {
		t.Fatalf("resized report: %+v", rep.DataInfo)
	}
}

// TestTrainBadData: bad data folders are usage errors naming the file or
// folder.
func TestTrainBadData(t *testing.T) {
	dir := t.TempDir()
	data.WriteSyntheticCIFAR(dir, data.CIFAR10, 1, 24, 12, 1)
	p := filepath.Join(dir, "data_batch_1.bin")
	b, _ := os.ReadFile(p)
	os.WriteFile(p, b[:len(b)-7], 0o644)
	imgs := t.TempDir()
	data.WriteSyntheticImages(imgs, data.SyntheticImages{Classes: 2, PerClass: 12, H: 8, W: 8})
	os.Mkdir(filepath.Join(imgs, "empty"), 0o755)
	for _, c := range []struct {
		opts trainOptions
		want string
	}{
		{trainOptions{Data: dir}, p + ": truncated"},
		{trainOptions{Data: imgs}, filepath.Join(imgs, "empty") + " holds no PNG or JPEG images"},
		{trainOptions{Data: imgs, Resize: "8y8"}, "--resize"},
		{trainOptions{Data: t.TempDir(), Augment: "rotate"}, "holds no data set"},
		{trainOptions{Data: filepath.Join(dir, "nope")}, "does not exist"},
	} {
		c.opts.Arch, c.opts.Epochs, c.opts.Batch, c.opts.Optimizer = "lenet5", 1, 8, "sgd"
		if err := runTrain(context.Background(), io.Discard, c.opts); !isBadInput(err) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: err %v, want a usage error containing %q", c.opts, err, c.want)
		}
	}
	ok := t.TempDir()
	data.WriteSyntheticImages(ok, data.SyntheticImages{Classes: 2, PerClass: 12, H: 8, W: 8})
	for _, c := range []struct {
		opts trainOptions
		want string
	}{
		{trainOptions{Data: ok, Augment: "rotate"}, "unknown part"},
		{trainOptions{Data: ok, Normalize: "maybe"}, "--normalize"},
		{trainOptions{Data: ok, Arch: "lenet5"}, "lenet5"}, // 8×8 is too small for two 5×5 convolutions
	} {
		if c.opts.Arch == "" {
			c.opts.Arch = "resnet20"
		}
		c.opts.Epochs, c.opts.Batch, c.opts.Optimizer = 1, 8, "sgd"
		if err := runTrain(context.Background(), io.Discard, c.opts); !isBadInput(err) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: err %v, want a usage error containing %q", c.opts, err, c.want)
		}
	}
}

// TestSearchOnImageFolder: a search on a folder of colour PNGs builds its
// space for the data's shape (3×16×16: two stages, doubled widths, the
// data's normalisation), records the data set with the study, and its
// trials train, compress and measure; a changed folder fails the next
// trials with a clear reason instead of mixing splits.
func TestSearchOnImageFolder(t *testing.T) {
	t.Setenv(data.CacheEnv, t.TempDir())
	imgs := filepath.Join(t.TempDir(), "shapes")
	if err := data.WriteSyntheticImages(imgs, data.SyntheticImages{Classes: 3, PerClass: 30, H: 16, W: 16, Seed: 4}); err != nil {
		t.Fatal(err)
	}
	dbPath := filepath.Join(t.TempDir(), "img.db")
	opts := searchOptions{rounds: testRounds, Study: "img", DB: dbPath, Device: "cpu", Strategy: "random", Trials: 2, Reward: "soft",
		LatencyTarget: "100us", Epochs: 1, Subset: 0, Optimizer: "adam", LR: 0.01, TrainBatch: 16,
		Data: imgs, Normalize: "auto", Augment: "auto", Seed: 1, Threads: 1, Batch: 1,
		TrialTimeout: 2 * time.Minute, TrialMemory: 4 << 30, JSON: true,
		worker: []string{os.Args[0], "-test.run=^TestSearchHelperProcess$"}, workerEnv: []string{"HWNAS_SEARCH_HELPER=worker", data.CacheEnv + "=" + os.Getenv(data.CacheEnv)}}
	var buf bytes.Buffer
	if err := runSearch(context.Background(), &buf, opts); err != nil {
		t.Fatal(err)
	}
	var sum search.Summary
	if err := json.Unmarshal(buf.Bytes(), &sum); err != nil || sum.Done != 2 || sum.Failed != 0 {
		t.Fatalf("summary %s (%v)", buf.String(), err)
	}
	db, err := store.OpenReadOnly(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	st, err := db.GetStudy(context.Background(), "img")
	if err != nil {
		t.Fatal(err)
	}
	trials, _ := db.ListTrials(context.Background(), st.ID, store.TrialFilter{})
	db.Close()
	var info data.Info
	var cfg search.StudyConfig
	if err := json.Unmarshal(st.DataInfo, &info); err != nil || info.Format != data.FormatImages || info.Digest == "" || info.Options.SplitSeed != 1 {
		t.Fatalf("data record %s (%v)", st.DataInfo, err)
	}
	if err := json.Unmarshal(st.Config, &cfg); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.Space.Input, []int{3, 16, 16}) || cfg.Space.Classes != 3 || len(cfg.Space.Stages) != 2 ||
		cfg.Space.Stages[0].Width[0] != 16 || cfg.Space.Normalize == nil || cfg.Augment != "crop=2,flip" {
		t.Fatalf("space %+v, augment %q", cfg.Space, cfg.Augment)
	}
	for _, tr := range trials {
		var a nas.Arch
		if json.Unmarshal(tr.Arch, &a) != nil || a.Normalize == nil || tr.Metrics == nil || tr.Metrics.ValAccuracy <= 0 {
			t.Fatalf("trial %d: arch %s, metrics %+v", tr.Number, tr.Arch, tr.Metrics)
		}
	}
	// A new image changes the split: the next trial fails with the reason.
	data.WriteSyntheticImages(filepath.Join(imgs, "extra"), data.SyntheticImages{Classes: 1, PerClass: 5, H: 16, W: 16})
	os.Rename(filepath.Join(imgs, "extra", "class0", "img0000.png"), filepath.Join(imgs, "class1", "new.png"))
	os.RemoveAll(filepath.Join(imgs, "extra"))
	opts.Trials = 3
	buf.Reset()
	if err := runSearch(context.Background(), &buf, opts); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(buf.Bytes(), &sum); err != nil || sum.Failed != 1 || !strings.Contains(sum.LastError, "changed since the study began") {
		t.Fatalf("after changing the folder: %s", buf.String())
	}
}

// TestDataSynthetic: hwnas data writes the synthetic CIFAR-10 and PNG
// sets in their real formats (a PNG set of several sizes loads with a
// resize to the first).
func TestDataSynthetic(t *testing.T) {
	dir := t.TempDir()
	var buf bytes.Buffer
	for _, c := range []struct {
		opts  dataOptions
		shape []int
	}{
		{dataOptions{Set: setSyntheticCIFAR, PerClass: 6, Out: filepath.Join(dir, "c")}, []int{3, 32, 32}},
		{dataOptions{Set: setSyntheticPNG, PerClass: 6, Size: "20x30,24x24", Out: filepath.Join(dir, "p")}, []int{3, 20, 30}},
	} {
		buf.Reset()
		c.opts.JSON, c.opts.Seed = true, 1
		if err := runData(context.Background(), &buf, c.opts); err != nil {
			t.Fatal(err)
		}
		var info data.Info
		if err := json.Unmarshal(buf.Bytes(), &info); err != nil || !slices.Equal(info.Shape, c.shape) || info.Classes != 10 {
			t.Fatalf("%s: %s (%v)", c.opts.Set, buf.String(), err)
		}
	}
	for _, bad := range []dataOptions{{Set: setSyntheticPNG, PerClass: 1, Out: dir}, {Set: setSyntheticPNG, PerClass: 3, Size: "0x3", Out: dir}, {Set: "cifar100", Out: dir}} {
		if err := runData(context.Background(), io.Discard, bad); !isBadInput(err) {
			t.Errorf("%+v: %v", bad, err)
		}
	}
}
