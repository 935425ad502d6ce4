package search

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"hwnas/accel"
	"hwnas/nas"
	"hwnas/store"
)

// MeasureOptions configure MeasureStudy.
type MeasureOptions struct {
	Device  string // accel spec
	Threads int
	Batch   int // default 1
	Latency accel.LatencyOptions
}

// Measurement is one trial re-measured on a device.
type Measurement struct {
	Trial       int                `json:"trial"`
	Device      string             `json:"device"`
	Batch       int                `json:"batch"`
	Latency     accel.LatencyStats `json:"latency"`
	PredictedNs float64            `json:"predicted_ns,omitempty"`
	// Reward is set when the measurement completed a trial of a study
	// pinned to this device.
	Reward float64 `json:"reward,omitempty"`
	Error  string  `json:"error,omitempty"`
}

// MeasureStudy re-measures every finished trial of a study on another
// device from its stored weights (no retraining): it rebuilds the model,
// lowers it, measures it with the device's kernels, records the latency
// (with the device's per-op table prediction made before this trial's own
// op times are merged) and updates that table. A trial whose weights
// cannot be loaded or run is reported in its Measurement and skipped.
func MeasureStudy(ctx context.Context, db *store.DB, study string, o MeasureOptions, each func(Measurement)) error {
	st, err := db.GetStudy(ctx, study)
	if err != nil {
		return err
	}
	be, err := accel.Open(o.Device, accel.Options{Threads: o.Threads})
	if err != nil {
		return err
	}
	defer be.Close()
	batch := max(1, o.Batch)
	trials, err := db.ListTrials(ctx, st.ID, store.TrialFilter{Status: store.Done})
	if err != nil {
		return err
	}
	for _, t := range trials {
		if err := ctx.Err(); err != nil {
			return err
		}
		ms, err := measureInto(ctx, db, be, t, batch, o.Latency)
		if err != nil {
			return err
		}
		if each != nil {
			each(ms)
		}
	}
	return nil
}

// measureInto measures a finished trial on be from its stored weights and
// records the latency (and the device's per-op times); a model that does
// not load or run is reported in the Measurement, database errors are
// returned.
func measureInto(ctx context.Context, db *store.DB, be accel.Backend, t store.Trial, batch int, lo accel.LatencyOptions) (Measurement, error) {
	dev := be.Device()
	ms := Measurement{Trial: t.Number, Device: dev.Name, Batch: batch}
	res, err := measureStored(ctx, db, be, t, batch, lo)
	if err != nil {
		ms.Error = err.Error()
		return ms, nil
	}
	ms.Latency, ms.PredictedNs = res.Latency, res.PredictedNs
	lat := store.Latency{Device: dev, Batch: batch, Stats: res.Latency, Predicted: time.Duration(res.PredictedNs)}
	if err := db.PutLatency(ctx, t.ID, lat); err != nil {
		return ms, err
	}
	return ms, mergeOpTimes(ctx, db, res)
}

func measureStored(ctx context.Context, db *store.DB, be accel.Backend, t store.Trial, batch int, lo accel.LatencyOptions) (*TrialResult, error) {
	blob, err := db.TrialWeights(ctx, t.ID)
	if err != nil {
		return nil, err
	}
	m, err := TrialModel(t.Arch, blob)
	if err != nil {
		return nil, err
	}
	plan, err := nas.Lower(m)
	if err != nil {
		return nil, err
	}
	table, err := db.OpLatencies(ctx, be.Device().Fingerprint)
	if err != nil {
		return nil, err
	}
	ns := make(map[string]float64, len(table))
	for k, v := range table {
		ns[k] = float64(v)
	}
	res := &TrialResult{}
	in := make([]float32, batch*plan.Tensors[plan.Input].Size())
	for i := range in {
		in[i] = float32(i%17) / 17
	}
	if err := measureOn(be, plan, batch, in, lo, ns, res, nil); err != nil {
		return nil, err
	}
	return res, nil
}

// FollowOptions configure FollowStudy.
type FollowOptions struct {
	MeasureOptions
	// Lease of a claimed measurement (0: DefaultLease) and Poll, how often
	// to look for new trials (0: one second).
	Lease, Poll time.Duration
	// UntilIdle returns once the study is no longer running and nothing is
	// left to measure (the default of hwnas measure --follow); otherwise
	// FollowStudy runs until ctx ends.
	UntilIdle bool
	Log       io.Writer
}

// FollowStudy measures a study's trials on this device as they finish,
// from their stored weights: every finished trial without a latency on
// the device (at the batch) gets one, and when the study is pinned to
// this device (StudyConfig.MeasureDevice names its fingerprint or name)
// it also claims the trained trials waiting for it, records their latency
// and reward, and so completes them. A claimed measurement holds a lease;
// if this measurer goes away, the trial waits (trained, nothing lost) and
// the next measurer of the device takes it over once the lease lapses.
func FollowStudy(ctx context.Context, db *store.DB, study string, o FollowOptions, each func(Measurement)) error {
	if o.Lease <= 0 {
		o.Lease = DefaultLease
	}
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	st, err := db.GetStudy(ctx, study)
	if err != nil {
		return err
	}
	var cfg StudyConfig
	if err := json.Unmarshal(st.Config, &cfg); err != nil {
		return fmt.Errorf("study %q: its stored config is not a search config: %v", st.Name, err)
	}
	be, err := accel.Open(o.Device, accel.Options{Threads: o.Threads})
	if err != nil {
		return err
	}
	defer be.Close()
	dev := be.Device()
	batch := max(1, o.Batch)
	pinned := cfg.MeasureDevice != "" && (cfg.MeasureDevice == dev.Fingerprint || strings.EqualFold(cfg.MeasureDevice, dev.Name)) && batch == max(1, cfg.Batch)
	host, _ := os.Hostname()
	id := fmt.Sprintf("%s/%d/measure", host, os.Getpid())
	self := store.Worker{ID: id, Study: st.ID, Role: store.RoleMeasure, Host: host, PID: os.Getpid(), DeviceFingerprint: dev.Fingerprint}
	defer db.WorkerGone(context.WithoutCancel(ctx), id)
	rw := cfg.Reward.Reward()
	failed := map[int64]bool{} // models that do not run here: reported once
	for {
		if err := db.WorkerSeen(ctx, self); err != nil {
			return err
		}
		worked := false
		for pinned {
			t, c, err := db.ClaimMeasure(ctx, st.ID, id, o.Lease)
			if errors.Is(err, store.ErrNotFound) {
				break
			}
			if err != nil {
				return err
			}
			worked = true
			ms := Measurement{Trial: t.Number, Device: dev.Name, Batch: batch}
			res, merr := measureStored(ctx, db, be, t, batch, o.Latency)
			var rew float64
			if merr == nil && t.Metrics != nil {
				rew, merr = rw.Compute(t.Metrics.ValAccuracy, res.Latency.Median, t.Metrics.CompressedBytes)
			}
			if merr != nil {
				ms.Error = merr.Error()
				if err := db.FailMeasured(ctx, c, (&TrialError{FailError, "measuring on " + dev.Name + ": " + merr.Error()}).Error()); err != nil && !errors.Is(err, store.ErrLeaseLost) {
					return err
				}
			} else {
				ms.Latency, ms.PredictedNs, ms.Reward = res.Latency, res.PredictedNs, rew
				lat := store.Latency{Device: dev, Batch: batch, Stats: res.Latency, Predicted: time.Duration(res.PredictedNs)}
				err := db.FinishMeasured(ctx, c, lat, rew)
				if errors.Is(err, store.ErrLeaseLost) {
					ms.Error = err.Error()
				} else if err != nil {
					return err
				} else if err := mergeOpTimes(ctx, db, res); err != nil {
					return err
				}
			}
			if each != nil {
				each(ms)
			}
		}
		todo, err := db.TrialsToMeasure(ctx, st.ID, dev.Fingerprint, batch, store.RuntimeHwnas)
		if err != nil {
			return err
		}
		for _, t := range todo {
			if err := ctx.Err(); err != nil {
				return err
			}
			if failed[t.ID] {
				continue
			}
			worked = true
			ms, err := measureInto(ctx, db, be, t, batch, o.Latency)
			if err != nil {
				return err
			}
			failed[t.ID] = ms.Error != ""
			if each != nil {
				each(ms)
			}
		}
		if worked {
			continue
		}
		if o.UntilIdle {
			cur, err := db.StudyByID(ctx, st.ID)
			if err != nil {
				return err
			}
			counts, err := db.CountTrials(ctx, st.ID)
			if err != nil {
				return err
			}
			if cur.Status != store.StudyRunning && (!pinned || counts.Measuring == 0) {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(o.Poll):
		}
	}
}
