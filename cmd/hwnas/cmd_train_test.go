package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"hwnas/accel"
)

// writeToyIDX writes a small MNIST-shaped IDX data set (28×28, 10 classes)
// that a network can learn quickly: class l brightens a horizontal band.
func writeToyIDX(t *testing.T, dir string, train, test int) {
	t.Helper()
	r := rand.New(rand.NewPCG(3, 4))
	write := func(images, labels string, n int) {
		var im, lb bytes.Buffer
		binary.Write(&im, binary.BigEndian, []uint32{0x803, uint32(n), 28, 28})
		binary.Write(&lb, binary.BigEndian, []uint32{0x801, uint32(n)})
		for i := 0; i < n; i++ {
			l := r.IntN(10)
			lb.WriteByte(byte(l))
			for y := 0; y < 28; y++ {
				for x := 0; x < 28; x++ {
					v := r.IntN(60)
					if y >= 2+l*2 && y < 4+l*2 {
						v += 180
					}
					im.WriteByte(byte(v))
				}
			}
		}
		if err := os.WriteFile(filepath.Join(dir, images), im.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, labels), lb.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("train-images-idx3-ubyte", "train-labels-idx1-ubyte", train)
	write("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", test)
}

func TestRunTrainAndBenchModel(t *testing.T) {
	dir := t.TempDir()
	writeToyIDX(t, dir, 1200, 200)
	weights := filepath.Join(dir, "lenet300.hwnw")
	var out bytes.Buffer
	opts := trainOptions{Arch: "lenet300", Epochs: 2, Data: dir, Save: weights, Seed: 1, Batch: 32, Optimizer: "sgd", Threads: 1, JSON: true}
	if err := runTrain(context.Background(), &out, opts); err != nil {
		t.Fatal(err)
	}
	var rep trainReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	// 1,200 training images less 100 for validation.
	if rep.Params != 266610 || rep.TrainImages != 1100 || len(rep.Epochs) != 2 || rep.Saved != weights {
		t.Fatalf("report %+v", rep)
	}
	if rep.TestAccuracy < 0.9 || rep.ValAccuracy < 0.9 {
		t.Fatalf("toy set not learnt: val %.3f test %.3f", rep.ValAccuracy, rep.TestAccuracy)
	}
	if rep.Epochs[0].Seconds <= 0 || rep.SecondsPerEpoch <= 0 {
		t.Fatalf("no epoch timing: %+v", rep.Epochs[0])
	}

	// Plain text: one line per epoch and the test accuracy.
	out.Reset()
	opts.JSON, opts.Save, opts.Epochs, opts.Subset = false, "", 1, 200
	if err := runTrain(context.Background(), &out, opts); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"200 images, 1 epochs", "epoch 1/1  loss", "img/s", "test accuracy", "s per epoch"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("text output lacks %q:\n%s", want, out.String())
		}
	}

	// Distillation from the saved model (its architecture from the
	// .arch.json beside it): the loss is the teacher's, not plain
	// cross-entropy, and the toy set is still learnt.
	lossOf := func(teacher string) (float64, trainReport) {
		t.Helper()
		var buf bytes.Buffer
		o := opts
		o.JSON, o.Save, o.Epochs, o.Subset, o.Teacher = true, "", 1, 400, teacher
		if err := runTrain(context.Background(), &buf, o); err != nil {
			t.Fatal(err)
		}
		var r trainReport
		if err := json.Unmarshal(buf.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		return r.Epochs[0].TrainLoss, r
	}
	plain, _ := lossOf("")
	kd, krep := lossOf(weights + ":T=2:a=0.9")
	if krep.Teacher != weights+":T=2:a=0.9" || kd == plain || krep.TestAccuracy < 0.8 {
		t.Errorf("distilled: teacher %q, loss %.4f (plain %.4f), test accuracy %.3f", krep.Teacher, kd, plain, krep.TestAccuracy)
	}

	// bench model with the saved weights.
	out.Reset()
	lat := accel.LatencyOptions{Warmup: 1, MinRuns: 3, MinTime: time.Millisecond}
	bopts := benchModelOptions{Arch: "lenet300", Weights: weights, Batch: 4, Threads: 1, Device: "cpu", JSON: true, Latency: lat}
	if err := runBenchModel(context.Background(), &out, bopts); err != nil {
		t.Fatal(err)
	}
	var brep benchModelReport
	if err := json.Unmarshal(out.Bytes(), &brep); err != nil {
		t.Fatal(err)
	}
	if brep.Batch != 4 || brep.MedianUS <= 0 || brep.P90US < brep.MedianUS || brep.PerImageUS != brep.MedianUS/4 || brep.Ops != 3 || brep.Stats.Runs < 3 {
		t.Fatalf("bench report %+v", brep)
	}
	out.Reset()
	bopts.JSON, bopts.Weights, bopts.Arch = false, "", "lenet5"
	if err := runBenchModel(context.Background(), &out, bopts); err != nil {
		t.Fatal(err)
	}
	if s := out.String(); !strings.Contains(s, "lenet5") || !strings.Contains(s, "median") || !strings.Contains(s, "per image") {
		t.Fatalf("text output %q", s)
	}
}

func TestTrainBenchModelBadInput(t *testing.T) {
	dir := t.TempDir()
	writeToyIDX(t, dir, 120, 20)
	malformed := filepath.Join(dir, "bad.json")
	os.WriteFile(malformed, []byte("{\"version\": 1,\n\"name\": \"x\" \"input\": [1]}"), 0o644)
	mismatch := filepath.Join(dir, "mismatch.json")
	os.WriteFile(mismatch, []byte(`{"version":1,"name":"m","input":[1,28,28],"classes":10,"layers":[
		{"name":"c","type":"conv","out":4,"kernel":3},{"name":"s","type":"add","inputs":["c","input"]},{"name":"f","type":"linear","out":10}]}`), 0o644)
	rgb := filepath.Join(dir, "rgb.json")
	os.WriteFile(rgb, []byte(`{"version":1,"name":"rgb","input":[3,32,32],"classes":10,"layers":[{"name":"f","type":"linear","out":10}]}`), 0o644)
	corrupt := filepath.Join(dir, "corrupt.hwnw")
	os.WriteFile(corrupt, []byte("HWNW\x01\x00\x00\x00garbage that is long enough to pass the header size check......"), 0o644)
	wrongMagic := filepath.Join(dir, "wrong.hwnw")
	os.WriteFile(wrongMagic, []byte("PK\x03\x04 not weights"), 0o644)
	base := trainOptions{Arch: "lenet300", Epochs: 1, Data: dir, Seed: 1, Batch: 32, Optimizer: "sgd", Threads: 1}
	for _, tc := range []struct {
		name  string
		train *trainOptions
		bench *benchModelOptions
		want  string
	}{
		{"unknown arch", &trainOptions{Arch: "lenet7"}, nil, "lenet300, lenet5"},
		{"malformed JSON", &trainOptions{Arch: malformed}, nil, "line 2, column 13"},
		{"shape mismatch", &trainOptions{Arch: mismatch}, nil, "shape mismatch"},
		{"arch does not fit data", &trainOptions{Arch: rgb}, nil, "expects [3×32×32]"},
		{"missing data", &trainOptions{Data: filepath.Join(dir, "nowhere")}, nil, "make data"},
		{"epochs", &trainOptions{Epochs: -1}, nil, "--epochs"},
		{"optimizer", &trainOptions{Optimizer: "rmsprop"}, nil, "--optimizer"},
		{"teacher missing", &trainOptions{Teacher: filepath.Join(dir, "none.hwnw")}, nil, "none.hwnw"},
		{"teacher temperature", &trainOptions{Teacher: corrupt + ":T=-1"}, nil, "temperature"},
		{"teacher corrupt", &trainOptions{Teacher: corrupt}, nil, "checksum mismatch"},
		{"bench unknown arch", nil, &benchModelOptions{Arch: "vgg"}, "unknown architecture"},
		{"bench corrupt weights", nil, &benchModelOptions{Weights: corrupt}, "checksum mismatch"},
		{"bench wrong magic", nil, &benchModelOptions{Weights: wrongMagic}, "not a hwnas weights file"},
		{"bench batch", nil, &benchModelOptions{Batch: -2}, "--batch"},
		{"bench device", nil, &benchModelOptions{Device: "tpu"}, "unknown device"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.train != nil {
				o := base
				if tc.train.Arch != "" {
					o.Arch = tc.train.Arch
				}
				if tc.train.Data != "" {
					o.Data = tc.train.Data
				}
				if tc.train.Epochs != 0 {
					o.Epochs = tc.train.Epochs
				}
				if tc.train.Optimizer != "" {
					o.Optimizer = tc.train.Optimizer
				}
				o.Teacher = tc.train.Teacher
				err = runTrain(context.Background(), &bytes.Buffer{}, o)
			} else {
				o := benchModelOptions{Arch: "lenet5", Batch: 1, Threads: 1, Device: "cpu", Latency: accel.LatencyOptions{Warmup: 1, MinRuns: 1, MinTime: time.Microsecond}}
				if tc.bench.Arch != "" {
					o.Arch = tc.bench.Arch
				}
				if tc.bench.Weights != "" {
					o.Weights = tc.bench.Weights
				}
				if tc.bench.Batch != 0 {
					o.Batch = tc.bench.Batch
				}
				if tc.bench.Device != "" {
					o.Device = tc.bench.Device
				}
				err = runBenchModel(context.Background(), &bytes.Buffer{}, o)
			}
			var ue usageError
			if err == nil || !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want a usage error (exit 2) containing %q", err, tc.want)
			}
		})
	}
}
