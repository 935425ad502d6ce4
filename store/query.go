package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"hwnas/accel"
)

// results returns finished trials joined with their latency on the devices
// deviceSpec matches at batch, with accuracy by (test accuracy required for
// ByTest), narrowed by extra conditions, in sortResults order, at most
// limit of them (0: all).
func (d *DB) results(ctx context.Context, deviceSpec string, batch int, runtime string, by Metric, limit int, extra string, args ...any) ([]Result, error) {
	acc, err := accuracyColumn(by)
	if err != nil {
		return nil, err
	}
	if batch <= 0 {
		batch = 1
	}
	if runtime == "" {
		runtime = RuntimeHwnas
	}
	extra += fmt.Sprintf(" AND l.runtime = ?%d", len(args)+3)
	args = append(args, runtime)
	q := `SELECT t.id, s.name, t.number, t.arch, t.recipe,
		m.val_accuracy, m.test_accuracy, m.params, m.compressed_bytes, m.macs, m.train_seconds, m.reward, ` +
		acc + `, ` + latencyColumns + `
		FROM trials t JOIN studies s ON s.id = t.study_id JOIN metrics m ON m.trial_id = t.id
		JOIN latencies l ON l.trial_id = t.id JOIN devices dv ON dv.fingerprint = l.device_fingerprint
		WHERE t.status = 'done' AND ` + deviceMatch + ` AND l.batch = ?2 AND ` + acc + ` IS NOT NULL` + extra + `
		ORDER BY ` + acc + ` DESC, l.latency_ns, m.compressed_bytes, t.id`
	if limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", limit)
	}
	rows, err := d.query(ctx, q, append([]any{deviceSpec, batch}, args...)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Result
	devices := map[string]accel.Device{} // descriptions decoded once per query
	for rows.Next() {
		var r Result
		var arch, recipe string
		var test sql.NullFloat64
		ls := latencyScan{known: devices}
		dest := append([]any{&r.TrialID, &r.Study, &r.Number, &arch, &recipe,
			&r.Metrics.ValAccuracy, &test, &r.Metrics.Params, &r.Metrics.CompressedBytes, &r.Metrics.MACs,
			&r.Metrics.TrainSeconds, &r.Metrics.Reward, &r.Accuracy}, ls.dest()...)
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		if r.Latency, err = ls.latency(); err != nil {
			return nil, err
		}
		r.Arch, r.Recipe = json.RawMessage(arch), json.RawMessage(recipe)
		r.Metrics.TestAccuracy, r.Metrics.HasTest = test.Float64, test.Valid
		out = append(out, r)
	}
	return out, rows.Err()
}

func accuracyColumn(by Metric) (string, error) {
	switch by {
	case "", ByValidation:
		return "m.val_accuracy", nil
	case ByTest:
		return "m.test_accuracy", nil
	}
	return "", fmt.Errorf("accuracy metric %q: want %q or %q", by, ByValidation, ByTest)
}

// Best returns up to q.N finished trials measured on the device q.Device
// names (at q.Batch) that meet the bounds, most accurate first, ties broken
// by lower latency, then fewer bytes, then trial id. A trial measured on several matching
// devices appears once per device. A device the database has never seen
// is ErrNotFound, naming the devices it has.
func (d *DB) Best(ctx context.Context, q Query) ([]Result, error) {
	if _, err := d.MatchDevices(ctx, q.Device); err != nil {
		return nil, err
	}
	var extra []string
	var args []any
	if q.Study != "" {
		if _, err := d.GetStudy(ctx, q.Study); err != nil {
			return nil, err
		}
		extra = append(extra, "s.name = ?3")
		args = append(args, q.Study)
	} else {
		extra = append(extra, "CAST(?3 AS TEXT) IS NULL")
		args = append(args, nil)
	}
	acc, err := accuracyColumn(q.By)
	if err != nil {
		return nil, err
	}
	extra = append(extra, "m.estimate = 0", "(CAST(?4 AS BIGINT) = 0 OR l.latency_ns <= ?4)", "("+acc+" >= ?5)", "(CAST(?6 AS BIGINT) = 0 OR m.compressed_bytes <= ?6)")
	args = append(args, int64(q.MaxLatency), q.MinAccuracy, q.MaxBytes)
	n := q.N
	if n <= 0 {
		n = 10
	}
	return d.results(ctx, q.Device, q.Batch, q.Runtime, q.By, n, " AND "+strings.Join(extra, " AND "), args...)
}

// StudyResults returns the study's finished trials with their latency on
// one device at batch (0: 1) in runtime ("": RuntimeHwnas), accuracy by
// (see Metric), best first. device
// "" means the study's own target; otherwise it must match exactly one
// device, as latencies from different hardware do not belong together.
func (d *DB) StudyResults(ctx context.Context, study, device string, batch int, runtime string, by Metric) ([]Result, accel.Device, error) {
	s, err := d.GetStudy(ctx, study)
	if err != nil {
		return nil, accel.Device{}, err
	}
	if device == "" {
		device = s.DeviceFingerprint
	}
	devs, err := d.MatchDevices(ctx, device)
	if err != nil {
		return nil, accel.Device{}, err
	}
	if len(devs) > 1 {
		names := make([]string, len(devs))
		for i, dv := range devs {
			names[i] = fmt.Sprintf("%q (%s)", dv.Name, dv.Fingerprint)
		}
		return nil, accel.Device{}, fmt.Errorf("device %q matches %d devices (%s): give a fingerprint", device, len(devs), strings.Join(names, ", "))
	}
	rs, err := d.results(ctx, devs[0].Fingerprint, batch, runtime, by, 0, " AND s.id = ?3", s.ID)
	if err != nil {
		return nil, accel.Device{}, err
	}
	return rs, devs[0], nil
}

// ParetoFront returns the study's finished trials that no other is better
// than on all of accuracy (higher), latency on the device (lower, at batch)
// and compressed bytes (lower): Pareto over StudyResults.
func (d *DB) ParetoFront(ctx context.Context, study, device string, batch int, runtime string, by Metric) ([]Result, error) {
	rs, _, err := d.StudyResults(ctx, study, device, batch, runtime, by)
	if err != nil {
		return nil, err
	}
	return Pareto(rs), nil
}

// Pareto returns the non-dominated results, by latency ascending (then
// accuracy descending). r dominates q when r.Accuracy ≥ q.Accuracy,
// r's latency figure ≤ q's and r's compressed bytes ≤ q's, with at least
// one strict; results equal on all three are all kept.
func Pareto(rs []Result) []Result {
	var front []Result
	for i, q := range rs {
		dominated := false
		for j, r := range rs {
			if i != j && dominates(r, q) {
				dominated = true
				break
			}
		}
		if !dominated {
			front = append(front, q)
		}
	}
	sort.SliceStable(front, func(i, j int) bool {
		a, b := front[i], front[j]
		if a.Latency.Figure() != b.Latency.Figure() {
			return a.Latency.Figure() < b.Latency.Figure()
		}
		if a.Accuracy != b.Accuracy {
			return a.Accuracy > b.Accuracy
		}
		return a.TrialID < b.TrialID
	})
	return front
}

func dominates(r, q Result) bool {
	ra, rl, rb := r.Accuracy, r.Latency.Figure(), r.Metrics.CompressedBytes
	qa, ql, qb := q.Accuracy, q.Latency.Figure(), q.Metrics.CompressedBytes
	return ra >= qa && rl <= ql && rb <= qb && (ra > qa || rl < ql || rb < qb)
}
