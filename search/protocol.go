package search

import (
	"encoding/json"
	"fmt"
	"hwnas/nas"
	"hwnas/nas/data"
	"hwnas/store"
	"math"
)

// TrialSpec is what the coordinator sends a worker on stdin: one candidate
// and how to evaluate it.
type TrialSpec struct {
	Study  string          `json:"study"`
	Trial  int             `json:"trial"`
	Seed   uint64          `json:"seed"`
	Config Config          `json:"config"`
	Arch   *nas.Arch       `json:"arch"`
	Recipe json.RawMessage `json:"recipe,omitempty"`

	Data string `json:"data"` // dataset folder (any format data.Load reads)
	// DataOptions are how the folder is read; DataDigest, when set, is the
	// split digest the study recorded, which the loaded data must match.
	DataOptions data.Options `json:"data_options"`
	DataDigest  string       `json:"data_digest,omitempty"`
	// BatchAugment is the augmentation of every training batch (proxy
	// training, fine-tuning, teacher) in data.Augment's form; "": none.
	BatchAugment string `json:"batch_augment,omitempty"`
	Epochs       int    `json:"epochs"` // proxy training epochs
	Subset       int    `json:"subset"` // training images used (0: all)
	// Optimizer, LR and BatchSize of the proxy training (zero: nas.Train's
	// defaults).
	Optimizer string  `json:"optimizer,omitempty"`
	LR        float64 `json:"lr,omitempty"`
	BatchSize int     `json:"batch_size,omitempty"`
	// FineTuneEpochs after each compression step (0: 1).
	FineTuneEpochs int `json:"fine_tune_epochs,omitempty"`
	// FineTuneLR is the compression fine-tuning's rate (0: LR/5).
	FineTuneLR float64 `json:"fine_tune_lr,omitempty"`
	// Augment adds that many randomly shifted copies (±AugmentShift
	// pixels) of the training images (ShiftAugment) for training and
	// fine-tuning; 0: none.
	Augment int `json:"augment,omitempty"`
	// Teacher is the weights file of the study's distillation teacher
	// (TeacherArch), trained by the first trial that needs it for
	// TeacherEpochs (default 2) on the proxy subset.
	Teacher       string `json:"teacher,omitempty"`
	TeacherEpochs int    `json:"teacher_epochs,omitempty"`
	// ValSubset bounds the validation images used for the reward (0: all).
	ValSubset int `json:"val_subset,omitempty"`
	// Test also evaluates on the test split (for the report, never the
	// reward).
	Test bool `json:"test"`

	Device  string      `json:"device"` // accel spec: "cpu", "cuda:0"
	Threads int         `json:"threads,omitempty"`
	Batch   int         `json:"batch"` // latency batch (default 1)
	Measure LatencySpec `json:"measure"`
	// OpTable is the device's per-op latency table (op key → ns) the
	// worker predicts the model's latency from.
	OpTable map[string]float64 `json:"op_table,omitempty"`
	// Skip, when set, lets the worker skip a candidate the predictor
	// places far outside the latency budget before training it.
	Skip *SkipRule `json:"skip,omitempty"`
	// SkipMeasure leaves the latency to the study's measuring device
	// (hwnas measure --follow there): the worker trains, compresses and
	// evaluates only.
	SkipMeasure bool `json:"skip_measure,omitempty"`
}

// OpTime is the measured time of one plan op and its latency-table key.
type OpTime struct {
	Name string  `json:"name"`
	Key  string  `json:"key"`
	Ns   float64 `json:"ns"`
}

// TrialResult is what a worker prints on stdout. Error (with FailReason)
// is set instead of the metrics when the trial failed in a way the worker
// could detect itself (NaN loss, an invalid candidate).
type TrialResult struct {
	Trial        int     `json:"trial"`
	ValAccuracy  float64 `json:"val_accuracy"`
	TestAccuracy float64 `json:"test_accuracy"`
	Params       int64   `json:"params"`
	Bytes        int64   `json:"bytes"` // exact compressed size
	MACs         int64   `json:"macs"`
	TrainSeconds float64 `json:"train_seconds"`
	FinalLoss    float64 `json:"final_loss"`

	// Latencies are the model's latency on the spec's device, one per
	// runtime measured: hwnas's kernels first (with the prediction).
	Latencies []store.Latency `json:"latencies,omitempty"`
	PerOp     []OpTime        `json:"per_op,omitempty"`
	// PredictedNs is the predictor's estimate of hwnas's figure (0 while
	// the device's table is empty); PredCoverage the fraction of the
	// plan's ops the table knew exactly (the others are estimated from
	// their kernel class's entries).
	PredictedNs  float64 `json:"predicted_ns,omitempty"`
	PredCoverage float64 `json:"prediction_coverage,omitempty"`
	// Attempts at the latency measurement (more than one: the reference
	// ran slower than usual and the rounds were run again).
	Attempts int `json:"attempts,omitempty"`
	// LatencyReused says the latencies are those measured earlier in the
	// same run for the same compressed network (the weight-sharing search
	// re-samples its favourites; see latencyCache).
	LatencyReused bool `json:"latency_reused,omitempty"`

	Arch    *nas.Arch       `json:"arch,omitempty"` // after structured pruning
	Recipe  json.RawMessage `json:"recipe,omitempty"`
	Weights []byte          `json:"weights,omitempty"` // encoded compressed weights

	Error      string `json:"error,omitempty"`
	FailReason string `json:"fail_reason,omitempty"`
	// Estimate marks figures of a supernet's shared weights (enas), not
	// of the candidate trained on its own.
	Estimate bool `json:"estimate,omitempty"`
}

// check rejects results no real model has.
func (r *TrialResult) check(measured bool) error {
	for _, v := range []struct {
		name string
		x    float64
	}{{"validation accuracy", r.ValAccuracy}, {"test accuracy", r.TestAccuracy}} {
		if math.IsNaN(v.x) || v.x < 0 || v.x > 1 {
			return fmt.Errorf("result: %s %v is not in [0,1]", v.name, v.x)
		}
	}
	if measured {
		if len(r.Latencies) == 0 {
			return fmt.Errorf("result: no latency")
		}
		for _, l := range r.Latencies {
			if l.Figure() <= 0 {
				return fmt.Errorf("result: %s latency %v is not positive", l.RuntimeName(), l.Figure())
			}
		}
	}
	if r.Bytes <= 0 {
		return fmt.Errorf("result: compressed size %d is not positive", r.Bytes)
	}
	return nil
}

// Row returns the result's latency in runtime rt ("": hwnas).
func (r *TrialResult) Row(rt string) (store.Latency, bool) {
	for _, l := range r.Latencies {
		if l.RuntimeName() == rt || (rt == "" && l.RuntimeName() == store.RuntimeHwnas) {
			return l, true
		}
	}
	return store.Latency{}, false
}

// PredictionError is (predicted − measured)/measured of hwnas's figure,
// or NaN without a prediction.
func (r *TrialResult) PredictionError() float64 {
	l, ok := r.Row("")
	if r.PredictedNs <= 0 || !ok || l.Figure() <= 0 {
		return math.NaN()
	}
	m := float64(l.Figure())
	return (r.PredictedNs - m) / m
}
