package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"hwnas/accel"
)

// putDevice keeps d's description under its fingerprint (the first
// description seen is kept; the fingerprint says it is the same hardware).
func putDevice(tx *tx, d accel.Device, at string) error {
	if d.Fingerprint == "" || d.Name == "" {
		return fmt.Errorf("device %+v: fingerprint and name are required", d)
	}
	desc, err := json.Marshal(d)
	if err != nil {
		return err
	}
	_, err = tx.Exec(`INSERT INTO devices (fingerprint, name, backend, description, first_seen) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (fingerprint) DO NOTHING`, d.Fingerprint, d.Name, d.Backend, string(desc), at)
	return err
}

// PutDevice records a device's description under its fingerprint.
func (d *DB) PutDevice(ctx context.Context, dev accel.Device) error {
	return d.write(ctx, func(tx *tx) error { return putDevice(tx, dev, fmtTime(now())) })
}

// Devices returns every device the database has seen, by name.
func (d *DB) Devices(ctx context.Context) ([]accel.Device, error) {
	return d.devices(ctx, `1 = 1`)
}

func (d *DB) devices(ctx context.Context, where string, args ...any) ([]accel.Device, error) {
	rows, err := d.query(ctx, `SELECT description FROM devices WHERE `+where+` ORDER BY name, fingerprint`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []accel.Device
	for rows.Next() {
		var desc string
		if err := rows.Scan(&desc); err != nil {
			return nil, err
		}
		var dev accel.Device
		if err := json.Unmarshal([]byte(desc), &dev); err != nil {
			return nil, fmt.Errorf("device description %q: %w", desc, err)
		}
		out = append(out, dev)
	}
	return out, rows.Err()
}

// deviceMatch is the SQL condition on table alias dv that Query.Device
// documents: fingerprint, name in any case, or backend.
const deviceMatch = `(dv.fingerprint = ?1 OR lower(dv.name) = lower(?1) OR dv.backend = ?1)`

// MatchDevices returns the devices in the database that spec names (a
// fingerprint, a device name in any case, or a backend name). None is an
// error that lists the devices the database knows.
func (d *DB) MatchDevices(ctx context.Context, spec string) ([]accel.Device, error) {
	got, err := d.devices(ctx, strings.ReplaceAll(deviceMatch, "dv.", ""), spec)
	if err != nil || len(got) > 0 {
		return got, err
	}
	all, err := d.Devices(ctx)
	if err != nil {
		return nil, err
	}
	known := make([]string, len(all))
	for i, dev := range all {
		known[i] = fmt.Sprintf("%s %q (%s)", dev.Backend, dev.Name, dev.Fingerprint)
	}
	if len(known) == 0 {
		known = []string{"none yet"}
	}
	return nil, fmt.Errorf("device %q: %w in %s (devices measured: %s)", spec, ErrNotFound, d.path, strings.Join(known, ", "))
}

// putLatency stores one latency of a trial, replacing an earlier one for
// the same device and batch.
func putLatency(tx *tx, trialID int64, l Latency, at string) error {
	if err := putDevice(tx, l.Device, at); err != nil {
		return fmt.Errorf("trial id %d latency: %w", trialID, err)
	}
	if l.Batch <= 0 {
		return fmt.Errorf("trial id %d latency on %s: batch %d, want ≥ 1", trialID, l.Device.Name, l.Batch)
	}
	var pred sql.NullInt64
	if l.Predicted != 0 {
		pred = sql.NullInt64{Int64: int64(l.Predicted), Valid: true}
	}
	s := l.Stats
	var ratio accel.Ratio
	if l.Ratio != nil {
		ratio = *l.Ratio
	}
	disturbed := 0
	if l.Disturbed {
		disturbed = 1
	}
	_, err := tx.Exec(`INSERT INTO latencies (trial_id, device_fingerprint, batch, runtime, median_ns, p90_ns, mad_ns,
		mean_ns, min_ns, max_ns, runs, outliers, predicted_ns, measured_at,
		latency_ns, ci_low_ns, ci_high_ns, rounds, reference, ref_ns, ratio, ratio_low, ratio_high, disturbed, ops, probe_ns, drift)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (trial_id, device_fingerprint, batch, runtime) DO UPDATE SET median_ns = excluded.median_ns,
		p90_ns = excluded.p90_ns, mad_ns = excluded.mad_ns, mean_ns = excluded.mean_ns, min_ns = excluded.min_ns,
		max_ns = excluded.max_ns, runs = excluded.runs, outliers = excluded.outliers,
		predicted_ns = excluded.predicted_ns, measured_at = excluded.measured_at,
		latency_ns = excluded.latency_ns, ci_low_ns = excluded.ci_low_ns, ci_high_ns = excluded.ci_high_ns,
		rounds = excluded.rounds, reference = excluded.reference, ref_ns = excluded.ref_ns, ratio = excluded.ratio,
		ratio_low = excluded.ratio_low, ratio_high = excluded.ratio_high, disturbed = excluded.disturbed, ops = excluded.ops,
		probe_ns = excluded.probe_ns, drift = excluded.drift`,
		trialID, l.Device.Fingerprint, l.Batch, l.RuntimeName(), int64(s.Median), int64(s.P90), int64(s.MAD), int64(s.Mean),
		int64(s.Min), int64(s.Max), s.Runs, s.Outliers, pred, at,
		int64(s.Figure()), int64(s.Low), int64(s.High), s.Rounds, l.Reference, int64(l.RefLatency), ratio.Value, ratio.Low, ratio.High, disturbed,
		string(l.Ops), int64(l.Probe), l.DriftFactor())
	if err != nil {
		return fmt.Errorf("trial id %d latency on %s batch %d: %w", trialID, l.Device.Name, l.Batch, err)
	}
	// The reference's and the probe's figures join their histories on the
	// device once per measurement (the rows of one measurement share them).
	for _, f := range []struct {
		name string
		ns   time.Duration
	}{{l.Reference, l.RefLatency}, {ProbeModel, l.Probe}} {
		if f.name == "" || f.ns <= 0 {
			continue
		}
		if _, err := tx.Exec(`INSERT INTO reference_figures (device_fingerprint, batch, runtime, reference, ref_ns, measured_at)
			VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (device_fingerprint, batch, runtime, reference, ref_ns) DO NOTHING`,
			l.Device.Fingerprint, l.Batch, l.RuntimeName(), f.name, int64(f.ns), at); err != nil {
			return fmt.Errorf("trial id %d: %s figure on %s: %w", trialID, f.name, l.Device.Name, err)
		}
	}
	return nil
}

// PutLatency adds (or replaces) a finished trial's latency on a device and
// batch, as re-measuring a study on another device does.
func (d *DB) PutLatency(ctx context.Context, trialID int64, l Latency) error {
	return d.write(ctx, func(tx *tx) error {
		if err := requireStatus(tx, trialID, Done); err != nil {
			return err
		}
		return putLatency(tx, trialID, l, fmtTime(now()))
	})
}

const latencyColumns = `l.trial_id, l.batch, l.runtime, l.median_ns, l.p90_ns, l.mad_ns, l.mean_ns, l.min_ns, l.max_ns,
	l.runs, l.outliers, l.predicted_ns, l.latency_ns, l.ci_low_ns, l.ci_high_ns, l.rounds, l.reference, l.ref_ns,
	l.ratio, l.ratio_low, l.ratio_high, l.disturbed, l.probe_ns, l.drift, dv.description`

// latencyScan receives latencyColumns from a row.
type latencyScan struct {
	trial                       int64
	l                           Latency
	med, p90, mad, mean, lo, hi int64
	fig, ciLo, ciHi, ref        int64
	ratio                       accel.Ratio
	disturbed                   int
	probe                       int64
	pred                        sql.NullInt64
	desc                        string
	known                       map[string]accel.Device // decoded descriptions, reused when non-nil
}

func (s *latencyScan) dest() []any {
	return []any{&s.trial, &s.l.Batch, &s.l.Runtime, &s.med, &s.p90, &s.mad, &s.mean, &s.lo, &s.hi, &s.l.Stats.Runs,
		&s.l.Stats.Outliers, &s.pred, &s.fig, &s.ciLo, &s.ciHi, &s.l.Stats.Rounds, &s.l.Reference, &s.ref,
		&s.ratio.Value, &s.ratio.Low, &s.ratio.High, &s.disturbed, &s.probe, &s.l.Drift, &s.desc}
}

func (s *latencyScan) latency() (Latency, error) {
	l := s.l
	l.Stats.Median, l.Stats.P90, l.Stats.MAD = durNS(s.med), durNS(s.p90), durNS(s.mad)
	l.Stats.Mean, l.Stats.Min, l.Stats.Max = durNS(s.mean), durNS(s.lo), durNS(s.hi)
	l.Stats.Latency, l.Stats.Low, l.Stats.High = durNS(s.fig), durNS(s.ciLo), durNS(s.ciHi)
	l.RefLatency, l.Disturbed, l.Probe = durNS(s.ref), s.disturbed != 0, durNS(s.probe)
	if s.ratio.Value > 0 {
		r := s.ratio
		l.Ratio = &r
	}
	l.Predicted = durNS(s.pred.Int64)
	if dev, ok := s.known[s.desc]; ok {
		dev.Features = slices.Clone(dev.Features) // each result owns its slice
		l.Device = dev
		return l, nil
	}
	if err := json.Unmarshal([]byte(s.desc), &l.Device); err != nil {
		return Latency{}, fmt.Errorf("device description %q: %w", s.desc, err)
	}
	if s.known != nil {
		s.known[s.desc] = l.Device
	}
	return l, nil
}

// latencies returns the latencies matching where (over alias l), by trial.
func (d *DB) latencies(ctx context.Context, where string, args ...any) (map[int64][]Latency, error) {
	rows, err := d.query(ctx, `SELECT `+latencyColumns+` FROM latencies l
		JOIN devices dv ON dv.fingerprint = l.device_fingerprint WHERE `+where+`
		ORDER BY l.trial_id, dv.name, l.batch, l.runtime`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[int64][]Latency{}
	devices := map[string]accel.Device{}
	for rows.Next() {
		ls := latencyScan{known: devices}
		if err := rows.Scan(ls.dest()...); err != nil {
			return nil, err
		}
		l, err := ls.latency()
		if err != nil {
			return nil, err
		}
		out[ls.trial] = append(out[ls.trial], l)
	}
	return out, rows.Err()
}

// TrialOps is one trial's measured figure and per-op times (JSON) on a
// device, as StudyOpTimes returns them.
type TrialOps struct {
	Number int             `json:"number"`
	Figure time.Duration   `json:"latency_ns"`
	Ops    json.RawMessage `json:"ops"`
}

// StudyOpTimes returns the per-op times stored with a study's latencies
// on a device (hwnas's kernels, at batch), oldest measurement first, at
// most the latest n.
func (d *DB) StudyOpTimes(ctx context.Context, studyID int64, fingerprint string, batch, n int) ([]TrialOps, error) {
	rows, err := d.query(ctx, `SELECT number, latency_ns, ops FROM (SELECT t.number, l.latency_ns, l.ops, l.measured_at
		FROM latencies l JOIN trials t ON t.id = l.trial_id WHERE t.study_id = ? AND l.device_fingerprint = ? AND l.batch = ?
		AND l.runtime = ? AND l.ops <> '' AND l.latency_ns > 0 ORDER BY l.measured_at DESC, t.number DESC LIMIT ?) x
		ORDER BY measured_at, number`, studyID, fingerprint, batch, RuntimeHwnas, n)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []TrialOps
	for rows.Next() {
		var o TrialOps
		var ns int64
		var ops string
		if err := rows.Scan(&o.Number, &ns, &ops); err != nil {
			return nil, err
		}
		o.Figure, o.Ops = durNS(ns), json.RawMessage(ops)
		out = append(out, o)
	}
	return out, rows.Err()
}

// PutSweepRun records one network of the predictor's sweep on a device:
// its figure at batch and its per-op times (JSON), under the digest of
// the search space it was drawn from.
func (d *DB) PutSweepRun(ctx context.Context, dev accel.Device, batch int, space string, figure time.Duration, ops json.RawMessage) error {
	if batch <= 0 || figure <= 0 || len(ops) == 0 {
		return fmt.Errorf("sweep run on %s: batch %d, figure %v and %d bytes of op times (all must be positive)", dev.Name, batch, figure, len(ops))
	}
	return d.write(ctx, func(tx *tx) error {
		at := fmtTime(now())
		if err := putDevice(tx, dev, at); err != nil {
			return err
		}
		_, err := tx.Exec(`INSERT INTO sweep_runs (device_fingerprint, batch, space, latency_ns, ops, measured_at) VALUES (?, ?, ?, ?, ?, ?)`,
			dev.Fingerprint, batch, space, int64(figure), string(ops), at)
		return err
	})
}

// SweepRuns returns the predictor's sweep runs on a device at batch,
// oldest first: of one search space (its digest), or of every space when
// space is empty. Their Number is −1: they are no trial.
func (d *DB) SweepRuns(ctx context.Context, fingerprint string, batch int, space string) ([]TrialOps, error) {
	rows, err := d.query(ctx, `SELECT latency_ns, ops FROM sweep_runs WHERE device_fingerprint = ? AND batch = ?
		AND (? = '' OR space = ?) ORDER BY measured_at`, fingerprint, batch, space, space)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []TrialOps
	for rows.Next() {
		var ns int64
		var ops string
		if err := rows.Scan(&ns, &ops); err != nil {
			return nil, err
		}
		out = append(out, TrialOps{Number: -1, Figure: durNS(ns), Ops: json.RawMessage(ops)})
	}
	return out, rows.Err()
}

// ReferenceHistory returns the figures a reference model had on a device
// (at batch, in runtime) in its latest n measurements, newest first: each
// latency stored records the reference measured in the same rounds, and
// the figure joins the device's reference_figures once (the trials of one
// measurement share it), where it stays when a later measurement replaces
// the trials' latencies.
func (d *DB) ReferenceHistory(ctx context.Context, fingerprint string, batch int, runtime, reference string, n int) ([]time.Duration, error) {
	if runtime == "" {
		runtime = RuntimeHwnas
	}
	rows, err := d.query(ctx, `SELECT ref_ns FROM reference_figures WHERE device_fingerprint = ? AND batch = ? AND runtime = ?
		AND reference = ? ORDER BY measured_at DESC, ref_ns LIMIT ?`,
		fingerprint, batch, runtime, reference, n)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []time.Duration
	for rows.Next() {
		var ns int64
		if err := rows.Scan(&ns); err != nil {
			return nil, err
		}
		out = append(out, durNS(ns))
	}
	return out, rows.Err()
}

// RecentPredictions returns the predictor's estimates and the measured
// figures of the device's latest n latencies of hwnas's kernels at batch
// that carry a prediction, newest first: the predictor's record on the
// device.
func (d *DB) RecentPredictions(ctx context.Context, fingerprint string, batch, n int) (predicted, measured []time.Duration, err error) {
	rows, err := d.query(ctx, `SELECT predicted_ns, latency_ns FROM latencies WHERE device_fingerprint = ? AND batch = ?
		AND runtime = ? AND predicted_ns > 0 AND latency_ns > 0 ORDER BY measured_at DESC LIMIT ?`, fingerprint, batch, RuntimeHwnas, n)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var p, m int64
		if err := rows.Scan(&p, &m); err != nil {
			return nil, nil, err
		}
		predicted, measured = append(predicted, durNS(p)), append(measured, durNS(m))
	}
	return predicted, measured, rows.Err()
}

// PutOpLatency records the median latency of one op signature on a device
// (the per-op latency table the predictor sums).
func (d *DB) PutOpLatency(ctx context.Context, dev accel.Device, signature string, median time.Duration) error {
	return d.PutOpLatencies(ctx, dev, map[string]time.Duration{signature: median})
}

// PutOpLatencies records many entries of a device's per-op table in one
// transaction, replacing earlier medians of the same signatures.
func (d *DB) PutOpLatencies(ctx context.Context, dev accel.Device, table map[string]time.Duration) error {
	return d.write(ctx, func(tx *tx) error {
		at := fmtTime(now())
		if err := putDevice(tx, dev, at); err != nil {
			return err
		}
		sigs := make([]string, 0, len(table))
		for s := range table {
			sigs = append(sigs, s)
		}
		sort.Strings(sigs)
		for _, s := range sigs {
			if _, err := tx.Exec(`INSERT INTO op_latencies (device_fingerprint, signature, median_ns, updated_at)
				VALUES (?, ?, ?, ?) ON CONFLICT (device_fingerprint, signature)
				DO UPDATE SET median_ns = excluded.median_ns, updated_at = excluded.updated_at`, dev.Fingerprint, s, int64(table[s]), at); err != nil {
				return fmt.Errorf("op latency %q on %s: %w", s, dev.Name, err)
			}
		}
		return nil
	})
}

// OpLatencies returns the per-op table of the device with this
// fingerprint (empty when none was recorded).
func (d *DB) OpLatencies(ctx context.Context, fingerprint string) (map[string]time.Duration, error) {
	rows, err := d.query(ctx, `SELECT signature, median_ns FROM op_latencies WHERE device_fingerprint = ?`, fingerprint)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]time.Duration{}
	for rows.Next() {
		var s string
		var ns int64
		if err := rows.Scan(&s, &ns); err != nil {
			return nil, err
		}
		out[s] = durNS(ns)
	}
	return out, rows.Err()
}

// SaveCheckpoint stores the search controller's state after step, keeping
// the KeepCheckpoints newest of the study.
func (d *DB) SaveCheckpoint(ctx context.Context, studyID int64, step int, blob []byte) error {
	if blob == nil {
		blob = []byte{}
	}
	return d.write(ctx, func(tx *tx) error {
		if _, err := tx.Exec(`INSERT INTO checkpoints (study_id, step, blob, created_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (study_id, step) DO UPDATE SET blob = excluded.blob, created_at = excluded.created_at`,
			studyID, step, blob, fmtTime(now())); err != nil {
			return fmt.Errorf("study id %d checkpoint %d: %w", studyID, step, err)
		}
		_, err := tx.Exec(`DELETE FROM checkpoints WHERE study_id = ? AND step NOT IN
			(SELECT step FROM checkpoints WHERE study_id = ? ORDER BY step DESC LIMIT ?)`, studyID, studyID, KeepCheckpoints)
		return err
	})
}

// KeepCheckpoints is how many controller checkpoints a study keeps.
const KeepCheckpoints = 3

// LatestCheckpoint returns the study's checkpoint with the highest step;
// ErrNotFound when there is none.
func (d *DB) LatestCheckpoint(ctx context.Context, studyID int64) (Checkpoint, error) {
	var c Checkpoint
	var created sql.NullString
	err := d.queryRow(ctx, `SELECT step, blob, created_at FROM checkpoints WHERE study_id = ?
		ORDER BY step DESC LIMIT 1`, studyID).Scan(&c.Step, &c.Blob, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return Checkpoint{}, fmt.Errorf("checkpoint of study id %d: %w", studyID, ErrNotFound)
	}
	c.Created = parseTime(created)
	return c, err
}

// RenormalizeDrift re-expresses the latencies of a study's trials on a
// device, batch and runtime that were measured beside the probe
// (ProbeModel) in one usual figure of the probe: each row's figure,
// interval and ratio become its measured floors × usual / probe_ns, and
// its drift probe_ns / usual. A search calls it when it ends, with the
// probe's usual figure then: the first trials of a device's first study
// were measured while the probe had no history to speak of, each against
// the few figures before it. It returns how many rows changed.
func (d *DB) RenormalizeDrift(ctx context.Context, studyID int64, fingerprint string, batch int, runtime string, usual time.Duration) (int, error) {
	if usual <= 0 {
		return 0, fmt.Errorf("renormalising latencies: usual probe figure %v, want > 0", usual)
	}
	if runtime == "" {
		runtime = RuntimeHwnas
	}
	n := 0
	err := d.write(ctx, func(tx *tx) error {
		n = 0
		rows, err := tx.Query(`SELECT l.trial_id, l.latency_ns, l.ci_low_ns, l.ci_high_ns, l.ratio, l.ratio_low, l.ratio_high, l.probe_ns, l.drift
			FROM latencies l JOIN trials t ON t.id = l.trial_id
			WHERE t.study_id = ? AND l.device_fingerprint = ? AND l.batch = ? AND l.runtime = ? AND l.probe_ns > 0`,
			studyID, fingerprint, batch, runtime)
		if err != nil {
			return err
		}
		type row struct {
			id                  int64
			fig, lo, hi, probe  int64
			ratio, rlo, rhi, dr float64
		}
		var rs []row
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.id, &r.fig, &r.lo, &r.hi, &r.ratio, &r.rlo, &r.rhi, &r.probe, &r.dr); err != nil {
				rows.Close()
				return err
			}
			rs = append(rs, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, r := range rs {
			drift := float64(r.probe) / float64(usual)
			f := r.dr / drift // old figure × f = floors / new drift
			if r.dr <= 0 || math.Abs(f-1) < 1e-9 {
				continue
			}
			scale := func(v int64) int64 { return int64(math.Round(float64(v) * f)) }
			if _, err := tx.Exec(`UPDATE latencies SET latency_ns = ?, ci_low_ns = ?, ci_high_ns = ?, ratio = ?, ratio_low = ?, ratio_high = ?, drift = ?
				WHERE trial_id = ? AND device_fingerprint = ? AND batch = ? AND runtime = ?`,
				scale(r.fig), scale(r.lo), scale(r.hi), r.ratio*f, r.rlo*f, r.rhi*f, drift, r.id, fingerprint, batch, runtime); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}
