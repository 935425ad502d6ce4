package store

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
)

// ImportStats counts the rows an Import added; a second import of the same
// source adds nothing.
type ImportStats struct {
	Studies     int `json:"studies"`
	Trials      int `json:"trials"`
	Latencies   int `json:"latencies"`
	Weights     int `json:"weights"`
	Devices     int `json:"devices"`
	OpLatencies int `json:"op_latencies"`
	// ReferenceFigures are the reference models' figures on the devices
	// (the history their usual figures come from).
	ReferenceFigures int `json:"reference_figures"`
	Checkpoints      int `json:"checkpoints"`
	// Skipped counts source trials not imported because they were not
	// finished there (pending, running or waiting for measurement).
	Skipped int `json:"skipped"`
}

// Import merges src into d in one transaction: devices, studies (by name),
// their finished trials (by study and number) with metrics and weights,
// every latency of those trials (by trial, device, batch and runtime),
// per-op tables, the reference models' figures and, for studies new to d,
// their checkpoints. What d
// already has is kept: rows are only added, never replaced, so importing
// twice adds nothing the second time. A study of the same name whose
// stored configuration differs is refused (they are not the same search).
func (d *DB) Import(ctx context.Context, src *DB) (ImportStats, error) {
	var st ImportStats
	devs, err := src.rawRows(ctx, `SELECT fingerprint, name, backend, description, first_seen FROM devices ORDER BY fingerprint`)
	if err != nil {
		return st, err
	}
	ops, err := src.rawRows(ctx, `SELECT device_fingerprint, signature, median_ns, updated_at FROM op_latencies ORDER BY 1, 2`)
	if err != nil {
		return st, err
	}
	refs, err := src.rawRows(ctx, `SELECT device_fingerprint, batch, runtime, reference, ref_ns, measured_at FROM reference_figures
		ORDER BY 1, 2, 3, 4, 5`)
	if err != nil {
		return st, err
	}
	studies, err := src.rawRows(ctx, `SELECT id, name, dataset, device_spec, device_name, device_fingerprint, strategy, config,
		status, next_trial, created_at, updated_at FROM studies ORDER BY id`)
	if err != nil {
		return st, err
	}
	type srcStudy struct {
		trials, metrics, lats, weights, checkpoints [][]any
	}
	data := make([]srcStudy, len(studies))
	for i, s := range studies {
		id := s[0]
		var x srcStudy
		if x.trials, err = src.rawRows(ctx, `SELECT id, number, decisions, arch, recipe, status, worker, attempts, created_at,
			started_at, finished_at, error FROM trials WHERE study_id = ? ORDER BY number`, id); err != nil {
			return st, err
		}
		if x.metrics, err = src.rawRows(ctx, `SELECT m.trial_id, m.val_accuracy, m.test_accuracy, m.params, m.compressed_bytes, m.macs,
			m.train_seconds, m.reward, m.estimate FROM metrics m JOIN trials t ON t.id = m.trial_id WHERE t.study_id = ?`, id); err != nil {
			return st, err
		}
		if x.lats, err = src.rawRows(ctx, `SELECT l.trial_id, l.device_fingerprint, l.batch, l.runtime, l.median_ns, l.p90_ns, l.mad_ns,
			l.mean_ns, l.min_ns, l.max_ns, l.runs, l.outliers, l.predicted_ns, l.measured_at, l.latency_ns, l.ci_low_ns, l.ci_high_ns,
			l.rounds, l.reference, l.ref_ns, l.ratio, l.ratio_low, l.ratio_high, l.disturbed, l.ops, l.probe_ns, l.drift
			FROM latencies l JOIN trials t ON t.id = l.trial_id WHERE t.study_id = ?`, id); err != nil {
			return st, err
		}
		if x.weights, err = src.rawRows(ctx, `SELECT w.trial_id, w.blob, w.sha256 FROM weights w JOIN trials t ON t.id = w.trial_id
			WHERE t.study_id = ?`, id); err != nil {
			return st, err
		}
		if x.checkpoints, err = src.rawRows(ctx, `SELECT step, blob, created_at FROM checkpoints WHERE study_id = ? ORDER BY step`, id); err != nil {
			return st, err
		}
		data[i] = x
	}
	err = d.write(ctx, func(tx *tx) error {
		st = ImportStats{}
		for _, r := range devs {
			n, err := execCount(tx, `INSERT INTO devices (fingerprint, name, backend, description, first_seen) VALUES (?, ?, ?, ?, ?)
				ON CONFLICT (fingerprint) DO NOTHING`, r...)
			if err != nil {
				return err
			}
			st.Devices += n
		}
		for _, r := range ops {
			n, err := execCount(tx, `INSERT INTO op_latencies (device_fingerprint, signature, median_ns, updated_at) VALUES (?, ?, ?, ?)
				ON CONFLICT (device_fingerprint, signature) DO NOTHING`, r...)
			if err != nil {
				return err
			}
			st.OpLatencies += n
		}
		for _, r := range refs {
			n, err := execCount(tx, `INSERT INTO reference_figures (device_fingerprint, batch, runtime, reference, ref_ns, measured_at)
				VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (device_fingerprint, batch, runtime, reference, ref_ns) DO NOTHING`, r...)
			if err != nil {
				return err
			}
			st.ReferenceFigures += n
		}
		for i, s := range studies {
			name := asString(s[1])
			var dstID int64
			var cfg string
			err := tx.QueryRow(`SELECT id, config FROM studies WHERE name = ?`, name).Scan(&dstID, &cfg)
			isNew := errors.Is(err, sql.ErrNoRows)
			switch {
			case isNew:
				if err := tx.QueryRow(`INSERT INTO studies (name, dataset, device_spec, device_name, device_fingerprint, strategy,
					config, status, next_trial, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
					s[1:]...).Scan(&dstID); err != nil {
					return fmt.Errorf("importing study %q: %w", name, err)
				}
				st.Studies++
			case err != nil:
				return err
			case !sameJSON(cfg, asString(s[7])):
				return fmt.Errorf("study %q is in both databases with different configurations: not the same search (rename one)", name)
			default:
				if _, err := tx.Exec(`UPDATE studies SET next_trial = ? WHERE id = ? AND next_trial < ?`, s[9], dstID, s[9]); err != nil {
					return err
				}
			}
			x := data[i]
			trialMap := map[int64]int64{} // source trial id → d's id, for the finished trials d holds done or failed
			newTrials := map[int64]bool{}
			for _, t := range x.trials {
				srcID, status := asInt(t[0]), asString(t[5])
				if status != string(Done) && status != string(Failed) {
					st.Skipped++
					continue
				}
				var id int64
				err := tx.QueryRow(`INSERT INTO trials (study_id, number, decisions, arch, recipe, status, worker, attempts, created_at,
					started_at, finished_at, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
					ON CONFLICT (study_id, number) DO NOTHING RETURNING id`, append([]any{dstID}, t[1:]...)...).Scan(&id)
				switch {
				case err == nil:
					st.Trials++
					newTrials[srcID] = true
				case errors.Is(err, sql.ErrNoRows):
					var have string
					if err := tx.QueryRow(`SELECT id, status FROM trials WHERE study_id = ? AND number = ?`, dstID, t[1]).Scan(&id, &have); err != nil {
						return err
					}
					if have != string(Done) && have != string(Failed) {
						continue // d is still running it: its own result will come
					}
				default:
					return fmt.Errorf("importing study %q trial %v: %w", name, t[1], err)
				}
				trialMap[srcID] = id
			}
			for _, m := range x.metrics {
				if !newTrials[asInt(m[0])] {
					continue
				}
				m[0] = trialMap[asInt(m[0])]
				if _, err := tx.Exec(`INSERT INTO metrics (trial_id, val_accuracy, test_accuracy, params, compressed_bytes, macs,
					train_seconds, reward, estimate) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, m...); err != nil {
					return err
				}
			}
			for _, l := range x.lats {
				id, ok := trialMap[asInt(l[0])]
				if !ok {
					continue
				}
				l[0] = id
				n, err := execCount(tx, `INSERT INTO latencies (trial_id, device_fingerprint, batch, runtime, median_ns, p90_ns, mad_ns,
					mean_ns, min_ns, max_ns, runs, outliers, predicted_ns, measured_at, latency_ns, ci_low_ns, ci_high_ns,
					rounds, reference, ref_ns, ratio, ratio_low, ratio_high, disturbed, ops, probe_ns, drift)
					VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
					ON CONFLICT (trial_id, device_fingerprint, batch, runtime) DO NOTHING`, l...)
				if err != nil {
					return err
				}
				st.Latencies += n
			}
			for _, w := range x.weights {
				id, ok := trialMap[asInt(w[0])]
				if !ok {
					continue
				}
				w[0] = id
				n, err := execCount(tx, `INSERT INTO weights (trial_id, blob, sha256) VALUES (?, ?, ?) ON CONFLICT (trial_id) DO NOTHING`, w...)
				if err != nil {
					return err
				}
				st.Weights += n
			}
			if isNew {
				for _, c := range x.checkpoints {
					if _, err := tx.Exec(`INSERT INTO checkpoints (study_id, step, blob, created_at) VALUES (?, ?, ?, ?)`,
						append([]any{dstID}, c...)...); err != nil {
						return err
					}
					st.Checkpoints++
				}
			}
		}
		return nil
	})
	return st, err
}

// rawRows returns every row of q as driver values (int64, float64,
// string, []byte or nil), for copying between databases.
func (d *DB) rawRows(ctx context.Context, q string, args ...any) ([][]any, error) {
	rows, err := d.query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	var out [][]any
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		for i, v := range vals {
			if b, ok := v.([]byte); ok && cols[i] != "blob" {
				vals[i] = string(b) // SQLite hands TEXT as bytes through any
			}
		}
		out = append(out, vals)
	}
	return out, rows.Err()
}

func execCount(tx *tx, q string, args ...any) (int, error) {
	res, err := tx.Exec(q, args...)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}

func asString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case []byte:
		return string(x)
	}
	return fmt.Sprint(v)
}

func asInt(v any) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case int32:
		return int64(x)
	case float64:
		return int64(x)
	}
	return 0
}

// sameJSON compares two JSON texts by value.
func sameJSON(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return a == b
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return bytes.Equal(xa, ya)
}
