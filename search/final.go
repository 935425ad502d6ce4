package search

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"hwnas/store"
)

// FinalOptions ask Run to train the study's winner again with a full
// budget once the search is over: the trial with the highest reward is
// re-run from scratch for Epochs epochs on Subset training images (0: all)
// at rate LR
// and recorded as a new trial of the study, marked as final. A final
// training with the same budget is never repeated; another budget trains
// again. Its metrics
// (test accuracy included) are what a report should quote; the strategy
// never sees it and it does not count against the trial budget.
type FinalOptions struct {
	Epochs int
	Subset int
	// FineTuneEpochs after each compression step (default 1).
	FineTuneEpochs int
	// LR is the final training's base learning rate (0: the study's
	// proxy rate).
	LR float64
	// FineTuneLR is the compression fine-tuning's rate after the final
	// training (0: LR/25). The final training ends annealed; restarting
	// at a fifth of its rate, as the short proxy trainings do, threw a
	// Fashion-MNIST winner out of its minimum (hwnas compress of the
	// trained network with the winner's sharing: −0.75 points of test
	// accuracy at LR/5 for 2 epochs, −0.16 at LR/25, −0.14 without
	// fine-tuning).
	FineTuneLR float64
	// Augment adds that many randomly shifted copies of the training
	// images (ShiftAugment, ±AugmentShift pixels); 0: none.
	Augment int
	// Optimizer of the final training, "sgd" or "adam" ("": the study's
	// proxy optimizer). A long training generalises better with SGD and
	// momentum on the cosine schedule than with Adam.
	Optimizer string
	// BatchSize is the final training's mini-batch (0: the study's proxy
	// batch).
	BatchSize int
	Timeout   time.Duration // default 4× the trial limit
}

// finalMarker is the decisions JSON of a final trial.
type finalMarker struct {
	FinalOf   int       `json:"final_of"`
	Decisions Decisions `json:"decisions"`
	Epochs    int       `json:"epochs"`
	Subset    int       `json:"subset"`
	FineTune  int       `json:"fine_tune_epochs,omitempty"`
	LR        float64   `json:"lr,omitempty"`
	Augment   int       `json:"augment,omitempty"`
	Optimizer string    `json:"optimizer,omitempty"`
	BatchSize int       `json:"batch_size,omitempty"`
	FineLR    float64   `json:"fine_tune_lr,omitempty"`
}

// parseDecisions reads a trial's decisions: a plain index vector, or a
// final trial's marker (final != nil).
func parseDecisions(raw json.RawMessage) (Decisions, *finalMarker, error) {
	if bytes.HasPrefix(bytes.TrimSpace(raw), []byte("{")) {
		var f finalMarker
		if err := json.Unmarshal(raw, &f); err != nil {
			return nil, nil, err
		}
		return f.Decisions, &f, nil
	}
	var d Decisions
	err := json.Unmarshal(raw, &d)
	return d, nil, err
}

// runFinal trains the best trial again with the final budget, unless that
// was done already; a final trial left pending or running by a killed
// coordinator is run again.
func (c *coordinator) runFinal(ctx context.Context, fo FinalOptions) error {
	trials, err := c.o.DB.ListTrials(ctx, c.st.ID, store.TrialFilter{})
	if err != nil {
		return err
	}
	var best *store.Trial
	finals := map[int]*store.Trial{}
	for i := range trials {
		t := &trials[i]
		_, fm, err := parseDecisions(t.Decisions)
		if err != nil {
			return fmt.Errorf("trial %d: decisions: %w", t.Number, err)
		}
		if fm != nil {
			if fm.Epochs == fo.Epochs && fm.Subset == fo.Subset && max(1, fm.FineTune) == max(1, fo.FineTuneEpochs) && fm.LR == fo.LR && fm.Augment == fo.Augment && fm.Optimizer == fo.Optimizer && fm.BatchSize == fo.BatchSize && fm.FineLR == fo.FineTuneLR {
				finals[fm.FinalOf] = t
			}
			continue
		}
		if t.Status == store.Done && t.Metrics != nil && (best == nil || t.Metrics.Reward > best.Metrics.Reward) {
			best = t
		}
	}
	if best == nil {
		fmt.Fprintf(c.log, "final training: no finished trial to train\n")
		return nil
	}
	tr := finals[best.Number]
	switch {
	case tr != nil && (tr.Status == store.Done || tr.Status == store.Failed):
		return nil
	case tr == nil:
		d, _, _ := parseDecisions(best.Decisions)
		raw, err := json.Marshal(finalMarker{FinalOf: best.Number, Decisions: d, Epochs: fo.Epochs, Subset: fo.Subset, FineTune: fo.FineTuneEpochs, LR: fo.LR, Augment: fo.Augment, Optimizer: fo.Optimizer, BatchSize: fo.BatchSize, FineLR: fo.FineTuneLR})
		if err != nil {
			return err
		}
		t, err := c.o.DB.AddTrial(ctx, c.st.ID, store.TrialSpec{Decisions: raw, Arch: best.Arch, Recipe: best.Recipe})
		if err != nil {
			return err
		}
		tr = &t
	case tr.Status == store.Running:
		if _, err := c.o.DB.RequeueRunning(ctx, c.st.ID); err != nil {
			return err
		}
	}
	_, fm, _ := parseDecisions(tr.Decisions)
	images := "all training images"
	if fm.Subset > 0 {
		images = fmt.Sprintf("%d training images", fm.Subset)
	}
	if fm.Augment > 0 {
		images += fmt.Sprintf(" and %d shifted cop(ies) of each", fm.Augment)
	}
	if fm.Optimizer != "" {
		images += ", " + fm.Optimizer
	}
	if fm.BatchSize > 0 {
		images += fmt.Sprintf(", batch %d", fm.BatchSize)
	}
	fmt.Fprintf(c.log, "final training of trial %s as trial %s: %d epoch(s) on %s\n", best.Name(), tr.Name(), fm.Epochs, images)
	cfg, err := c.cfg.Space.Decode(fm.Decisions)
	if err != nil {
		return err
	}
	cand, err := BuildCandidate(cfg)
	if err != nil {
		return err
	}
	if err := c.o.DB.StartTrial(ctx, tr.ID, fmt.Sprintf("final pid:%d", os.Getpid())); err != nil {
		return err
	}
	spec := c.trialSpec(tr.Number, cfg, cand)
	spec.Epochs, spec.Subset, spec.ValSubset, spec.FineTuneEpochs = max(1, fm.Epochs), fm.Subset, 0, fm.FineTune
	if fm.LR > 0 {
		spec.LR = fm.LR
	}
	spec.Augment = fm.Augment
	if fm.Optimizer != "" {
		spec.Optimizer = fm.Optimizer
	}
	if fm.BatchSize > 0 {
		spec.BatchSize = fm.BatchSize
	}
	spec.FineTuneLR = spec.LR / 25
	if fm.FineLR > 0 {
		spec.FineTuneLR = fm.FineLR
	}
	if spec.Recipe, err = json.Marshal(cand.Layers); err != nil {
		return err
	}
	if spec.OpTable, err = c.opTable(ctx); err != nil {
		return err
	}
	if err = loadHistory(ctx, c.o.DB, c.st.DeviceFingerprint, spec.Batch, &spec.Measure); err != nil {
		return err
	}
	lim := c.o.Limits
	if fo.Timeout > 0 {
		lim.Timeout = fo.Timeout
	} else if lim.Timeout > 0 {
		lim.Timeout *= 4
	}
	t0 := time.Now()
	res, err := RunWorker(ctx, c.worker, c.o.WorkerEnv, spec, lim)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var te *TrialError
	if errors.As(err, &te) {
		fmt.Fprintf(c.log, "final training failed: %v\n", te)
		return c.o.DB.FailTrial(ctx, tr.ID, te.Error())
	}
	if err != nil {
		return err
	}
	row, err := c.cfg.rewardRow(res)
	var rew float64
	if err == nil {
		rew, err = c.reward.Of(res.ValAccuracy, row, res.Bytes)
	}
	if err != nil {
		return c.o.DB.FailTrial(ctx, tr.ID, (&TrialError{FailNaN, err.Error()}).Error())
	}
	if err := c.record(ctx, tr.ID, spec, res, rew); err != nil {
		return err
	}
	fmt.Fprintf(c.log, "final trial %s (of trial %s): reward %.4f val %.2f%% test %.2f%% %d bytes latency %v, %.0fs\n",
		tr.Name(), best.Name(), rew, 100*res.ValAccuracy, 100*res.TestAccuracy, res.Bytes, row.Figure().Round(100*time.Nanosecond), time.Since(t0).Seconds())
	c.sum.Final = &FinalResult{Trial: tr.Number, Of: best.Number, Reward: rew, ValAccuracy: res.ValAccuracy,
		TestAccuracy: res.TestAccuracy, Bytes: res.Bytes, LatencyNs: int64(row.Figure())}
	return nil
}

// FinalResult is the final training's outcome, in the Summary.
type FinalResult struct {
	Trial        int     `json:"trial"`
	Of           int     `json:"of"`
	Reward       float64 `json:"reward"`
	ValAccuracy  float64 `json:"val_accuracy"`
	TestAccuracy float64 `json:"test_accuracy"`
	Bytes        int64   `json:"bytes"`
	LatencyNs    int64   `json:"latency_ns"`
}
