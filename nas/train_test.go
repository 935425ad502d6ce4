package nas

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"hwnas/nas/data"
)

// toySet is a learnable synthetic set: each class lights up its own
// quadrant of the image (and, with several channels, its own channel),
// plus noise.
func toySet(n, c, h, w, classes int, seed uint64) *data.Set {
	r := rand.New(rand.NewPCG(seed, 1))
	s := &data.Set{Name: "toy", N: n, C: c, H: h, W: w, Classes: classes,
		Images: make([]float32, n*c*h*w), Labels: make([]int32, n)}
	for i := 0; i < n; i++ {
		l := r.IntN(classes)
		s.Labels[i] = int32(l)
		img := s.Images[i*c*h*w : (i+1)*c*h*w]
		for j := range img {
			img[j] = float32(0.2 * r.Float64())
		}
		for ch := 0; ch < c; ch++ {
			for y := 0; y < h; y++ {
				for x := 0; x < w; x++ {
					if (y*2/h)*2+(x*2/w) == l%4 {
						img[ch*h*w+y*w+x] += 0.8
					}
					if c > 1 && ch == l%c { // visible after global pooling too
						img[ch*h*w+y*w+x] += 0.5
					}
				}
			}
		}
	}
	return s
}

func TestBlocksTrainingReducesLoss(t *testing.T) {
	set := toySet(48, 4, 6, 6, 3, 1)
	for name, a := range blockArchs(t) {
		t.Run(name, func(t *testing.T) {
			m := testModel(t, a, 1)
			before, _, _ := evalLoss(t, m, set)
			_, err := Train(context.Background(), m, set, nil, TrainConfig{Epochs: 4, BatchSize: 8, LR: 0.05, Seed: 1}, nil)
			if err != nil {
				t.Fatal(err)
			}
			after, _, _ := evalLoss(t, m, set)
			if !(after < before*0.9) {
				t.Fatalf("loss %.4f → %.4f after 24 SGD steps", before, after)
			}
		})
	}
}

func evalLoss(t *testing.T, m *Model, s *data.Set) (float64, float64, error) {
	t.Helper()
	acc, loss, err := Evaluate(m, s)
	if err != nil {
		t.Fatal(err)
	}
	return loss, acc, nil
}

func TestTrainLearnsAndIsDeterministic(t *testing.T) {
	a, _ := ParseArch([]byte(`{"version":1,"name":"small","input":[1,8,8],"classes":4,"layers":[
		{"name":"c1","type":"conv","out":4,"kernel":3,"pad":1,"act":"relu"},{"name":"p1","type":"maxpool"},
		{"name":"f1","type":"linear","out":4}]}`))
	train, val := toySet(256, 1, 8, 8, 4, 1), toySet(64, 1, 8, 8, 4, 2)
	lrs := map[string]float64{"sgd": 0.05, "adam": 0.01}
	run := func(opt string) (Result, *Model, []Progress) {
		m := testModel(t, a, 5)
		var ps []Progress
		res, err := Train(context.Background(), m, train, val, TrainConfig{Epochs: 3, BatchSize: 32, Optimizer: opt, LR: lrs[opt], Seed: 7}, func(p Progress) { ps = append(ps, p) })
		if err != nil {
			t.Fatal(err)
		}
		return res, m, ps
	}
	for _, opt := range []string{"sgd", "adam"} {
		r1, m1, ps := run(opt)
		r2, m2, _ := run(opt)
		if r1.ValAcc < 0.9 {
			t.Errorf("%s: validation accuracy %.3f on a separable toy set", opt, r1.ValAcc)
		}
		if len(r1.Epochs) != 3 || r1.Steps != 24 || len(ps) != 3*8+3 || !ps[len(ps)-1].EpochDone {
			t.Errorf("%s: %d epochs, %d steps, %d progress calls", opt, len(r1.Epochs), r1.Steps, len(ps))
		}
		if r1.ValLoss != r2.ValLoss {
			t.Errorf("%s: same seed, val loss %v and %v", opt, r1.ValLoss, r2.ValLoss)
		}
		for i, p := range m1.Params {
			for j := range p.Data {
				if p.Data[j] != m2.Params[i].Data[j] {
					t.Fatalf("%s: same seed, %s differs", opt, p.Name)
				}
			}
		}
	}
}

func TestTrainErrors(t *testing.T) {
	a, _ := BuiltinArch("lenet300")
	train := toySet(64, 1, 28, 28, 10, 1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	m := testModel(t, a, 1)
	if _, err := Train(ctx, m, train, nil, TrainConfig{}, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v", err)
	}
	if _, err := Train(context.Background(), m, train, nil, TrainConfig{BatchSize: 16, LR: 1e30, NoMomentum: true}, nil); !errors.Is(err, ErrNaN) {
		t.Errorf("huge learning rate: %v", err)
	}
	wrong := toySet(8, 1, 27, 28, 10, 1)
	if _, err := Train(context.Background(), testModel(t, a, 1), wrong, nil, TrainConfig{}, nil); err == nil || !strings.Contains(err.Error(), "expects") {
		t.Errorf("wrong image size: %v", err)
	}
	if _, err := Train(context.Background(), testModel(t, a, 1), train, nil, TrainConfig{Optimizer: "lbfgs"}, nil); err == nil || !strings.Contains(err.Error(), "unknown optimizer") {
		t.Errorf("unknown optimizer: %v", err)
	}
}

func TestTrainHooks(t *testing.T) {
	a, _ := BuiltinArch("lenet300")
	train := toySet(64, 1, 28, 28, 10, 1)
	m := testModel(t, a, 1)
	w := m.Param("fc1.w")
	var transformed, hooked, after int
	cfg := TrainConfig{Epochs: 1, BatchSize: 16, Subset: 48,
		// Fake "quantization": round to multiples of 1/8.
		WeightTransform: func(p *Param, dst []float32) bool {
			if p != w {
				return false
			}
			transformed++
			for i, v := range p.Data {
				dst[i] = float32(math.Round(float64(v)*8) / 8)
			}
			return true
		},
		GradHook: func(m *Model) error { hooked++; return nil },
		// Keep fc1.w[0] pruned.
		AfterStep: func(m *Model, step int) error { after = step; w.Data[0] = 0; return nil },
		Loss: func(b Batch, logits, dl []float32) (float32, error) {
			// Mean squared error to one-hot, as a stand-in for a custom loss.
			k := len(logits) / b.N
			var l float64
			for i, v := range logits {
				tgt := float32(0)
				if int32(i%k) == b.Labels[i/k] {
					tgt = 1
				}
				d := v - tgt
				l += float64(d * d)
				dl[i] = 2 * d / float32(b.N)
			}
			return float32(l / float64(b.N)), nil
		},
	}
	if _, err := Train(context.Background(), m, train, nil, cfg, nil); err != nil {
		t.Fatal(err)
	}
	if transformed != 3 || hooked != 3 || after != 3 || w.Data[0] != 0 {
		t.Fatalf("transform %d, grad hook %d, after step %d calls, w[0] %v; want 3, 3, 3, 0", transformed, hooked, after, w.Data[0])
	}
	if m.WeightTransform != nil {
		t.Fatal("training left its weight transform on the model")
	}
	// The forward pass really used the transformed weights.
	x := train.Images[:784]
	plain, _ := m.Forward(x, 1)
	m.WeightTransform = cfg.WeightTransform
	quant, _ := m.Forward(x, 1)
	if maxRelDiff(plain, quant) == 0 {
		t.Fatal("weight transform did not change the forward pass")
	}
}

func TestCosineLR(t *testing.T) {
	for _, tc := range []struct {
		t, warm, total int
		want           float64
	}{{0, 10, 110, 0.1}, {9, 10, 110, 1}, {10, 10, 110, 1}, {60, 10, 110, 0.5}, {110, 10, 110, 0}, {5, 0, 10, 0.5 * (1 + math.Cos(math.Pi/2))}} {
		if got := CosineLR(1, tc.t, tc.warm, tc.total); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("CosineLR(1, %d, %d, %d) = %v, want %v", tc.t, tc.warm, tc.total, got, tc.want)
		}
	}
}

// TestTrainAugment: batch augmentation is deterministic given the seed,
// changes what is learnt, and a network still learns the toy set through
// it.
func TestTrainAugment(t *testing.T) {
	a, _ := ParseArch([]byte(`{"version":1,"name":"small","input":[1,8,8],"classes":4,"layers":[
		{"name":"c1","type":"conv","out":4,"kernel":3,"pad":1,"act":"relu"},{"name":"p1","type":"maxpool"},
		{"name":"f1","type":"linear","out":4}]}`))
	train, val := toySet(256, 1, 8, 8, 4, 1), toySet(64, 1, 8, 8, 4, 2)
	run := func(aug data.Augment) (Result, *Model) {
		m := testModel(t, a, 5)
		res, err := Train(context.Background(), m, train, val, TrainConfig{Epochs: 3, BatchSize: 32, LR: 0.05, Seed: 7, Augment: aug}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return res, m
	}
	aug := data.Augment{Pad: 1} // no flip: the toy classes are quadrants
	r1, m1 := run(aug)
	r2, m2 := run(aug)
	_, m0 := run(data.Augment{})
	if r1.ValLoss != r2.ValLoss || m1.Params[0].Data[0] != m2.Params[0].Data[0] {
		t.Error("same seed and augmentation, different training")
	}
	if m1.Params[0].Data[0] == m0.Params[0].Data[0] {
		t.Error("augmentation changed nothing")
	}
	if r1.ValAcc < 0.7 {
		t.Errorf("validation accuracy %.3f with augmentation", r1.ValAcc)
	}
}
