package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// CreateStudy inserts s (ID, Status, Created and Updated are set here;
// Status defaults to running) and returns it as stored. A name already in
// use is an error.
func (d *DB) CreateStudy(ctx context.Context, s Study) (Study, error) {
	if strings.TrimSpace(s.Name) == "" {
		return Study{}, errors.New("store: study name is empty")
	}
	if s.Status == "" {
		s.Status = StudyRunning
	}
	cfg, err := jsonOr(s.Config, "{}")
	if err != nil {
		return Study{}, fmt.Errorf("study %q: config: %w", s.Name, err)
	}
	s.Config = cfg
	info, err := jsonOr(s.DataInfo, "{}")
	if err != nil {
		return Study{}, fmt.Errorf("study %q: data info: %w", s.Name, err)
	}
	s.DataInfo = info
	t := now()
	err = d.write(ctx, func(tx *tx) error {
		var exists int
		if err := tx.QueryRow(`SELECT count(*) FROM studies WHERE name = ?`, s.Name).Scan(&exists); err != nil {
			return err
		}
		if exists > 0 {
			return fmt.Errorf("study %q already exists in %s", s.Name, d.path)
		}
		err := tx.QueryRow(`INSERT INTO studies (name, dataset, device_spec, device_name, device_fingerprint,
			strategy, config, data_info, status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			s.Name, s.Dataset, s.DeviceSpec, s.DeviceName, s.DeviceFingerprint, s.Strategy, string(cfg), string(info), s.Status,
			fmtTime(t), fmtTime(t)).Scan(&s.ID)
		if err != nil {
			return fmt.Errorf("study %q: %w", s.Name, err)
		}
		return nil
	})
	if err != nil {
		return Study{}, err
	}
	s.Created, s.Updated = t.UTC(), t.UTC()
	return s, nil
}

const studyColumns = `id, name, dataset, device_spec, device_name, device_fingerprint, strategy, config, data_info, status, created_at, updated_at`

func scanStudy(row interface{ Scan(...any) error }) (Study, error) {
	var s Study
	var cfg, info string
	var created, updated sql.NullString
	err := row.Scan(&s.ID, &s.Name, &s.Dataset, &s.DeviceSpec, &s.DeviceName, &s.DeviceFingerprint, &s.Strategy,
		&cfg, &info, &s.Status, &created, &updated)
	s.Config, s.DataInfo = json.RawMessage(cfg), json.RawMessage(info)
	s.Created, s.Updated = parseTime(created), parseTime(updated)
	return s, err
}

// GetStudy returns the study called name; an unknown name is ErrNotFound,
// with the known names in the message.
func (d *DB) GetStudy(ctx context.Context, name string) (Study, error) {
	s, err := scanStudy(d.queryRow(ctx, `SELECT `+studyColumns+` FROM studies WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return Study{}, d.unknownStudy(ctx, name)
	}
	return s, err
}

// StudyByID returns the study with id.
func (d *DB) StudyByID(ctx context.Context, id int64) (Study, error) {
	s, err := scanStudy(d.queryRow(ctx, `SELECT `+studyColumns+` FROM studies WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Study{}, fmt.Errorf("study id %d: %w in %s", id, ErrNotFound, d.path)
	}
	return s, err
}

func (d *DB) unknownStudy(ctx context.Context, name string) error {
	var names []string
	rows, err := d.query(ctx, `SELECT name FROM studies ORDER BY name`)
	if err == nil {
		for rows.Next() {
			var n string
			if rows.Scan(&n) == nil {
				names = append(names, n)
			}
		}
		rows.Close()
	}
	known := "none"
	if len(names) > 0 {
		known = strings.Join(names, ", ")
	}
	return fmt.Errorf("study %q: %w in %s (studies: %s)", name, ErrNotFound, d.path, known)
}

// ListStudies returns every study, oldest first, with its trial counts and
// best reward.
func (d *DB) ListStudies(ctx context.Context) ([]StudySummary, error) {
	rows, err := d.query(ctx, `SELECT `+studyColumns+`,
		(SELECT count(*) FROM trials t WHERE t.study_id = s.id AND t.status = 'pending'),
		(SELECT count(*) FROM trials t WHERE t.study_id = s.id AND t.status = 'running'),
		(SELECT count(*) FROM trials t WHERE t.study_id = s.id AND t.status = 'done'),
		(SELECT count(*) FROM trials t WHERE t.study_id = s.id AND t.status = 'failed'),
		(SELECT max(m.reward) FROM trials t JOIN metrics m ON m.trial_id = t.id WHERE t.study_id = s.id)
		FROM studies s ORDER BY s.id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []StudySummary
	for rows.Next() {
		var ss StudySummary
		var cfg, info string
		var created, updated sql.NullString
		var best sql.NullFloat64
		if err := rows.Scan(&ss.ID, &ss.Name, &ss.Dataset, &ss.DeviceSpec, &ss.DeviceName, &ss.DeviceFingerprint,
			&ss.Strategy, &cfg, &info, &ss.Status, &created, &updated,
			&ss.Pending, &ss.Running, &ss.Done, &ss.Failed, &best); err != nil {
			return nil, err
		}
		ss.Config, ss.DataInfo = json.RawMessage(cfg), json.RawMessage(info)
		ss.Created, ss.Updated = parseTime(created), parseTime(updated)
		if best.Valid {
			ss.BestReward = &best.Float64
		}
		out = append(out, ss)
	}
	return out, rows.Err()
}

// SetStudyStatus records a study's status (running, done, stopped, failed).
func (d *DB) SetStudyStatus(ctx context.Context, studyID int64, status string) error {
	return d.write(ctx, func(tx *tx) error {
		res, err := tx.Exec(`UPDATE studies SET status = ?, updated_at = ? WHERE id = ?`, status, fmtTime(now()), studyID)
		if err != nil {
			return fmt.Errorf("study id %d: status %q: %w", studyID, status, err)
		}
		return expectOne(res, "study id %d", studyID)
	})
}

// jsonOr returns raw, or def when raw is empty, after checking it is JSON.
func jsonOr(raw json.RawMessage, def string) (json.RawMessage, error) {
	if len(raw) == 0 {
		return json.RawMessage(def), nil
	}
	if !json.Valid(raw) {
		return nil, errors.New("not valid JSON")
	}
	return raw, nil
}

// expectOne turns "no row changed" into ErrNotFound.
func expectOne(res sql.Result, format string, a ...any) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf(format+": %w", append(a, ErrNotFound)...)
	}
	return nil
}
