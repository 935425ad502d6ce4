package store

import (
	"encoding/json"
	"time"

	"hwnas/accel"
)

// Study statuses.
const (
	StudyRunning = "running"
	StudyDone    = "done"
	StudyStopped = "stopped"
	StudyFailed  = "failed"
)

// Study is one search: its data set, target device, strategy and
// configuration. Trials belong to it.
type Study struct {
	ID                int64           `json:"id"`
	Name              string          `json:"name"`
	Dataset           string          `json:"dataset"`
	DeviceSpec        string          `json:"device_spec"` // as given: "cpu", "cuda:0"
	DeviceName        string          `json:"device_name"`
	DeviceFingerprint string          `json:"device_fingerprint"`
	Strategy          string          `json:"strategy"`
	Config            json.RawMessage `json:"config"` // the search configuration (space, budget, reward)
	// DataInfo describes the data set the study searches on (nas/data.Info
	// as JSON; {} for studies made before it was recorded).
	DataInfo json.RawMessage `json:"data_info"`
	Status   string          `json:"status"`
	Created  time.Time       `json:"created"`
	Updated  time.Time       `json:"updated"`
}

// StudySummary is a Study with counts of its trials by status and the best
// reward of its finished trials.
type StudySummary struct {
	Study
	Pending    int      `json:"pending"`
	Running    int      `json:"running"`
	Done       int      `json:"done"`
	Failed     int      `json:"failed"`
	BestReward *float64 `json:"best_reward,omitempty"` // nil before the first finished trial
}

// TrialStatus is where a trial is in its life: pending → running → done or
// failed; RequeueRunning sends running back to pending.
type TrialStatus string

// Trial statuses.
const (
	Pending TrialStatus = "pending"
	Running TrialStatus = "running"
	Done    TrialStatus = "done"
	Failed  TrialStatus = "failed"
)

// TrialSpec is what the search proposes for a new trial.
type TrialSpec struct {
	Decisions json.RawMessage // the strategy's choices; nil is stored as JSON null
	Arch      json.RawMessage // the architecture (nas arch JSON)
	Recipe    json.RawMessage // the per-layer compression recipe
}

// Trial is one proposed model and what became of it.
type Trial struct {
	ID        int64           `json:"id"` // unique across studies
	StudyID   int64           `json:"study_id"`
	Study     string          `json:"study"`
	Number    int             `json:"number"` // 0, 1, 2, … within the study, never reused
	Decisions json.RawMessage `json:"decisions"`
	Arch      json.RawMessage `json:"arch"`
	Recipe    json.RawMessage `json:"recipe"`
	Status    TrialStatus     `json:"status"`
	Stage     string          `json:"stage,omitempty"` // StageMeasure: trained, waiting for the study's device
	Worker    string          `json:"worker,omitempty"`
	Attempts  int             `json:"attempts"` // times started (a requeued trial runs again)
	Created   time.Time       `json:"created"`
	Started   time.Time       `json:"started,omitzero"`
	Finished  time.Time       `json:"finished,omitzero"`
	Error     string          `json:"error,omitempty"`
	Metrics   *Metrics        `json:"metrics,omitempty"`   // set once done
	Latencies []Latency       `json:"latencies,omitempty"` // every device and batch measured
}

// Metrics are what evaluating a trained, compressed trial gave.
type Metrics struct {
	ValAccuracy     float64 `json:"val_accuracy"`
	TestAccuracy    float64 `json:"test_accuracy"`    // meaningful only when HasTest
	HasTest         bool    `json:"has_test"`         // test accuracy is measured for final reports only
	Params          int64   `json:"params"`           // parameters left after compression
	CompressedBytes int64   `json:"compressed_bytes"` // exact size of the compressed weights
	MACs            int64   `json:"macs"`
	TrainSeconds    float64 `json:"train_seconds"`
	Reward          float64 `json:"reward"`
	// Estimate marks figures taken with a supernet's shared weights (the
	// enas strategy), not of the trial's network trained on its own; Best
	// leaves such trials out.
	Estimate bool `json:"estimate,omitempty"`
}

// Latency is one trial measured on one device at one batch size.
type Latency struct {
	// Device must carry Fingerprint and Name; the whole description is
	// kept once per fingerprint in the devices table.
	Device accel.Device `json:"device"`
	Batch  int          `json:"batch"`
	// Runtime is what ran the model: "" or RuntimeHwnas for hwnas's own
	// kernels; another runtime's figures for the same trial, device and
	// batch are kept beside them.
	Runtime string             `json:"runtime,omitempty"`
	Stats   accel.LatencyStats `json:"stats"`
	// Predicted is the latency predictor's estimate for the same model
	// and batch; zero when there was none.
	Predicted time.Duration `json:"predicted_ns,omitempty"`
	// Reference names the model measured in the same interleaved rounds
	// (a built-in architecture built for the study's data shape, e.g.
	// "lenet5") and RefLatency its figure in those rounds. Ratio is the
	// trial's figure over the reference's usual figure on the device (the
	// median of its latest measurements there, this one included), with
	// the figure's interval; empty, 0 and nil when measured without one.
	Reference  string        `json:"reference,omitempty"`
	RefLatency time.Duration `json:"reference_ns,omitempty"`
	Ratio      *accel.Ratio  `json:"ratio,omitempty"`
	// Disturbed marks a figure measured while the reference ran markedly
	// slower than its usual figure on the device (interference from other
	// work), after re-measuring did not help.
	Disturbed bool `json:"disturbed,omitempty"`
	// Probe is the drift control's figure in the same rounds (the
	// built-in ProbeModel, built for the trial's data shape) and Drift
	// that figure over the probe's usual figure on the device: Stats'
	// Latency, Low and High are the measured floors divided by Drift, the
	// figure the device gives in its usual state. 0 and 0 (read as 1)
	// when measured without a probe.
	Probe time.Duration `json:"probe_ns,omitempty"`
	Drift float64       `json:"drift,omitempty"`
	// Ops are the measurement's per-op times as JSON (hwnas's kernels),
	// stored with the row and read back by StudyOpTimes only.
	Ops json.RawMessage `json:"-"`
}

// DriftFactor is l.Drift, 1 when none was measured.
func (l Latency) DriftFactor() float64 {
	if l.Drift <= 0 {
		return 1
	}
	return l.Drift
}

// Figure is the latency figure rankings use (Stats.Figure).
func (l Latency) Figure() time.Duration { return l.Stats.Figure() }

// ProbeModel names the built-in architecture measured beside every trial
// as the drift control; its figures are kept with the reference
// figures under this name.
const ProbeModel = "probe"

// RuntimeHwnas names hwnas's own kernels as the runtime of a latency.
const RuntimeHwnas = "hwnas"

// RuntimeName is l.Runtime, RuntimeHwnas when empty.
func (l Latency) RuntimeName() string {
	if l.Runtime == "" {
		return RuntimeHwnas
	}
	return l.Runtime
}

// PredictionError is (Predicted − figure)/figure, the predictor's
// relative error; 0 when there is no prediction.
func (l Latency) PredictionError() float64 {
	f := l.Figure()
	if l.Predicted == 0 || f == 0 {
		return 0
	}
	return float64(l.Predicted-f) / float64(f)
}

// TrialFilter narrows ListTrials. Zero fields do not filter.
type TrialFilter struct {
	Status TrialStatus
	// Limit keeps the first Limit trials by number (0: all).
	Limit int
	// From and Below bound the trial numbers: From ≤ number, and
	// number < Below when Below > 0.
	From, Below int
}

// Metric names the accuracy Best and ParetoFront rank by.
type Metric string

const (
	// ByValidation ranks by validation accuracy, what searches decide on
	// (the default).
	ByValidation Metric = "val"
	// ByTest ranks by test accuracy and leaves out trials without one.
	ByTest Metric = "test"
)

// Query selects finished trials measured on a device for Best.
type Query struct {
	// Device matches a fingerprint, a device name (any case) or a backend
	// name ("cpu", "cuda").
	Device string
	// Study restricts to one study (empty: all studies).
	Study string
	// Batch of the latency to compare (0: 1).
	Batch int
	// Runtime of the latency to compare ("": RuntimeHwnas).
	Runtime string
	// MaxLatency, MinAccuracy, MaxBytes bound the results; zero means no
	// bound.
	MaxLatency  time.Duration
	MinAccuracy float64
	MaxBytes    int64
	// By is the accuracy ranked and bounded by (empty: ByValidation).
	By Metric
	// N caps the results (0: 10).
	N int
}

// Result is a finished trial with its metrics and its latency on one
// device.
type Result struct {
	TrialID  int64           `json:"trial_id"`
	Study    string          `json:"study"`
	Number   int             `json:"number"`
	Arch     json.RawMessage `json:"arch"`
	Recipe   json.RawMessage `json:"recipe"`
	Metrics  Metrics         `json:"metrics"`
	Latency  Latency         `json:"latency"`
	Accuracy float64         `json:"accuracy"` // the ranked accuracy (validation or test)
}

// Checkpoint is a saved search-controller state.
type Checkpoint struct {
	Step    int       `json:"step"`
	Blob    []byte    `json:"-"`
	Created time.Time `json:"created"`
}
