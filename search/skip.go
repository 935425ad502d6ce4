package search

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"time"

	"hwnas/nas"
	"hwnas/nas/compress"
	"hwnas/nas/data"
	"hwnas/store"
)

// SkipRule lets a worker skip training a candidate whose predicted
// latency on hwnas's kernels is more than Over times the budget: BudgetNs,
// or BudgetRatio times RefNs (the reference's usual figure on the device)
// for a relative budget. Record is the predictor's record on the device
// that earned the rule.
type SkipRule struct {
	Over        float64 `json:"over"`
	BudgetNs    int64   `json:"budget_ns,omitempty"`
	BudgetRatio float64 `json:"budget_ratio,omitempty"`
	RefNs       int64   `json:"ref_ns,omitempty"`
	Record      string  `json:"record"`
}

// Skipping asks for a predictor that has earned it: at least
// skipMinRecord of the device's latest skipRecord predictions, with
// at least skipMinWithin of those within ±10% of the measured figure.
const (
	skipRecord    = 20
	skipMinRecord = 10
	skipMinWithin = 0.8
)

// limit is the predicted latency (ns) above which a candidate is skipped.
func (r *SkipRule) limit() float64 {
	if r.BudgetRatio > 0 {
		return r.Over * r.BudgetRatio * float64(r.RefNs)
	}
	return r.Over * float64(r.BudgetNs)
}

// skipRule is the rule for the next trial of the study, or nil while the
// study does not skip (SkipOver 0, a runtime other than hwnas's kernels,
// whose latency the predictor does not model) or the device's predictor
// has not earned it yet.
func (w *worker) skipRule(ctx context.Context, spec *TrialSpec) (*SkipRule, error) {
	cfg := w.cfg
	if cfg.SkipOver <= 0 || (cfg.Runtime != "" && cfg.Runtime != store.RuntimeHwnas) || len(spec.OpTable) == 0 {
		return nil, nil
	}
	pred, meas, err := w.o.DB.RecentPredictions(ctx, w.st.DeviceFingerprint, max(1, spec.Batch), skipRecord)
	if err != nil || len(pred) < skipMinRecord {
		return nil, err
	}
	within := 0
	for i := range pred {
		if math.Abs(float64(pred[i]-meas[i])) <= 0.1*float64(meas[i]) {
			within++
		}
	}
	if float64(within) < skipMinWithin*float64(len(pred)) {
		return nil, nil
	}
	r := &SkipRule{Over: cfg.SkipOver, BudgetNs: cfg.Reward.LatencyTargetNs, BudgetRatio: cfg.Reward.LatencyTargetRatio,
		Record: fmt.Sprintf("%d of the device's last %d predictions within ±10%%", within, len(pred))}
	if r.BudgetRatio > 0 {
		r.RefNs = int64(usualFigure(spec.Measure.History[store.RuntimeHwnas]))
		if r.RefNs <= 0 {
			return nil, nil
		}
	}
	return r, nil
}

// compressUntrained is a candidate's compressed structure without
// training: its model built with weights from seed, its recipe applied
// without fine-tuning (64 calibration images). Pruning, sharing and int8
// make the same kernels and densities whatever the weights' values.
func compressUntrained(ctx context.Context, arch *nas.Arch, layers []LayerRecipe, seed uint64, train, val *data.Set, threads int) (*compress.Result, error) {
	m, err := nas.NewModel(arch, seed)
	if err != nil {
		return nil, err
	}
	return compress.Apply(ctx, m, CompressRecipe(layers, nil), train, val,
		compress.Config{NoFineTune: true, FinalOnly: true, PruneRounds: 1, CalibSamples: 64, Threads: threads})
}

// checkSkip predicts the candidate's latency before it is trained: its
// recipe is applied to the untrained model without fine-tuning (the
// compressed structure — pruned channels, factorised layers, int8 or
// sparse kernels — does not depend on trained weights), the result is
// lowered and the device's table predicts it. A prediction above the
// rule's limit is a *TrialError with reason FailSkipped.
func checkSkip(ctx context.Context, spec *TrialSpec, train, val *data.Set) error {
	r := spec.Skip
	if r == nil || len(spec.OpTable) == 0 || !(r.limit() > 0) {
		return nil
	}
	var layers []LayerRecipe
	if len(spec.Recipe) > 0 {
		if err := json.Unmarshal(spec.Recipe, &layers); err != nil {
			return fmt.Errorf("recipe: %w", err)
		}
	}
	cr, err := compressUntrained(ctx, spec.Arch, layers, spec.Seed, train.Subset(256), val.Subset(64), spec.Threads)
	if err != nil {
		return nil // the training and the real compression report it
	}
	plan, err := nas.Lower(cr.Model)
	if err != nil {
		return nil
	}
	ns, _ := PredictLatency(spec.OpTable, plan)
	if ns <= r.limit() {
		return nil
	}
	budget := time.Duration(r.BudgetNs).String()
	if r.BudgetRatio > 0 {
		budget = fmt.Sprintf("%gx the reference = %v", r.BudgetRatio, time.Duration(float64(r.RefNs)*r.BudgetRatio).Round(100*time.Nanosecond))
	}
	return &TrialError{FailSkipped, fmt.Sprintf("predicted latency %v is %.1f× the budget (%s), above the skip limit of %g× (predictor: %s); not trained",
		time.Duration(ns).Round(100*time.Nanosecond), ns/(r.limit()/r.Over), budget, r.Over, r.Record)}
}
