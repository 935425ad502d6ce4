package search

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"hwnas/accel"
	"hwnas/nas"
	"hwnas/nas/compress"
	"hwnas/nas/data"
)

// FaultEnv names the environment variable that forces a worker fault for
// tests: "crash" (a panic), "hang" (sleeps), "nan" (a NaN in the training
// data) or "oom" (allocates until the memory limit stops it), optionally
// "@N" to hit trial N only ("crash@3").
const FaultEnv = "HWNAS_WORKER_FAULT"

// fault returns the forced fault for this trial ("" for none).
func fault(trial int) (string, error) {
	v := os.Getenv(FaultEnv)
	if v == "" {
		return "", nil
	}
	kind, at, found := strings.Cut(v, "@")
	switch kind {
	case "crash", "hang", "nan", "oom":
	default:
		return "", fmt.Errorf("%s=%q: want crash, hang, nan or oom, optionally @trial", FaultEnv, v)
	}
	if found {
		n, err := strconv.Atoi(at)
		if err != nil {
			return "", fmt.Errorf("%s=%q: trial %q is not a number", FaultEnv, v, at)
		}
		if n != trial {
			return "", nil
		}
	}
	return kind, nil
}

// ServeWorker is the body of `hwnas worker`: it reads one TrialSpec (JSON)
// from in, evaluates it and writes the TrialResult (JSON) to out. A trial
// that fails in a way the worker sees (NaN, an error from training,
// compression or measurement) is written as a result with Error and
// FailReason set and ServeWorker returns nil; errors returned mean the
// spec could not be read.
func ServeWorker(ctx context.Context, in io.Reader, out io.Writer) error {
	var spec TrialSpec
	dec := json.NewDecoder(in)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&spec); err != nil {
		return fmt.Errorf("worker: reading the trial spec: %w", err)
	}
	f, err := fault(spec.Trial)
	if err != nil {
		return err
	}
	switch f {
	case "crash":
		panic(fmt.Sprintf("forced worker fault (%s) in trial %d", FaultEnv, spec.Trial))
	case "hang":
		time.Sleep(365 * 24 * time.Hour)
	case "oom":
		var hog [][]byte
		for {
			b := make([]byte, 64<<20)
			for i := 0; i < len(b); i += 4096 {
				b[i] = 1
			}
			hog = append(hog, b)
		}
	}
	res, err := EvaluateTrial(ctx, &spec, f == "nan")
	var te *TrialError
	if errors.As(err, &te) {
		res = &TrialResult{Trial: spec.Trial, Error: te.Detail, FailReason: te.Reason}
	} else if err != nil {
		res = &TrialResult{Trial: spec.Trial, Error: err.Error(), FailReason: FailError}
	}
	enc := json.NewEncoder(out)
	return enc.Encode(res)
}

// EvaluateTrial trains the spec's candidate for the proxy budget,
// compresses it with its recipe, evaluates it (validation for the reward,
// test for the report), lowers it and measures it on the spec's device,
// with per-op times and the per-op table's prediction. poison puts a NaN
// into the first training image (the forced "nan" fault), which the
// training's NaN check must catch. A non-finite loss or accuracy is a
// *TrialError with reason FailNaN.
func EvaluateTrial(ctx context.Context, spec *TrialSpec, poison bool) (*TrialResult, error) {
	if spec.Arch == nil {
		return nil, fmt.Errorf("trial %d: no architecture", spec.Trial)
	}
	d, err := data.Load(spec.Data, spec.DataOptions)
	if err != nil {
		return nil, err
	}
	if spec.DataDigest != "" && d.Info.Digest != spec.DataDigest {
		return nil, fmt.Errorf("data folder %s changed since the study began: its split digest is %.12s, the study recorded %.12s (restore the folder or start a new study)",
			spec.Data, d.Info.Digest, spec.DataDigest)
	}
	aug, err := data.ParseAugment(spec.BatchAugment, d.Train.H, d.Train.W)
	if err != nil {
		return nil, err
	}
	train, val, test := d.Train.Subset(spec.Subset), d.Val, d.Test
	val = val.Subset(spec.ValSubset)
	if spec.Augment > 0 {
		if train, err = data.ShiftAugment(train, spec.Augment, AugmentShift, spec.Seed); err != nil {
			return nil, err
		}
	}
	if poison {
		p := *train
		p.Images = append([]float32(nil), train.Images...)
		for i := range p.Images[:p.SampleSize()] {
			p.Images[i] = float32(math.NaN())
		}
		train = &p
	}
	if err := checkSkip(ctx, spec, train, val); err != nil {
		return nil, err
	}
	m, err := nas.NewModel(spec.Arch, spec.Seed)
	if err != nil {
		return nil, &TrialError{FailInvalid, err.Error()}
	}
	kern, closeKern, err := nas.DefaultKernels(spec.Threads)
	if err != nil {
		return nil, err
	}
	defer closeKern()
	m.Kernels = kern
	t0 := time.Now()
	tr, err := nas.Train(ctx, m, train, nil, nas.TrainConfig{Epochs: max(1, spec.Epochs), Seed: spec.Seed,
		Optimizer: spec.Optimizer, LR: spec.LR, BatchSize: spec.BatchSize, Augment: aug}, nil)
	if errors.Is(err, nas.ErrNaN) {
		return nil, &TrialError{FailNaN, fmt.Sprintf("training: %v", err)}
	}
	if err != nil {
		return nil, fmt.Errorf("trial %d: training: %w", spec.Trial, err)
	}
	if err := checkFinite(m); err != nil {
		return nil, err
	}
	res := &TrialResult{Trial: spec.Trial, Recipe: spec.Recipe}
	if n := len(tr.Epochs); n > 0 {
		res.FinalLoss = tr.Epochs[n-1].TrainLoss
	}
	cr, err := compressModel(ctx, m, spec, train, val, aug)
	if errors.Is(err, nas.ErrNaN) {
		return nil, &TrialError{FailNaN, fmt.Sprintf("compression fine-tuning: %v", err)}
	}
	if err != nil {
		return nil, fmt.Errorf("trial %d: compressing: %w", spec.Trial, err)
	}
	m = cr.Model
	m.Kernels = kern
	if err := checkFinite(m); err != nil {
		return nil, err
	}
	res.TrainSeconds = time.Since(t0).Seconds()
	if res.Weights, err = EncodeTrialWeights(cr); err != nil {
		return nil, err
	}
	res.Bytes = int64(cr.Bytes)
	res.Arch = m.Arch
	res.Params = cr.ParamsAfter
	res.MACs = m.Graph.MACs()
	// Accuracy of the compressed model as it runs on the device's kernels
	// (int8 and sparse forms included).
	res.ValAccuracy = cr.ValAccAfter
	if spec.Test {
		if res.TestAccuracy, err = compress.EvaluatePlan(m, test, kern); err != nil {
			return nil, fmt.Errorf("trial %d: test: %w", spec.Trial, err)
		}
	}
	if math.IsNaN(res.ValAccuracy) || math.IsNaN(res.FinalLoss) || math.IsInf(res.FinalLoss, 0) {
		return nil, &TrialError{FailNaN, fmt.Sprintf("validation accuracy %v, final loss %v", res.ValAccuracy, res.FinalLoss)}
	}
	plan, err := nas.Lower(m)
	if err != nil {
		return nil, fmt.Errorf("trial %d: lowering: %w", spec.Trial, err)
	}
	if spec.SkipMeasure {
		return res, nil
	}
	if err := measure(spec, plan, val, res); err != nil {
		return nil, fmt.Errorf("trial %d: %w", spec.Trial, err)
	}
	return res, nil
}

// checkFinite fails with FailNaN when a parameter or buffer of m is NaN
// or infinite: the loss can stay finite (a ReLU maps NaN to 0) while the
// weights are already ruined.
func checkFinite(m *nas.Model) error {
	for _, p := range m.Tensors() {
		for _, v := range p.Data {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return &TrialError{FailNaN, fmt.Sprintf("%s holds %v after training", p.Name, v)}
			}
		}
	}
	return nil
}

// compressModel applies the spec's per-layer recipe with compress.Apply
// (fine-tuning on the proxy subset at FineTuneLR, by default a fifth of the
// training rate, two
// gradual pruning rounds, Huffman coding), distilling from the study's
// teacher when the candidate asks for it.
func compressModel(ctx context.Context, m *nas.Model, spec *TrialSpec, train, val *data.Set, aug data.Augment) (*compress.Result, error) {
	var layers []LayerRecipe
	if len(spec.Recipe) > 0 {
		if err := json.Unmarshal(spec.Recipe, &layers); err != nil {
			return nil, fmt.Errorf("recipe: %w", err)
		}
	}
	var distill *compress.DistillSpec
	if spec.Config.Distill && spec.Teacher != "" {
		if err := ensureTeacher(ctx, spec, train, aug); err != nil {
			return nil, err
		}
		distill = &compress.DistillSpec{Teacher: spec.Teacher, TeacherArch: TeacherArch, T: 4, Alpha: 0.7}
	}
	lr := spec.LR / 5
	if spec.FineTuneLR > 0 {
		lr = spec.FineTuneLR
	}
	cfg := compress.Config{Train: nas.TrainConfig{Optimizer: spec.Optimizer, LR: lr, BatchSize: spec.BatchSize,
		Seed: spec.Seed, Subset: spec.Subset, Augment: aug}, FineTuneEpochs: spec.FineTuneEpochs, PruneRounds: 2, Threads: spec.Threads}
	return compress.Apply(ctx, m, CompressRecipe(layers, distill), train, val, cfg)
}

// AugmentShift is the largest shift, in pixels, of TrialSpec.Augment's
// copies.
const AugmentShift = 2

// TeacherArch is the built-in architecture distilling candidates learn
// from, built for the study's data shape and normalisation;
// ensureTeacher trains it once per study.
const TeacherArch = "lenet5"

// teacherShape is what the teacher is built for: the candidate's input,
// classes and normalisation.
func teacherShape(a *nas.Arch) nas.DataShape {
	return nas.DataShape{Input: a.Input, Classes: a.Classes, Normalize: a.Normalize}
}

// ensureTeacher trains the study's teacher on the proxy subset for
// spec.TeacherEpochs (default 2) and saves it atomically at spec.Teacher,
// unless a previous trial already did.
func ensureTeacher(ctx context.Context, spec *TrialSpec, train *data.Set, aug data.Augment) error {
	if _, err := os.Stat(spec.Teacher); err == nil {
		return nil
	}
	a, err := nas.BuiltinArchFor(TeacherArch, teacherShape(spec.Arch))
	if err != nil {
		return err
	}
	t, err := nas.NewModel(a, spec.Seed)
	if err != nil {
		return err
	}
	kern, closeKern, err := nas.DefaultKernels(spec.Threads)
	if err != nil {
		return err
	}
	defer closeKern()
	t.Kernels = kern
	epochs := spec.TeacherEpochs
	if epochs <= 0 {
		epochs = 2
	}
	if _, err := nas.Train(ctx, t, train, nil, nas.TrainConfig{Epochs: epochs, Seed: spec.Seed, Subset: spec.Subset, Augment: aug}, nil); err != nil {
		return fmt.Errorf("training the teacher: %w", err)
	}
	return nas.SaveWeights(spec.Teacher, t)
}

// measure opens the spec's device and measures plan on it with real
// validation images as input.
func measure(spec *TrialSpec, plan *accel.Plan, val *data.Set, res *TrialResult) error {
	be, err := accel.Open(spec.Device, accel.Options{Threads: spec.Threads})
	if err != nil {
		return err
	}
	defer be.Close()
	batch := max(1, spec.Batch)
	in := make([]float32, batch*plan.Tensors[plan.Input].Size())
	for i := range in {
		in[i] = val.Images[i%len(val.Images)]
	}
	return measureOn(be, plan, teacherShape(spec.Arch), batch, spec.Threads, in, spec.Measure, spec.OpTable, res, quietTurn)
}

// measureOn measures plan on be beside the reference model (built for
// shape) in interleaved rounds, in every runtime of ls (measureGroup),
// and fills res with the latencies (hwnas's first, with the predictor's
// estimate from table made before this model's own op times are known)
// and hwnas's per-op times. turn, when not nil, is held around the rounds
// only (the quiet slot: the other trial processes of the machine are
// stopped meanwhile): compiling and the per-op times (the predictor's
// input) run outside it, to keep the time the other workers stand still
// short.
func measureOn(be accel.Backend, plan *accel.Plan, shape nas.DataShape, batch, threads int, in []float32, ls LatencySpec, table map[string]float64,
	res *TrialResult, turn func() (func(), error)) error {
	ctl, err := controlPlans(ls.reference(), shape)
	if err != nil {
		return err
	}
	g, err := measureGroup(be, []*accel.Plan{plan}, ctl, batch, threads, in, ls, turn)
	if err != nil {
		return err
	}
	defer g.close()
	res.Latencies, res.Attempts = g.rows[0], g.attempts
	if g.progs[0] == nil {
		return nil
	}
	res.PredictedNs, res.PredCoverage = PredictLatency(table, plan)
	res.Latencies[0].Predicted = time.Duration(res.PredictedNs)
	if ot, ok := g.progs[0].(accel.OpTimedProgram); ok {
		res.PerOp, err = perOpTimes(ot, plan, in, batch*g.progs[0].OutputSize(), 30, res.Latencies[0].Figure())
	}
	return err
}
