package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// ErrLeaseLost: the trial is no longer this worker's (its lease lapsed and
// another worker claimed it, or it was re-queued). Nothing was written.
var ErrLeaseLost = errors.New("trial lease lost")

// Claim is a trial a worker holds: the worker's id and the attempt number
// the claim gave. Every write a worker makes for the trial names its
// claim, and a write under a claim that is no longer current is refused
// (ErrLeaseLost), so a worker that was presumed dead cannot record a trial
// another worker has taken over: a trial is finished at most once.
type Claim struct {
	TrialID int64
	Worker  string
	Attempt int
}

// Trial stages besides the plain run: StageMeasure is a trained trial
// (metrics and weights stored, status running) waiting for the study's
// measuring device.
const (
	StageTrain   = ""
	StageMeasure = "measure"
)

// searchTrial is the condition on alias-free trials columns that leaves
// out final trainings (their decisions are a JSON object; the coordinator
// runs them itself).
const searchTrial = `substr(decisions, 1, 1) <> '{'`

// ClaimTrial hands worker the study's lowest-numbered trial that is
// pending, or running with a lapsed lease (its worker died), marks it
// running under a lease of the given length on the database's clock and
// counts the attempt. On PostgreSQL concurrent claims skip each other's
// locked rows (FOR UPDATE SKIP LOCKED); SQLite serialises them. No trial
// to claim is ErrNotFound.
func (d *DB) ClaimTrial(ctx context.Context, studyID int64, worker string, lease time.Duration) (Trial, Claim, error) {
	return d.claim(ctx, worker, "no trial to claim", `UPDATE trials SET status = 'running', worker = ?, attempts = attempts + 1,
		started_at = ?, finished_at = NULL, error = '', lease_until = `+d.nowNS()+` + ?
		WHERE id = (SELECT id FROM trials WHERE study_id = ? AND stage = '' AND `+searchTrial+`
			AND (status = 'pending' OR (status = 'running' AND lease_until < `+d.nowNS()+`))
			ORDER BY number LIMIT 1`+d.skipLocked()+`)
		RETURNING id, attempts`, worker, fmtTime(now()), int64(lease), studyID)
}

// skipLocked makes concurrent claims pass over each other's rows
// (PostgreSQL; SQLite serialises write transactions).
func (d *DB) skipLocked() string {
	if d.Postgres() {
		return " FOR UPDATE SKIP LOCKED"
	}
	return ""
}

// claim runs a claiming UPDATE … RETURNING id, attempts and returns the
// claimed trial; no row is ErrNotFound.
func (d *DB) claim(ctx context.Context, worker, none, q string, args ...any) (Trial, Claim, error) {
	c := Claim{Worker: worker}
	err := d.write(ctx, func(tx *tx) error {
		err := tx.QueryRow(q, args...).Scan(&c.TrialID, &c.Attempt)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("study id %v: %s: %w", args[len(args)-1], none, ErrNotFound)
		}
		return err
	})
	if err != nil {
		return Trial{}, Claim{}, err
	}
	t, err := d.GetTrial(ctx, c.TrialID)
	return t, c, err
}

// Heartbeat extends the claim's lease to lease from now; ErrLeaseLost when
// the trial is no longer the claim's.
func (d *DB) Heartbeat(ctx context.Context, c Claim, lease time.Duration) error {
	return d.write(ctx, func(tx *tx) error {
		res, err := tx.Exec(`UPDATE trials SET lease_until = `+d.nowNS()+` + ?
			WHERE id = ? AND status = 'running' AND worker = ? AND attempts = ?`, int64(lease), c.TrialID, c.Worker, c.Attempt)
		if err != nil {
			return err
		}
		return leaseHeld(res, c)
	})
}

func leaseHeld(res sql.Result, c Claim) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("trial id %d (worker %s, attempt %d): %w", c.TrialID, c.Worker, c.Attempt, ErrLeaseLost)
	}
	return nil
}

// requireClaim checks inside tx that the trial is running in stage under
// c, locking its row.
func requireClaim(tx *tx, c Claim, stage string) error {
	var st TrialStatus
	var worker, stg string
	var attempts int
	err := tx.QueryRow(`SELECT status, worker, attempts, stage FROM trials WHERE id = ?`+tx.d.forUpdate(), c.TrialID).
		Scan(&st, &worker, &attempts, &stg)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("trial id %d: %w", c.TrialID, ErrNotFound)
	}
	if err != nil {
		return err
	}
	if st != Running || worker != c.Worker || attempts != c.Attempt || stg != stage {
		return fmt.Errorf("trial id %d is %s (stage %q) by %q attempt %d, not %s attempt %d: %w",
			c.TrialID, st, stg, worker, attempts, c.Worker, c.Attempt, ErrLeaseLost)
	}
	return nil
}

// FinishClaimed is FinishTrial for a worker's claim: refused with
// ErrLeaseLost when the claim is no longer current.
func (d *DB) FinishClaimed(ctx context.Context, c Claim, m Metrics, lats []Latency, weights []byte) error {
	return d.finish(ctx, c.TrialID, func(tx *tx) error { return requireClaim(tx, c, StageTrain) }, m, lats, weights)
}

// FailClaimed is FailTrial for a worker's claim.
func (d *DB) FailClaimed(ctx context.Context, c Claim, reason string) error {
	return d.write(ctx, func(tx *tx) error {
		if err := requireClaim(tx, c, StageTrain); err != nil {
			return err
		}
		return failTrial(tx, c.TrialID, reason)
	})
}

// SubmitForMeasure records a trained trial's metrics (its reward still 0)
// and weights and hands it to the study's measuring device: the trial
// stays running, in StageMeasure, without a lease until a measurer claims
// it (ClaimMeasure).
func (d *DB) SubmitForMeasure(ctx context.Context, c Claim, m Metrics, weights []byte) error {
	return d.write(ctx, func(tx *tx) error {
		if err := requireClaim(tx, c, StageTrain); err != nil {
			return err
		}
		if _, err := tx.Exec(`UPDATE trials SET stage = 'measure', worker = '', lease_until = NULL WHERE id = ?`, c.TrialID); err != nil {
			return err
		}
		m.Reward = 0
		if err := putMetrics(tx, c.TrialID, m); err != nil {
			return err
		}
		return putWeights(tx, c.TrialID, weights)
	})
}

// ClaimMeasure hands a measurer the lowest-numbered trial of the study
// waiting for measurement whose lease, if any, lapsed (a measurer that
// went away), under a new lease. The claim's Attempt is the trial's
// training attempt. None is ErrNotFound.
func (d *DB) ClaimMeasure(ctx context.Context, studyID int64, worker string, lease time.Duration) (Trial, Claim, error) {
	return d.claim(ctx, worker, "no trial waits for measurement", `UPDATE trials SET worker = ?, lease_until = `+d.nowNS()+` + ?
		WHERE id = (SELECT id FROM trials WHERE study_id = ? AND status = 'running' AND stage = 'measure'
			AND (lease_until IS NULL OR lease_until < `+d.nowNS()+`) ORDER BY number LIMIT 1`+d.skipLocked()+`)
		RETURNING id, attempts`, worker, int64(lease), studyID)
}

// FinishMeasured records the measuring device's latencies of a trial the
// measurer claimed (one per runtime measured) and its reward, and marks
// it done, in one transaction.
func (d *DB) FinishMeasured(ctx context.Context, c Claim, lats []Latency, reward float64) error {
	return d.write(ctx, func(tx *tx) error {
		if err := requireClaim(tx, c, StageMeasure); err != nil {
			return err
		}
		at := fmtTime(now())
		for _, l := range lats {
			if err := putLatency(tx, c.TrialID, l, at); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(`UPDATE metrics SET reward = ? WHERE trial_id = ?`, reward, c.TrialID); err != nil {
			return err
		}
		_, err := tx.Exec(`UPDATE trials SET status = 'done', stage = '', lease_until = NULL, finished_at = ? WHERE id = ?`, at, c.TrialID)
		return err
	})
}

// FailMeasured fails a trial the measurer claimed (its stored model does
// not run on the device).
func (d *DB) FailMeasured(ctx context.Context, c Claim, reason string) error {
	return d.write(ctx, func(tx *tx) error {
		if err := requireClaim(tx, c, StageMeasure); err != nil {
			return err
		}
		return failTrial(tx, c.TrialID, reason)
	})
}

// HeartbeatMeasure extends a measurer's lease on a trial.
func (d *DB) HeartbeatMeasure(ctx context.Context, c Claim, lease time.Duration) error {
	return d.Heartbeat(ctx, c, lease)
}

// RequeueAbandoned sends back to pending the study's running trials that
// no live worker holds: those without a lease (run by a coordinator
// before leases), those whose lease lapsed, and those whose worker dead
// reports gone (a local worker of a killed coordinator, known at once
// instead of after its lease). Trials waiting for measurement keep their
// results. It returns the re-queued ids by number.
func (d *DB) RequeueAbandoned(ctx context.Context, studyID int64, dead func(worker string) bool) ([]int64, error) {
	var ids []int64
	err := d.write(ctx, func(tx *tx) error {
		rows, err := tx.Query(`SELECT id, worker, lease_until IS NULL OR lease_until < `+d.nowNS()+` FROM trials
			WHERE study_id = ? AND status = 'running' AND stage = '' AND `+searchTrial+` ORDER BY number`+d.forUpdate(), studyID)
		if err != nil {
			return err
		}
		var gone []int64
		for rows.Next() {
			var id int64
			var worker string
			var lapsed bool
			if err := rows.Scan(&id, &worker, &lapsed); err != nil {
				rows.Close()
				return err
			}
			if lapsed || (dead != nil && dead(worker)) {
				gone = append(gone, id)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, id := range gone {
			if _, err := tx.Exec(`UPDATE trials SET status = 'pending', worker = '', started_at = NULL, lease_until = NULL
				WHERE id = ?`, id); err != nil {
				return err
			}
		}
		ids = gone
		return nil
	})
	return ids, err
}

// TrialCounts are a study's trials by state, search trials only.
type TrialCounts struct {
	Pending, Running, Measuring, Done, Failed int
}

// CountTrials counts the study's search trials by state (final trainings
// left out).
func (d *DB) CountTrials(ctx context.Context, studyID int64) (TrialCounts, error) {
	var c TrialCounts
	err := d.queryRow(ctx, `SELECT
		coalesce(sum(CASE WHEN status = 'pending' THEN 1 ELSE 0 END), 0),
		coalesce(sum(CASE WHEN status = 'running' AND stage = '' THEN 1 ELSE 0 END), 0),
		coalesce(sum(CASE WHEN status = 'running' AND stage = 'measure' THEN 1 ELSE 0 END), 0),
		coalesce(sum(CASE WHEN status = 'done' THEN 1 ELSE 0 END), 0),
		coalesce(sum(CASE WHEN status = 'failed' THEN 1 ELSE 0 END), 0)
		FROM trials WHERE study_id = ? AND `+searchTrial, studyID).Scan(&c.Pending, &c.Running, &c.Measuring, &c.Done, &c.Failed)
	return c, err
}

// Worker is a trial worker or measurer attached to a study.
type Worker struct {
	ID                string        `json:"id"`
	Study             int64         `json:"study_id"`
	Role              string        `json:"role"` // RoleTrain or RoleMeasure
	Host              string        `json:"host"`
	PID               int           `json:"pid"`
	DeviceFingerprint string        `json:"device_fingerprint,omitempty"`
	Started           time.Time     `json:"started"`
	SeenAgo           time.Duration `json:"seen_ago_ns"`
}

// Worker roles.
const (
	RoleTrain   = "train"
	RoleMeasure = "measure"
)

// WorkerSeen registers w or records that it is alive now (the database's
// clock).
func (d *DB) WorkerSeen(ctx context.Context, w Worker) error {
	return d.write(ctx, func(tx *tx) error {
		_, err := tx.Exec(`INSERT INTO workers (id, study_id, role, host, pid, device_fingerprint, started_at, seen_ns)
			VALUES (?, ?, ?, ?, ?, ?, ?, `+d.nowNS()+`) ON CONFLICT (id) DO UPDATE SET seen_ns = excluded.seen_ns`,
			w.ID, w.Study, w.Role, w.Host, w.PID, w.DeviceFingerprint, fmtTime(now()))
		return err
	})
}

// WorkerGone removes a worker that stops.
func (d *DB) WorkerGone(ctx context.Context, id string) error {
	return d.write(ctx, func(tx *tx) error {
		_, err := tx.Exec(`DELETE FROM workers WHERE id = ?`, id)
		return err
	})
}

// LiveWorkers returns the study's workers of role seen within the last
// within, oldest first.
func (d *DB) LiveWorkers(ctx context.Context, studyID int64, role string, within time.Duration) ([]Worker, error) {
	rows, err := d.query(ctx, `SELECT id, study_id, role, host, pid, device_fingerprint, started_at, `+d.nowNS()+` - seen_ns
		FROM workers WHERE study_id = ? AND role = ? AND seen_ns > `+d.nowNS()+` - ? ORDER BY started_at, id`,
		studyID, role, int64(within))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Worker
	for rows.Next() {
		var w Worker
		var started sql.NullString
		var ago int64
		if err := rows.Scan(&w.ID, &w.Study, &w.Role, &w.Host, &w.PID, &w.DeviceFingerprint, &started, &ago); err != nil {
			return nil, err
		}
		w.Started, w.SeenAgo = parseTime(started), time.Duration(ago)
		out = append(out, w)
	}
	return out, rows.Err()
}

// TrialsToMeasure returns the study's finished trials with stored weights
// and no latency yet on the device at batch and runtime, by number.
func (d *DB) TrialsToMeasure(ctx context.Context, studyID int64, fingerprint string, batch int, runtime string) ([]Trial, error) {
	rows, err := d.query(ctx, `SELECT `+trialColumns+trialFrom+`WHERE t.study_id = ? AND t.status = 'done'
		AND EXISTS (SELECT 1 FROM weights w WHERE w.trial_id = t.id)
		AND NOT EXISTS (SELECT 1 FROM latencies l WHERE l.trial_id = t.id AND l.device_fingerprint = ? AND l.batch = ? AND l.runtime = ?)
		ORDER BY t.number`, studyID, fingerprint, max(1, batch), runtimeOr(runtime))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Trial
	for rows.Next() {
		t, err := scanTrial(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

func runtimeOr(r string) string {
	if r == "" {
		return RuntimeHwnas
	}
	return r
}

// putMetrics inserts a trial's metrics.
func putMetrics(tx *tx, trialID int64, m Metrics) error {
	var test sql.NullFloat64
	if m.HasTest {
		test = sql.NullFloat64{Float64: m.TestAccuracy, Valid: true}
	}
	if _, err := tx.Exec(`INSERT INTO metrics (trial_id, val_accuracy, test_accuracy, params, compressed_bytes,
		macs, train_seconds, reward, estimate) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		trialID, m.ValAccuracy, test, m.Params, m.CompressedBytes, m.MACs, m.TrainSeconds, m.Reward, boolInt(m.Estimate)); err != nil {
		return fmt.Errorf("trial id %d metrics: %w", trialID, err)
	}
	return nil
}

// putWeights stores a trial's weights with their SHA-256 (nil: none).
func putWeights(tx *tx, trialID int64, weights []byte) error {
	if weights == nil {
		return nil
	}
	sum := sha256.Sum256(weights)
	if _, err := tx.Exec(`INSERT INTO weights (trial_id, blob, sha256) VALUES (?, ?, ?)`,
		trialID, weights, hex.EncodeToString(sum[:])); err != nil {
		return fmt.Errorf("trial id %d weights: %w", trialID, err)
	}
	return nil
}

// boolInt is a flag as the schema's 0/1 integer columns hold it.
func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
