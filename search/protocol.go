package search

import (
	"encoding/json"
	"fmt"
	"math"
	"time"

	"hwnas/accel"
	"hwnas/nas"
	"hwnas/nas/data"
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

	Device  string               `json:"device"` // accel spec: "cpu", "cuda:0"
	Threads int                  `json:"threads,omitempty"`
	Batch   int                  `json:"batch"` // latency batch (default 1)
	Latency accel.LatencyOptions `json:"latency"`
	// OpTable is the device's per-op latency table (op key → ns) the
	// worker predicts the model's latency from.
	OpTable map[string]float64 `json:"op_table,omitempty"`
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

	Device  accel.Device       `json:"device"`
	Batch   int                `json:"batch"`
	Latency accel.LatencyStats `json:"latency"`
	PerOp   []OpTime           `json:"per_op,omitempty"`
	// PredictedNs is the per-op table's prediction of Latency.Median (0
	// while the table is empty); PredCoverage the fraction of the plan's
	// ops the table knew exactly (the others are estimated from ops of the
	// same kind).
	PredictedNs  float64 `json:"predicted_ns,omitempty"`
	PredCoverage float64 `json:"prediction_coverage,omitempty"`

	Arch    *nas.Arch       `json:"arch,omitempty"` // after structured pruning
	Recipe  json.RawMessage `json:"recipe,omitempty"`
	Weights []byte          `json:"weights,omitempty"` // encoded compressed weights

	Error      string `json:"error,omitempty"`
	FailReason string `json:"fail_reason,omitempty"`
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
	if measured && r.Latency.Median <= 0 {
		return fmt.Errorf("result: latency median %v is not positive", r.Latency.Median)
	}
	if r.Bytes <= 0 {
		return fmt.Errorf("result: compressed size %d is not positive", r.Bytes)
	}
	return nil
}

// PredictionError is (predicted − measured)/measured, or NaN without a
// prediction.
func (r *TrialResult) PredictionError() float64 {
	if r.PredictedNs <= 0 || r.Latency.Median <= 0 {
		return math.NaN()
	}
	m := float64(r.Latency.Median)
	return (r.PredictedNs - m) / m
}

// LatencyMedian is the measured median as a duration.
func (r *TrialResult) LatencyMedian() time.Duration { return r.Latency.Median }
