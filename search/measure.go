package search

import (
	"context"
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
	Error       string             `json:"error,omitempty"`
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
	dev := be.Device()
	batch := max(1, o.Batch)
	trials, err := db.ListTrials(ctx, st.ID, store.TrialFilter{Status: store.Done})
	if err != nil {
		return err
	}
	for _, t := range trials {
		if err := ctx.Err(); err != nil {
			return err
		}
		ms := Measurement{Trial: t.Number, Device: dev.Name, Batch: batch}
		res, err := measureStored(ctx, db, be, t, batch, o.Latency)
		if err != nil {
			ms.Error = err.Error()
		} else {
			ms.Latency, ms.PredictedNs = res.Latency, res.PredictedNs
			lat := store.Latency{Device: dev, Batch: batch, Stats: res.Latency, Predicted: time.Duration(res.PredictedNs)}
			if err := db.PutLatency(ctx, t.ID, lat); err != nil {
				return err
			}
			if len(res.PerOp) > 0 {
				cur, err := db.OpLatencies(ctx, dev.Fingerprint)
				if err != nil {
					return err
				}
				if err := db.PutOpLatencies(ctx, dev, MergeOpTimes(cur, res.PerOp)); err != nil {
					return err
				}
			}
		}
		if each != nil {
			each(ms)
		}
	}
	return nil
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
	if err := measureOn(be, plan, batch, in, lo, ns, res); err != nil {
		return nil, err
	}
	return res, nil
}
