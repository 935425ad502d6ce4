package search

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
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
	// Top is how many of the best trials (distinct decisions, by reward)
	// are trained; the final model is the one of them with the best
	// validation accuracy within the bounds (0: DefaultENASFinalTop for
	// the enas strategy, 1 otherwise).
	Top int
	// Tries bounds the models trained in all (at least Top): a final model
	// over a hard reward's bounds does not count towards Top, and the
	// next trial is trained instead.
	Tries int
}

// DefaultENASFinalTop is how many of an enas study's best trials its final
// training trains by default. On five Fashion-MNIST enas studies (seeds
// 10, 11, 13, 14, 15; 2 epochs on 10,000 images), keeping the best on
// validation of the 10 best rather than of the 3 best raised the final
// model's test accuracy in all five, by 0.07–1.56 points (1.0 on
// average), for 7 more final trainings of 5–35 s each (docs/SEARCH.md).
const DefaultENASFinalTop = 10

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

// runFinal trains the study's best trials again with the final budget
// (fo.Top of them, distinct decisions by reward) and picks the final model
// among them on validation accuracy. A final already trained with that
// budget is not trained again; one left pending or running by a killed
// coordinator is run again.
//
// Under a hard reward the final model must keep the study's bounds too.
// Its size and latency can differ from its trial's: a shared layer's
// Huffman-coded size depends on its trained weights, and an enas trial's
// figures are those of weights inherited from the supernet. A final model
// over the latency target or the size budget is kept as a trial, and the
// next-best trial with other decisions is trained instead, up to
// fo.Tries models in all.
func (c *coordinator) runFinal(ctx context.Context, fo FinalOptions) error {
	trials, err := c.o.DB.ListTrials(ctx, c.st.ID, store.TrialFilter{})
	if err != nil {
		return err
	}
	type candidate struct {
		t   *store.Trial
		key string // its decisions
	}
	var ranked []candidate
	finals := map[string]*store.Trial{} // by the decisions they train
	for i := range trials {
		t := &trials[i]
		d, fm, err := parseDecisions(t.Decisions)
		if err != nil {
			return fmt.Errorf("trial %d: decisions: %w", t.Number, err)
		}
		if fm != nil {
			if fm.sameBudget(fo) {
				finals[d.key()] = t
			}
			continue
		}
		if t.Status == store.Done && t.Metrics != nil {
			ranked = append(ranked, candidate{t, d.key()})
		}
	}
	if len(ranked) == 0 {
		fmt.Fprintf(c.log, "final training: no finished trial to train\n")
		return nil
	}
	// Best reward first; the earlier trial first among equals.
	slices.SortStableFunc(ranked, func(a, b candidate) int { return cmp.Compare(b.t.Metrics.Reward, a.t.Metrics.Reward) })
	top := fo.top(c.cfg.Strategy)
	tries := max(top, fo.Tries)
	var (
		pick           *FinalResult
		trained        bool
		within, models int
	)
	seen := map[string]bool{}
	for _, rc := range ranked {
		if within == top || models == tries {
			break
		}
		if seen[rc.key] {
			continue
		}
		seen[rc.key] = true
		best := rc.t
		res, ran, err := c.finalOf(ctx, fo, best, finals[rc.key])
		if err != nil {
			return err
		}
		models++
		trained = trained || ran
		if res == nil {
			continue
		}
		if res.WithinBounds {
			within++
		} else if within < top && models < tries {
			fmt.Fprintf(c.log, "final model of trial %s is over the study's bounds (%d bytes, latency %v); training the next winner\n",
				best.Name(), res.Bytes, time.Duration(res.LatencyNs).Round(100*time.Nanosecond))
		}
		// Within the bounds first, then the better validation accuracy.
		if pick == nil || (res.WithinBounds && !pick.WithinBounds) || (res.WithinBounds == pick.WithinBounds && res.ValAccuracy > pick.ValAccuracy) {
			pick = res
		}
	}
	if within == 0 && models == tries {
		fmt.Fprintf(c.log, "final training: %d final model(s), none within the study's bounds (--final-tries)\n", models)
	}
	if trained && pick != nil {
		if models > 1 {
			fmt.Fprintf(c.log, "final model: trial %s (of trial %s), the best on validation (%.2f%%) of the %d final model(s), %d within the study's bounds\n",
				store.TrialName(c.st.Name, pick.Trial), store.TrialName(c.st.Name, pick.Of), 100*pick.ValAccuracy, models, within)
		}
		c.sum.Final = pick
	}
	return nil
}

// top is how many of the best trials are trained with the final budget.
func (fo FinalOptions) top(strategy string) int {
	switch {
	case fo.Top > 0:
		return fo.Top
	case strategy == StrategyENAS:
		// An enas trial's figure is a supernet estimate, a rough ranking
		// (Kendall τ about 0.45 against training on its own): its best ten
		// are trained.
		return DefaultENASFinalTop
	}
	return 1
}

// sameBudget reports whether a final trial was trained with fo's budget.
func (fm *finalMarker) sameBudget(fo FinalOptions) bool {
	return fm.Epochs == fo.Epochs && fm.Subset == fo.Subset && max(1, fm.FineTune) == max(1, fo.FineTuneEpochs) &&
		fm.LR == fo.LR && fm.Augment == fo.Augment && fm.Optimizer == fo.Optimizer && fm.BatchSize == fo.BatchSize && fm.FineLR == fo.FineTuneLR
}

// finalOf trains trial best again with the final budget as a new trial,
// or as tr where a final of best's decisions exists, and returns its
// outcome and whether it trained. A final that is done already is not
// trained again (its outcome is read back); one that failed returns nil.
func (c *coordinator) finalOf(ctx context.Context, fo FinalOptions, best, tr *store.Trial) (*FinalResult, bool, error) {
	switch {
	case tr != nil && tr.Status == store.Failed:
		return nil, false, nil
	case tr != nil && tr.Status == store.Done:
		row, _ := c.studyRow(tr)
		return c.finalResult(tr, tr.Metrics.Reward, tr.Metrics.ValAccuracy, tr.Metrics.TestAccuracy, tr.Metrics.CompressedBytes, row), false, nil
	case tr == nil:
		d, _, _ := parseDecisions(best.Decisions)
		raw, err := json.Marshal(finalMarker{FinalOf: best.Number, Decisions: d, Epochs: fo.Epochs, Subset: fo.Subset, FineTune: fo.FineTuneEpochs, LR: fo.LR, Augment: fo.Augment, Optimizer: fo.Optimizer, BatchSize: fo.BatchSize, FineLR: fo.FineTuneLR})
		if err != nil {
			return nil, false, err
		}
		t, err := c.o.DB.AddTrial(ctx, c.st.ID, store.TrialSpec{Decisions: raw, Arch: best.Arch, Recipe: best.Recipe})
		if err != nil {
			return nil, false, err
		}
		tr = &t
	case tr.Status == store.Running:
		if _, err := c.o.DB.RequeueRunning(ctx, c.st.ID); err != nil {
			return nil, false, err
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
		return nil, false, err
	}
	cand, err := BuildCandidate(cfg)
	if err != nil {
		return nil, false, err
	}
	if err := c.o.DB.StartTrial(ctx, tr.ID, fmt.Sprintf("final pid:%d", os.Getpid())); err != nil {
		return nil, false, err
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
		return nil, false, err
	}
	if spec.OpTable, err = c.opTable(ctx); err != nil {
		return nil, false, err
	}
	if err = loadHistory(ctx, c.o.DB, c.st.DeviceFingerprint, spec.Batch, &spec.Measure); err != nil {
		return nil, false, err
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
		return nil, false, ctx.Err()
	}
	var te *TrialError
	if errors.As(err, &te) {
		fmt.Fprintf(c.log, "final training failed: %v\n", te)
		return nil, true, c.o.DB.FailTrial(ctx, tr.ID, te.Error())
	}
	if err != nil {
		return nil, false, err
	}
	row, err := c.cfg.rewardRow(res)
	var rew float64
	if err == nil {
		rew, err = c.reward.Of(res.ValAccuracy, row, res.Bytes)
	}
	if err != nil {
		return nil, true, c.o.DB.FailTrial(ctx, tr.ID, (&TrialError{FailNaN, err.Error()}).Error())
	}
	if err := c.record(ctx, tr.ID, spec, res, rew); err != nil {
		return nil, false, err
	}
	fmt.Fprintf(c.log, "final trial %s (of trial %s): reward %.4f val %.2f%% test %.2f%% %d bytes latency %v, %.0fs\n",
		tr.Name(), best.Name(), rew, 100*res.ValAccuracy, 100*res.TestAccuracy, res.Bytes, row.Figure().Round(100*time.Nanosecond), time.Since(t0).Seconds())
	return c.finalResult(tr, rew, res.ValAccuracy, res.TestAccuracy, res.Bytes, row), true, nil
}

// finalResult is a final trial's outcome: its figures and whether they
// keep the study's bounds.
func (c *coordinator) finalResult(tr *store.Trial, rew, val, test float64, bytes int64, row store.Latency) *FinalResult {
	_, fm, _ := parseDecisions(tr.Decisions)
	return &FinalResult{Trial: tr.Number, Of: fm.FinalOf, Reward: rew, ValAccuracy: val, TestAccuracy: test, Bytes: bytes,
		LatencyNs: int64(row.Figure()), WithinBounds: c.reward.Within(row, bytes)}
}

// studyRow is a stored trial's latency on the study's device, batch and
// runtime.
func (c *coordinator) studyRow(tr *store.Trial) (store.Latency, bool) {
	for _, l := range tr.Latencies {
		if l.Device.Fingerprint == c.st.DeviceFingerprint && l.Batch == max(1, c.cfg.Batch) && l.RuntimeName() == (store.Latency{Runtime: c.cfg.Runtime}).RuntimeName() {
			return l, true
		}
	}
	return store.Latency{}, false
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
	// WithinBounds: the final model keeps a hard reward's latency target
	// and size budget (always true under a soft reward).
	WithinBounds bool `json:"within_bounds"`
}
