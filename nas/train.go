package nas

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"hwnas/nas/data"
)

// Batch is one training mini-batch as the loss sees it.
type Batch struct {
	N       int
	X       []float32 // N·input size floats (NCHW)
	Labels  []int32   // N labels
	Indices []int     // the samples' indices in the training set
}

// LossFunc computes the mean loss of a batch from its logits (N×classes,
// row-major) and writes ∂loss/∂logits into dlogits (same layout). It
// replaces the default softmax cross-entropy, e.g. for knowledge
// distillation (run the teacher on b.X). It must not keep its slices.
type LossFunc func(b Batch, logits, dlogits []float32) (float32, error)

// TrainConfig configures Train. Zero values take the defaults noted.
type TrainConfig struct {
	Epochs      int     // default 1
	BatchSize   int     // default 64
	LR          float64 // base learning rate; default 0.05 for sgd, 0.001 for adam
	Optimizer   string  // "sgd" (default) or "adam"
	Momentum    float64 // sgd momentum; default 0.9 (set NoMomentum for plain SGD)
	NoMomentum  bool
	WeightDecay float64 // L2 (sgd) or decoupled (adam) decay of conv/linear weights; default 5e-4 (NoDecay for none)
	NoDecay     bool
	// WarmupSteps of linear learning-rate warm-up before the cosine decay;
	// default a tenth of an epoch but at least 100 steps (at most 500, and
	// at most a quarter of all steps).
	WarmupSteps int
	// ConstantLR turns the cosine schedule off (fine-tuning at a fixed rate).
	ConstantLR bool
	Seed       uint64 // shuffling seed; the same seed, model and data give the same result
	// Subset trains on the first Subset training samples only (0: all).
	Subset int
	// Augment transforms every training batch (random crop with padding,
	// horizontal flip), drawn from a generator seeded with Seed; the zero
	// value leaves the images as they are.
	Augment data.Augment

	// Extension points (package compress uses them).

	// Loss replaces softmax cross-entropy (distillation).
	Loss LossFunc
	// WeightTransform is installed on the model for the duration of
	// training (and its validation passes), e.g. fake quantization with
	// straight-through gradients; see the WeightTransform type.
	WeightTransform WeightTransform
	// GradHook runs after every backward pass, before the optimizer step:
	// it may change p.Grad (e.g. add λ·sign(γ) for network slimming).
	GradHook func(m *Model) error
	// AfterStep runs after every optimizer step (step counts from 1): it
	// may change p.Data (e.g. re-apply pruning masks).
	AfterStep func(m *Model, step int) error
}

func (c TrainConfig) withDefaults() TrainConfig {
	if c.Epochs <= 0 {
		c.Epochs = 1
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 64
	}
	if c.LR == 0 {
		c.LR = 0.05
		if c.Optimizer == "adam" {
			c.LR = 0.001
		}
	}
	if c.Momentum == 0 && !c.NoMomentum {
		c.Momentum = 0.9
	}
	if c.WeightDecay == 0 && !c.NoDecay {
		c.WeightDecay = 5e-4
	}
	return c
}

// Progress reports training as it goes: after every batch (EpochDone
// false) and once at the end of each epoch with the validation figures.
type Progress struct {
	Epoch, Epochs   int     // 1-based
	Batch, Batches  int     // 1-based within the epoch
	Loss, Accuracy  float64 // running means over the epoch so far
	LR              float64
	ImagesPerSecond float64
	EpochDone       bool
	// Set when EpochDone:
	ValAccuracy, ValLoss float64
	EpochSeconds         float64
}

// EpochResult is one epoch's summary.
type EpochResult struct {
	Epoch       int     `json:"epoch"`
	TrainLoss   float64 `json:"train_loss"`
	TrainAcc    float64 `json:"train_accuracy"`
	ValLoss     float64 `json:"val_loss"`
	ValAcc      float64 `json:"val_accuracy"`
	Seconds     float64 `json:"seconds"`
	ImagesPerS  float64 `json:"images_per_second"`
	LearningEnd float64 `json:"lr_end"`
}

// Result summarises a training run.
type Result struct {
	Epochs []EpochResult `json:"epochs"`
	Steps  int           `json:"steps"`
	// ValAcc and ValLoss are the last epoch's validation figures (zero
	// when no validation set was given).
	ValAcc  float64 `json:"val_accuracy"`
	ValLoss float64 `json:"val_loss"`
	Seconds float64 `json:"seconds"`
}

// ErrNaN is wrapped by Train's error when the loss stops being finite.
var ErrNaN = errors.New("loss is not finite")

// Train trains m on train with mini-batch gradient descent and reports
// progress (which may be nil) as it goes; val, when not nil, is evaluated
// after every epoch. Samples are shuffled each epoch by a generator seeded
// with cfg.Seed, so training is deterministic given the seed, the model's
// initial weights and deterministic kernels. Cancelling ctx stops training
// between batches with ctx's error; a non-finite loss stops it with ErrNaN.
// The model's weights are left as trained when an error stops it.
func Train(ctx context.Context, m *Model, train, val *data.Set, cfg TrainConfig, progress func(Progress)) (Result, error) {
	cfg = cfg.withDefaults()
	var res Result
	if train == nil || train.N == 0 {
		return res, errors.New("train: no training data")
	}
	train = train.Subset(cfg.Subset)
	if err := m.checkSet(train); err != nil {
		return res, err
	}
	if val != nil {
		if err := m.checkSet(val); err != nil {
			return res, err
		}
	}
	k, err := m.kernels()
	if err != nil {
		return res, err
	}
	opt, err := NewOptimizer(cfg.Optimizer, cfg.Momentum, cfg.WeightDecay)
	if err != nil {
		return res, err
	}
	if cfg.WeightTransform != nil {
		old := m.WeightTransform
		m.WeightTransform = cfg.WeightTransform
		defer func() { m.WeightTransform = old }()
	}
	bs := min(cfg.BatchSize, train.N)
	batches := (train.N + bs - 1) / bs
	total := batches * cfg.Epochs
	warm := cfg.WarmupSteps
	if warm == 0 {
		// A tenth of an epoch, at least 100 steps, but never more than a
		// quarter of the run: short proxy runs at the default rate diverge
		// with only a few warm-up steps.
		warm = min(max(batches/10, 100), 500, total/4)
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x7472_6169_6e5f_7368))    // "train_sh"
	augRng := rand.New(rand.NewPCG(cfg.Seed, 0x6175_676d_656e_7421)) // "augment!"
	var augScratch []float32
	if !cfg.Augment.IsZero() {
		if train.C*train.H*train.W != train.SampleSize() || train.H < 1 {
			return res, fmt.Errorf("train: augmentation %s needs images, %s has samples of %d values", cfg.Augment, train.Name, train.SampleSize())
		}
		augScratch = make([]float32, train.SampleSize())
	}
	perm := make([]int, train.N)
	for i := range perm {
		perm[i] = i
	}
	sample := train.SampleSize()
	classes := m.Arch.Classes
	x := make([]float32, bs*sample)
	labels := make([]int32, bs)
	probs := make([]float32, bs*classes)
	dlogits := make([]float32, bs*classes)
	start := time.Now()
	step := 0
	for ep := 1; ep <= cfg.Epochs; ep++ {
		rng.Shuffle(len(perm), func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
		t0 := time.Now()
		var lossSum, correct float64
		seen := 0
		lr := cfg.LR
		for b := 0; b < batches; b++ {
			if err := ctx.Err(); err != nil {
				return res, err
			}
			idx := perm[b*bs : min((b+1)*bs, train.N)]
			n := len(idx)
			if err := train.Batch(idx, x, labels); err != nil {
				return res, err
			}
			cfg.Augment.Apply(x[:n*sample], n, train.C, train.H, train.W, augRng, augScratch)
			ws, err := m.forward(x[:n*sample], n, true)
			if err != nil {
				return res, err
			}
			logits := ws.acts[m.Graph.Output]
			var loss float32
			if cfg.Loss != nil {
				loss, err = cfg.Loss(Batch{N: n, X: x[:n*sample], Labels: labels[:n], Indices: idx}, logits, dlogits[:n*classes])
			} else {
				loss, err = k.SoftmaxCrossEntropy(n, classes, logits, labels[:n], probs[:n*classes], dlogits[:n*classes])
			}
			if err != nil {
				return res, fmt.Errorf("train: loss: %w", err)
			}
			if math.IsNaN(float64(loss)) || math.IsInf(float64(loss), 0) {
				return res, fmt.Errorf("train: epoch %d batch %d: %w (%v); lower the learning rate (%g)", ep, b+1, ErrNaN, loss, cfg.LR)
			}
			correct += float64(countCorrect(logits, labels[:n], classes))
			if err := m.backward(ws, dlogits[:n*classes]); err != nil {
				return res, err
			}
			if cfg.GradHook != nil {
				if err := cfg.GradHook(m); err != nil {
					return res, fmt.Errorf("train: grad hook: %w", err)
				}
			}
			lr = cfg.LR
			if !cfg.ConstantLR {
				lr = CosineLR(cfg.LR, step, warm, total)
			}
			opt.Step(m.Params, lr)
			step++
			if cfg.AfterStep != nil {
				if err := cfg.AfterStep(m, step); err != nil {
					return res, fmt.Errorf("train: after step %d: %w", step, err)
				}
			}
			lossSum += float64(loss) * float64(n)
			seen += n
			if progress != nil {
				progress(Progress{Epoch: ep, Epochs: cfg.Epochs, Batch: b + 1, Batches: batches,
					Loss: lossSum / float64(seen), Accuracy: correct / float64(seen), LR: lr,
					ImagesPerSecond: float64(seen) / time.Since(t0).Seconds()})
			}
		}
		secs := time.Since(t0).Seconds()
		er := EpochResult{Epoch: ep, TrainLoss: lossSum / float64(seen), TrainAcc: correct / float64(seen),
			Seconds: secs, ImagesPerS: float64(seen) / secs, LearningEnd: lr}
		if val != nil {
			if er.ValAcc, er.ValLoss, err = Evaluate(m, val); err != nil {
				return res, err
			}
		}
		res.Epochs = append(res.Epochs, er)
		res.ValAcc, res.ValLoss = er.ValAcc, er.ValLoss
		if progress != nil {
			progress(Progress{Epoch: ep, Epochs: cfg.Epochs, Batch: batches, Batches: batches, Loss: er.TrainLoss,
				Accuracy: er.TrainAcc, LR: lr, ImagesPerSecond: er.ImagesPerS, EpochDone: true,
				ValAccuracy: er.ValAcc, ValLoss: er.ValLoss, EpochSeconds: secs})
		}
	}
	res.Steps = step
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}

// CheckData reports whether a data set fits the model: image shape equal
// to the architecture's input, no more classes than outputs, consistent
// lengths. Train and Evaluate check it too.
func (m *Model) CheckData(s *data.Set) error { return m.checkSet(s) }

func (m *Model) checkSet(s *data.Set) error {
	in := m.Graph.Tensors[0]
	if s.SampleSize() != in.Size() || (len(in) == 3 && (s.C != in[0] || s.H != in[1] || s.W != in[2])) {
		return fmt.Errorf("data set %s has %d×%d×%d images, architecture %q expects %v", s.Name, s.C, s.H, s.W, m.Arch.Name, in)
	}
	if s.Classes > m.Arch.Classes {
		return fmt.Errorf("data set %s has %d classes, architecture %q has %d outputs", s.Name, s.Classes, m.Arch.Name, m.Arch.Classes)
	}
	if len(s.Images) != s.N*s.SampleSize() || len(s.Labels) != s.N {
		return fmt.Errorf("data set %s: %d image floats and %d labels for %d samples", s.Name, len(s.Images), len(s.Labels), s.N)
	}
	return nil
}

// countCorrect counts rows whose largest logit is at the label.
func countCorrect(logits []float32, labels []int32, k int) int {
	c := 0
	for r, l := range labels {
		row := logits[r*k : (r+1)*k]
		best := 0
		for j, v := range row {
			if v > row[best] {
				best = j
			}
		}
		if best == int(l) {
			c++
		}
	}
	return c
}

// EvalBatch is the batch size Evaluate uses.
const EvalBatch = 256

// Evaluate runs m in evaluation mode over set and returns the top-1
// accuracy (0..1) and the mean softmax cross-entropy.
func Evaluate(m *Model, set *data.Set) (accuracy, loss float64, err error) {
	if set == nil || set.N == 0 {
		return 0, 0, errors.New("evaluate: empty data set")
	}
	if err := m.checkSet(set); err != nil {
		return 0, 0, err
	}
	k, err := m.kernels()
	if err != nil {
		return 0, 0, err
	}
	classes := m.Arch.Classes
	sample := set.SampleSize()
	probs := make([]float32, EvalBatch*classes)
	correct, lossSum := 0, 0.0
	for from := 0; from < set.N; from += EvalBatch {
		n := min(EvalBatch, set.N-from)
		ws, err := m.forward(set.Images[from*sample:(from+n)*sample], n, false)
		if err != nil {
			return 0, 0, err
		}
		logits := ws.acts[m.Graph.Output]
		l, err := k.SoftmaxCrossEntropy(n, classes, logits, set.Labels[from:from+n], probs[:n*classes], nil)
		if err != nil {
			return 0, 0, fmt.Errorf("evaluate %s: %w", set.Name, err)
		}
		lossSum += float64(l) * float64(n)
		correct += countCorrect(logits, set.Labels[from:from+n], classes)
	}
	return float64(correct) / float64(set.N), lossSum / float64(set.N), nil
}
