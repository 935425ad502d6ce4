package store

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"hwnas/store/pgtest"
)

func newStudy(t *testing.T, d *DB, name string) Study {
	t.Helper()
	dev := testDevice("Test CPU", "cpu", 2)
	s, err := d.CreateStudy(ctx, Study{Name: name, Dataset: "mnist", DeviceSpec: "cpu", DeviceName: dev.Name,
		DeviceFingerprint: dev.Fingerprint, Strategy: "random", Config: json.RawMessage(`{"seed":1}`)})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func addPending(t *testing.T, d *DB, study int64, n int) {
	t.Helper()
	for range n {
		if _, err := d.AddTrial(ctx, study, TrialSpec{Decisions: json.RawMessage(`[0]`)}); err != nil {
			t.Fatal(err)
		}
	}
}

var okMetrics = Metrics{ValAccuracy: 0.9, Params: 10, CompressedBytes: 100, MACs: 1000, TrainSeconds: 1, Reward: 0.9}

// TestClaimsAndLeases: workers claim the lowest pending trial; a lapsed
// lease makes a running trial claimable again with a new attempt, and the
// old worker's writes are then refused, so the trial is finished once.
func TestClaimsAndLeases(t *testing.T) {
	eachStore(t, func(t *testing.T, d *DB) {
		s := newStudy(t, d, "lease")
		addPending(t, d, s.ID, 3)
		final, err := d.AddTrial(ctx, s.ID, TrialSpec{Decisions: json.RawMessage(`{"final_of":0}`)})
		if err != nil {
			t.Fatal(err)
		}
		dev := testDevice("Test CPU", "cpu", 2)
		t0, c0, err := d.ClaimTrial(ctx, s.ID, "w0", time.Minute)
		if err != nil || t0.Number != 0 || c0.Attempt != 1 || t0.Status != Running || t0.Worker != "w0" {
			t.Fatalf("first claim %+v %+v %v", t0, c0, err)
		}
		_, c1, _ := d.ClaimTrial(ctx, s.ID, "w1", time.Minute)
		if err := d.FinishClaimed(ctx, c0, okMetrics, []Latency{lat(dev, 1, time.Microsecond)}, []byte("w")); err != nil {
			t.Fatal(err)
		}
		t2, c2, err := d.ClaimTrial(ctx, s.ID, "w2", time.Millisecond)
		if err != nil || t2.Number != 2 {
			t.Fatalf("third claim %+v %v", t2, err)
		}
		time.Sleep(30 * time.Millisecond) // w2's lease lapses: it "died"
		t2b, c2b, err := d.ClaimTrial(ctx, s.ID, "w3", time.Minute)
		if err != nil || t2b.ID != t2.ID || c2b.Attempt != 2 {
			t.Fatalf("re-claim of the lapsed trial %+v %+v %v", t2b, c2b, err)
		}
		if err := d.Heartbeat(ctx, c2, time.Minute); !errors.Is(err, ErrLeaseLost) {
			t.Fatalf("heartbeat of a lost lease: %v", err)
		}
		if err := d.FinishClaimed(ctx, c2, okMetrics, nil, nil); !errors.Is(err, ErrLeaseLost) {
			t.Fatalf("finish of a lost lease: %v", err)
		}
		if err := d.FailClaimed(ctx, c2, "late"); !errors.Is(err, ErrLeaseLost) {
			t.Fatalf("fail of a lost lease: %v", err)
		}
		if err := d.Heartbeat(ctx, c2b, time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := d.FinishClaimed(ctx, c2b, okMetrics, nil, []byte("w")); err != nil {
			t.Fatal(err)
		}
		if _, _, err := d.ClaimTrial(ctx, s.ID, "w4", time.Minute); !errors.Is(err, ErrNotFound) {
			t.Fatalf("claim with nothing pending (a final training is not claimable): %v", err)
		}
		if err := d.FailClaimed(ctx, c1, "crash: test"); err != nil {
			t.Fatal(err)
		}
		c, err := d.CountTrials(ctx, s.ID)
		if err != nil || c != (TrialCounts{Done: 2, Failed: 1}) {
			t.Fatalf("counts %+v %v", c, err)
		}
		if tr, _ := d.GetTrial(ctx, final.ID); tr.Status != Pending {
			t.Fatalf("final trial %+v", tr)
		}
	})
}

// TestConcurrentClaims: 8 workers claim and finish 40 trials at once:
// every trial is finished exactly once and none is left running.
func TestConcurrentClaims(t *testing.T) {
	eachStore(t, func(t *testing.T, d *DB) {
		s := newStudy(t, d, "many")
		addPending(t, d, s.ID, 40)
		var mu sync.Mutex
		got := map[int]string{}
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for w := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				name := fmt.Sprintf("w%d", w)
				for {
					tr, c, err := d.ClaimTrial(ctx, s.ID, name, time.Minute)
					if errors.Is(err, ErrNotFound) {
						return
					}
					if err == nil {
						err = d.FinishClaimed(ctx, c, okMetrics, nil, nil)
					}
					if err != nil {
						errs <- err
						return
					}
					mu.Lock()
					if prev, dup := got[tr.Number]; dup {
						errs <- fmt.Errorf("trial %d claimed by %s and %s", tr.Number, prev, name)
					}
					got[tr.Number] = name
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		c, _ := d.CountTrials(ctx, s.ID)
		if len(got) != 40 || c.Done != 40 || c.Running+c.Pending != 0 {
			t.Fatalf("%d trials finished, counts %+v", len(got), c)
		}
	})
}

// TestMeasureStage: a trained trial waits for the measuring device; a
// measurer that goes away loses its lease to another; the reward and
// latency are recorded with the trial's completion.
func TestMeasureStage(t *testing.T) {
	eachStore(t, func(t *testing.T, d *DB) {
		s := newStudy(t, d, "pinned")
		addPending(t, d, s.ID, 1)
		board := testDevice("Board", "cpu", 4)
		_, c, _ := d.ClaimTrial(ctx, s.ID, "trainer", time.Minute)
		if err := d.SubmitForMeasure(ctx, c, okMetrics, []byte("weights")); err != nil {
			t.Fatal(err)
		}
		if n, _ := d.CountTrials(ctx, s.ID); n.Measuring != 1 || n.Running != 0 {
			t.Fatalf("counts %+v", n)
		}
		if _, _, err := d.ClaimTrial(ctx, s.ID, "trainer2", time.Minute); !errors.Is(err, ErrNotFound) {
			t.Fatalf("a trial waiting for measurement was claimed for training: %v", err)
		}
		if ids, _ := d.RequeueAbandoned(ctx, s.ID, func(string) bool { return true }); len(ids) != 0 {
			t.Fatalf("requeued a trial waiting for measurement: %v", ids)
		}
		_, m1, err := d.ClaimMeasure(ctx, s.ID, "m1", time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(30 * time.Millisecond)
		tr, m2, err := d.ClaimMeasure(ctx, s.ID, "m2", time.Minute)
		if err != nil || tr.Stage != StageMeasure {
			t.Fatalf("re-claim after the measurer went away: %+v %v", tr, err)
		}
		l := lat(board, 1, 7*time.Microsecond)
		if err := d.FinishMeasured(ctx, m1, []Latency{l}, 0.5); !errors.Is(err, ErrLeaseLost) {
			t.Fatalf("finish by the lost measurer: %v", err)
		}
		if err := d.FinishMeasured(ctx, m2, []Latency{l}, 0.75); err != nil {
			t.Fatal(err)
		}
		rs, err := d.Best(ctx, Query{Device: "Board"})
		if err != nil || len(rs) != 1 || rs[0].Metrics.Reward != 0.75 || rs[0].Latency.Stats.Median != 7*time.Microsecond ||
			rs[0].Latency.Runtime != RuntimeHwnas {
			t.Fatalf("best on the board: %+v %v", rs, err)
		}
		if todo, err := d.TrialsToMeasure(ctx, s.ID, board.Fingerprint, 1, ""); err != nil || len(todo) != 0 {
			t.Fatalf("to measure on the board: %d %v", len(todo), err)
		}
		other := testDevice("Other", "cpu", 1)
		if todo, err := d.TrialsToMeasure(ctx, s.ID, other.Fingerprint, 1, ""); err != nil || len(todo) != 1 {
			t.Fatalf("to measure on another device: %d %v", len(todo), err)
		}
	})
}

// TestRequeueAbandoned: a resumed coordinator re-queues trials of dead
// local workers and lapsed leases, and leaves live workers' trials alone.
func TestRequeueAbandoned(t *testing.T) {
	eachStore(t, func(t *testing.T, d *DB) {
		s := newStudy(t, d, "rq")
		addPending(t, d, s.ID, 3)
		d.ClaimTrial(ctx, s.ID, "dead", time.Minute)
		d.ClaimTrial(ctx, s.ID, "alive", time.Minute)
		d.ClaimTrial(ctx, s.ID, "lapsed", time.Millisecond)
		time.Sleep(30 * time.Millisecond)
		ids, err := d.RequeueAbandoned(ctx, s.ID, func(w string) bool { return w == "dead" })
		if err != nil || len(ids) != 2 {
			t.Fatalf("requeued %v %v", ids, err)
		}
		if n, _ := d.CountTrials(ctx, s.ID); n.Pending != 2 || n.Running != 1 {
			t.Fatalf("counts %+v", n)
		}
	})
}

func TestWorkersRegistry(t *testing.T) {
	eachStore(t, func(t *testing.T, d *DB) {
		s := newStudy(t, d, "reg")
		for _, w := range []Worker{{ID: "a", Study: s.ID, Role: RoleTrain, Host: "h", PID: 1},
			{ID: "b", Study: s.ID, Role: RoleMeasure, Host: "board", PID: 2, DeviceFingerprint: "fp"}} {
			if err := d.WorkerSeen(ctx, w); err != nil {
				t.Fatal(err)
			}
		}
		d.WorkerSeen(ctx, Worker{ID: "a", Study: s.ID, Role: RoleTrain, Host: "h", PID: 1})
		ws, err := d.LiveWorkers(ctx, s.ID, RoleTrain, time.Minute)
		if err != nil || len(ws) != 1 || ws[0].ID != "a" || ws[0].SeenAgo < 0 || ws[0].SeenAgo > time.Minute {
			t.Fatalf("live trainers %+v %v", ws, err)
		}
		d.WorkerGone(ctx, "a")
		if ws, _ := d.LiveWorkers(ctx, s.ID, RoleTrain, time.Minute); len(ws) != 0 {
			t.Fatalf("after WorkerGone: %+v", ws)
		}
	})
}

// TestImportTwice: every direction between SQLite and PostgreSQL; the
// second import adds nothing, results measured on another device join,
// and a same-named study of another search is refused.
func TestImportTwice(t *testing.T) {
	for _, dir := range []struct{ from, to string }{{"sqlite", "postgres"}, {"postgres", "sqlite"}} {
		t.Run(dir.from+" into "+dir.to, func(t *testing.T) {
			open := func(kind string) *DB {
				if kind == "sqlite" {
					return newDB(t)
				}
				return newPG(t)
			}
			src, dst := open(dir.from), open(dir.to)
			dev := testDevice("Test CPU", "cpu", 2)
			board := testDevice("Board", "cpu", 4)
			s := newStudy(t, src, "a")
			a0 := addDone(t, src, s.ID, dev, 0.9, 100, 10*time.Microsecond)
			addDone(t, src, s.ID, dev, 0.8, 50, 5*time.Microsecond)
			addPending(t, src, s.ID, 1)
			src.SaveCheckpoint(ctx, s.ID, 2, []byte(`{}`))
			src.PutOpLatency(ctx, dev, "conv", time.Microsecond)
			st, err := dst.Import(ctx, src)
			want := ImportStats{Studies: 1, Trials: 2, Latencies: 2, Weights: 2, Devices: 1, OpLatencies: 1, Checkpoints: 1, Skipped: 1}
			if err != nil || st != want {
				t.Fatalf("first import %+v %v, want %+v", st, err, want)
			}
			st, err = dst.Import(ctx, src)
			if err != nil || st != (ImportStats{Skipped: 1}) {
				t.Fatalf("second import %+v %v: added rows", st, err)
			}
			// The board measured trial 0 in its copy (in interleaved rounds
			// beside a reference): only that latency joins, all of it.
			bl := roundsLat(board, 3*time.Microsecond, 30*time.Microsecond)
			if err := src.PutLatency(ctx, a0.ID, bl); err != nil {
				t.Fatal(err)
			}
			st, err = dst.Import(ctx, src)
			if err != nil || st != (ImportStats{Latencies: 1, Devices: 1, ReferenceFigures: 1, Skipped: 1}) {
				t.Fatalf("import of the board's latency %+v %v", st, err)
			}
			rs, err := dst.Best(ctx, Query{Device: "Board"})
			if err != nil || len(rs) != 1 || rs[0].Number != 0 {
				t.Fatalf("best on the board after import: %+v %v", rs, err)
			}
			if got := rs[0].Latency; !sameLatency(got, bl) {
				t.Fatalf("imported latency %+v, want %+v", got, bl)
			}
			if w, err := dst.TrialWeights(ctx, rs[0].TrialID); err != nil || string(w) != "weights" {
				t.Fatalf("imported weights %q %v", w, err)
			}
			if next, _ := dst.NextTrialNumber(ctx, rs[0].StudyIDOr(t, dst)); next != 3 {
				t.Fatalf("next trial number %d, want 3", next)
			}
			other := open(dir.from)
			o := newStudy(t, other, "b")
			other.write(ctx, func(tx *tx) error {
				_, err := tx.Exec(`UPDATE studies SET name = 'a', config = '{"seed":2}' WHERE id = ?`, o.ID)
				return err
			})
			if _, err := dst.Import(ctx, other); err == nil || !strings.Contains(err.Error(), "different configurations") {
				t.Fatalf("import of another search of the same name: %v", err)
			}
		})
	}
}

// StudyIDOr looks up the id of r's study in d (test helper).
func (r Result) StudyIDOr(t *testing.T, d *DB) int64 {
	s, err := d.GetStudy(ctx, r.Study)
	if err != nil {
		t.Fatal(err)
	}
	return s.ID
}

// TestPostgresRefusals: the migrations guard on PostgreSQL refuses another
// program's database and a newer schema before writing, read-only opens
// need a current hwnas schema and cannot write.
func TestPostgresRefusals(t *testing.T) {
	foreign := pgtest.NewDatabase(t)
	raw, err := sql.Open("pgx", foreign)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec(`CREATE TABLE notes (x TEXT)`); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(foreign); !errors.Is(err, ErrNotHwnas) {
		t.Fatalf("foreign database: %v", err)
	}
	if _, err := OpenReadOnly(foreign); !errors.Is(err, ErrNotHwnas) {
		t.Fatalf("foreign database read-only: %v", err)
	}
	empty := pgtest.NewDatabase(t)
	if _, err := OpenReadOnly(empty); !errors.Is(err, ErrNoDatabase) {
		t.Fatalf("empty database read-only: %v", err)
	}
	d, err := Open(empty)
	if err != nil {
		t.Fatal(err)
	}
	if _, v, err := d.SchemaInfo(); err != nil || v != SchemaVersion {
		t.Fatalf("schema version %d %v", v, err)
	}
	d.Close()
	ro, err := OpenReadOnly(empty)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ro.db.Exec(`DELETE FROM studies`); err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Fatalf("write through a read-only session: %v", err)
	}
	ro.Close()
	nd, _ := sql.Open("pgx", empty)
	defer nd.Close()
	if _, err := nd.Exec(`UPDATE hwnas_schema SET version = $1`, SchemaVersion+1); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(empty); !errors.Is(err, ErrNewerSchema) {
		t.Fatalf("newer schema: %v", err)
	}
	if _, err := OpenReadOnly(empty); !errors.Is(err, ErrNewerSchema) {
		t.Fatalf("newer schema read-only: %v", err)
	}
	if _, err := Open("postgres://postgres@/nosuchdb?host=" + filepath.Dir("/nonexistent/x")); err == nil {
		t.Fatal("opened a server that is not there")
	}
}

// TestMigrationKeepsLatencies: a version-1 database (SQLite and
// PostgreSQL) migrated to the current schema keeps its latencies, now of
// the runtime hwnas.
func TestMigrationKeepsLatencies(t *testing.T) {
	eachStore(t, func(t *testing.T, d *DB) {
		s := newStudy(t, d, "old")
		dev := testDevice("Test CPU", "cpu", 2)
		tr := addDone(t, d, s.ID, dev, 0.9, 100, 10*time.Microsecond)
		// Undo migrations 8, 7, 6, 5, 4, 3 and 2 by hand, as a version-1 database looked.
		var undo []string
		if d.Postgres() {
			undo = []string{`DROP TABLE sweep_runs`, `DROP TABLE reference_figures`, `ALTER TABLE metrics DROP COLUMN estimate`, `DROP INDEX latencies_by_reference`}
			for _, c := range []string{"probe_ns", "drift", "ops", "latency_ns", "ci_low_ns", "ci_high_ns", "rounds", "reference", "ref_ns", "ratio", "ratio_low", "ratio_high", "disturbed"} {
				undo = append(undo, `ALTER TABLE latencies DROP COLUMN `+c)
			}
			undo = append(undo, `ALTER TABLE studies DROP COLUMN data_info`, `DROP TABLE workers`, `ALTER TABLE trials DROP COLUMN stage`, `ALTER TABLE trials DROP COLUMN lease_until`,
				`ALTER TABLE latencies DROP CONSTRAINT latencies_pkey`, `ALTER TABLE latencies DROP COLUMN runtime`,
				`ALTER TABLE latencies ADD PRIMARY KEY (trial_id, device_fingerprint, batch)`,
				`CREATE INDEX latencies_by_device ON latencies (device_fingerprint, batch)`,
				`UPDATE hwnas_schema SET version = 1`)
		} else {
			v1 := migrations[0].sqlite
			create := v1[strings.Index(v1, "CREATE TABLE latencies ("):]
			create = create[:strings.Index(create, ");")+2]
			undo = []string{`DROP TABLE sweep_runs`, `DROP TABLE reference_figures`, `ALTER TABLE metrics DROP COLUMN estimate`, `ALTER TABLE studies DROP COLUMN data_info`, `DROP TABLE workers`, `ALTER TABLE trials DROP COLUMN stage`, `ALTER TABLE trials DROP COLUMN lease_until`,
				strings.Replace(create, "latencies", "latencies1", 1),
				`INSERT INTO latencies1 SELECT trial_id, device_fingerprint, batch, median_ns, p90_ns, mad_ns, mean_ns, min_ns, max_ns,
					runs, outliers, predicted_ns, measured_at FROM latencies`,
				`DROP TABLE latencies`, `ALTER TABLE latencies1 RENAME TO latencies`,
				`CREATE INDEX latencies_by_device ON latencies (device_fingerprint, batch)`, `PRAGMA user_version = 1`}
		}
		for _, q := range undo {
			if _, err := d.db.Exec(q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		if err := d.migrateAgain(); err != nil {
			t.Fatal(err)
		}
		got, err := d.GetTrial(ctx, tr.ID)
		if err != nil || len(got.Latencies) != 1 || got.Latencies[0].Runtime != RuntimeHwnas || got.Latencies[0].Stats.Median != 10*time.Microsecond ||
			got.Latencies[0].Stats.Latency != 10*time.Microsecond || got.Latencies[0].Ratio != nil || got.Latencies[0].Stats.Rounds != 0 ||
			got.Latencies[0].Probe != 0 || got.Latencies[0].Drift != 1 {
			t.Fatalf("after migration: %+v %v", got.Latencies, err)
		}
	})
}

func (d *DB) migrateAgain() error {
	if d.Postgres() {
		return d.migratePostgres()
	}
	return d.migrate()
}
