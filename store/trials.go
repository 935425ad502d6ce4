package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// NextTrialNumber returns the number the study's next AddTrial will get.
// Numbers come from a counter in the study row that only grows, so a
// number is never handed out twice, even after a crash or a failed trial.
func (d *DB) NextTrialNumber(ctx context.Context, studyID int64) (int, error) {
	var n int
	err := d.queryRow(ctx, `SELECT next_trial FROM studies WHERE id = ?`, studyID).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("study id %d: %w", studyID, ErrNotFound)
	}
	return n, err
}

// AddTrial inserts a pending trial with the study's next number and
// advances the counter, both in one transaction.
func (d *DB) AddTrial(ctx context.Context, studyID int64, spec TrialSpec) (Trial, error) {
	var t Trial
	var err error
	if t.Decisions, err = jsonOr(spec.Decisions, "null"); err != nil {
		return Trial{}, fmt.Errorf("trial decisions: %w", err)
	}
	if t.Arch, err = jsonOr(spec.Arch, "null"); err != nil {
		return Trial{}, fmt.Errorf("trial arch: %w", err)
	}
	if t.Recipe, err = jsonOr(spec.Recipe, "null"); err != nil {
		return Trial{}, fmt.Errorf("trial recipe: %w", err)
	}
	created := now()
	err = d.write(ctx, func(tx *tx) error {
		if err := tx.QueryRow(`UPDATE studies SET next_trial = next_trial + 1, updated_at = ? WHERE id = ?
			RETURNING next_trial - 1, name`, fmtTime(created), studyID).Scan(&t.Number, &t.Study); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("study id %d: %w", studyID, ErrNotFound)
			}
			return err
		}
		err := tx.QueryRow(`INSERT INTO trials (study_id, number, decisions, arch, recipe, status, created_at)
			VALUES (?, ?, ?, ?, ?, 'pending', ?) RETURNING id`,
			studyID, t.Number, string(t.Decisions), string(t.Arch), string(t.Recipe), fmtTime(created)).Scan(&t.ID)
		if err != nil {
			return fmt.Errorf("study id %d trial %d: %w", studyID, t.Number, err)
		}
		return nil
	})
	if err != nil {
		return Trial{}, err
	}
	t.StudyID, t.Status, t.Created = studyID, Pending, created.UTC()
	return t, nil
}

// StartTrial marks a pending trial running on worker and counts the
// attempt. A trial in any other state is an error.
func (d *DB) StartTrial(ctx context.Context, trialID int64, worker string) error {
	return d.write(ctx, func(tx *tx) error {
		if err := requireStatus(tx, trialID, Pending); err != nil {
			return err
		}
		_, err := tx.Exec(`UPDATE trials SET status = 'running', worker = ?, attempts = attempts + 1,
			started_at = ?, finished_at = NULL, error = '', lease_until = NULL WHERE id = ?`, worker, fmtTime(now()), trialID)
		return err
	})
}

// FinishTrial records a running trial's metrics, its latencies (each
// device's description is kept once per fingerprint) and its trained
// compressed weights, and marks it done, all in one transaction: after a
// crash a trial is either done with everything or not done at all.
// weights may be nil when there is nothing to keep.
func (d *DB) FinishTrial(ctx context.Context, trialID int64, m Metrics, lats []Latency, weights []byte) error {
	return d.finish(ctx, trialID, func(tx *tx) error { return requireStatus(tx, trialID, Running) }, m, lats, weights)
}

// finish is FinishTrial after check passed inside the transaction.
func (d *DB) finish(ctx context.Context, trialID int64, check func(*tx) error, m Metrics, lats []Latency, weights []byte) error {
	return d.write(ctx, func(tx *tx) error {
		if err := check(tx); err != nil {
			return err
		}
		t := fmtTime(now())
		if _, err := tx.Exec(`UPDATE trials SET status = 'done', finished_at = ?, error = '', lease_until = NULL WHERE id = ?`, t, trialID); err != nil {
			return err
		}
		if err := putMetrics(tx, trialID, m); err != nil {
			return err
		}
		for _, l := range lats {
			if err := putLatency(tx, trialID, l, t); err != nil {
				return err
			}
		}
		return putWeights(tx, trialID, weights)
	})
}

// SetTestAccuracy records a finished trial's test accuracy (measured for a
// final report).
func (d *DB) SetTestAccuracy(ctx context.Context, trialID int64, acc float64) error {
	return d.write(ctx, func(tx *tx) error {
		res, err := tx.Exec(`UPDATE metrics SET test_accuracy = ? WHERE trial_id = ?`, acc, trialID)
		if err != nil {
			return err
		}
		return expectOne(res, "metrics of trial id %d", trialID)
	})
}

// FailTrial marks a pending or running trial failed with reason.
func (d *DB) FailTrial(ctx context.Context, trialID int64, reason string) error {
	return d.write(ctx, func(tx *tx) error {
		if err := requireStatus(tx, trialID, Pending, Running); err != nil {
			return err
		}
		return failTrial(tx, trialID, reason)
	})
}

func failTrial(tx *tx, trialID int64, reason string) error {
	_, err := tx.Exec(`UPDATE trials SET status = 'failed', stage = '', lease_until = NULL, finished_at = ?, error = ? WHERE id = ?`,
		fmtTime(now()), reason, trialID)
	return err
}

// RequeueRunning sends every running trial of the study back to pending
// (for a resume after the coordinator was killed) and returns their ids by
// number. Their numbers, decisions and attempt counts stay.
func (d *DB) RequeueRunning(ctx context.Context, studyID int64) ([]int64, error) {
	var ids []int64
	err := d.write(ctx, func(tx *tx) error {
		rows, err := tx.Query(`UPDATE trials SET status = 'pending', worker = '', started_at = NULL, lease_until = NULL
			WHERE study_id = ? AND status = 'running' AND stage = '' RETURNING id, number`, studyID)
		if err != nil {
			return err
		}
		defer rows.Close()
		type idNum struct {
			id  int64
			num int
		}
		var got []idNum
		for rows.Next() {
			var x idNum
			if err := rows.Scan(&x.id, &x.num); err != nil {
				return err
			}
			got = append(got, x)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		slices.SortFunc(got, func(a, b idNum) int { return a.num - b.num }) // RETURNING order is unspecified
		for _, x := range got {
			ids = append(ids, x.id)
		}
		return nil
	})
	return ids, err
}

// requireStatus checks, inside tx, that the trial exists and is in one of
// the given states.
func requireStatus(tx *tx, trialID int64, allowed ...TrialStatus) error {
	var st TrialStatus
	err := tx.QueryRow(`SELECT status FROM trials WHERE id = ?`+tx.d.forUpdate(), trialID).Scan(&st)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("trial id %d: %w", trialID, ErrNotFound)
	}
	if err != nil {
		return err
	}
	for _, a := range allowed {
		if st == a {
			return nil
		}
	}
	want := make([]string, len(allowed))
	for i, a := range allowed {
		want[i] = string(a)
	}
	return fmt.Errorf("trial id %d is %s, want %s", trialID, st, strings.Join(want, " or "))
}

const trialColumns = `t.id, t.study_id, s.name, t.number, t.decisions, t.arch, t.recipe, t.status, t.stage, t.worker,
	t.attempts, t.created_at, t.started_at, t.finished_at, t.error,
	m.val_accuracy, m.test_accuracy, m.params, m.compressed_bytes, m.macs, m.train_seconds, m.reward, m.estimate`

const trialFrom = ` FROM trials t JOIN studies s ON s.id = t.study_id LEFT JOIN metrics m ON m.trial_id = t.id `

func scanTrial(row interface{ Scan(...any) error }) (Trial, error) {
	var t Trial
	var dec, arch, rec string
	var created, started, finished sql.NullString
	var val, test, secs, reward sql.NullFloat64
	var params, bytes, macs, estimate sql.NullInt64
	err := row.Scan(&t.ID, &t.StudyID, &t.Study, &t.Number, &dec, &arch, &rec, &t.Status, &t.Stage, &t.Worker,
		&t.Attempts, &created, &started, &finished, &t.Error,
		&val, &test, &params, &bytes, &macs, &secs, &reward, &estimate)
	if err != nil {
		return Trial{}, err
	}
	t.Decisions, t.Arch, t.Recipe = json.RawMessage(dec), json.RawMessage(arch), json.RawMessage(rec)
	t.Created, t.Started, t.Finished = parseTime(created), parseTime(started), parseTime(finished)
	if val.Valid {
		t.Metrics = &Metrics{ValAccuracy: val.Float64, TestAccuracy: test.Float64, HasTest: test.Valid,
			Params: params.Int64, CompressedBytes: bytes.Int64, MACs: macs.Int64, TrainSeconds: secs.Float64,
			Reward: reward.Float64, Estimate: estimate.Int64 != 0}
	}
	return t, nil
}

// GetTrial returns a trial by id with its metrics and latencies.
func (d *DB) GetTrial(ctx context.Context, trialID int64) (Trial, error) {
	t, err := scanTrial(d.queryRow(ctx, `SELECT `+trialColumns+trialFrom+`WHERE t.id = ?`, trialID))
	if errors.Is(err, sql.ErrNoRows) {
		return Trial{}, fmt.Errorf("trial id %d: %w in %s", trialID, ErrNotFound, d.path)
	}
	if err != nil {
		return Trial{}, err
	}
	lats, err := d.latencies(ctx, `l.trial_id = ?`, trialID)
	if err != nil {
		return Trial{}, err
	}
	t.Latencies = lats[t.ID]
	return t, nil
}

// ListTrials returns the study's trials by number with their metrics and
// latencies, narrowed by f.
func (d *DB) ListTrials(ctx context.Context, studyID int64, f TrialFilter) ([]Trial, error) {
	q := `SELECT ` + trialColumns + trialFrom + `WHERE t.study_id = ?`
	args := []any{studyID}
	if f.Status != "" {
		q += ` AND t.status = ?`
		args = append(args, string(f.Status))
	}
	if f.From > 0 {
		q += ` AND t.number >= ?`
		args = append(args, f.From)
	}
	if f.Below > 0 {
		q += ` AND t.number < ?`
		args = append(args, f.Below)
	}
	q += ` ORDER BY t.number`
	if f.Limit > 0 {
		q += ` LIMIT ?`
		args = append(args, f.Limit)
	}
	rows, err := d.query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	var out []Trial
	for rows.Next() {
		t, err := scanTrial(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	lats, err := d.latencies(ctx, `l.trial_id IN (SELECT id FROM trials WHERE study_id = ?)`, studyID)
	if err != nil {
		return nil, err
	}
	for i := range out {
		out[i].Latencies = lats[out[i].ID]
	}
	return out, nil
}

// TrialWeights returns the trained compressed weights stored with a
// finished trial, checked against the SHA-256 stored beside them.
func (d *DB) TrialWeights(ctx context.Context, trialID int64) ([]byte, error) {
	var blob []byte
	var sum string
	err := d.queryRow(ctx, `SELECT blob, sha256 FROM weights WHERE trial_id = ?`, trialID).Scan(&blob, &sum)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("weights of trial id %d: %w in %s", trialID, ErrNotFound, d.path)
	}
	if err != nil {
		return nil, err
	}
	got := sha256.Sum256(blob)
	if hex.EncodeToString(got[:]) != sum {
		return nil, fmt.Errorf("weights of trial id %d in %s are corrupt (SHA-256 mismatch)", trialID, d.path)
	}
	return blob, nil
}

// durNS converts stored nanoseconds.
func durNS(ns int64) time.Duration { return time.Duration(ns) }
