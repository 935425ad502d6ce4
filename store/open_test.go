package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestOpenMigratesAndReopens(t *testing.T) {
	for _, empty := range []bool{false, true} {
		path := filepath.Join(t.TempDir(), "h.db")
		if empty { // a zero-byte file, as `touch` makes, is initialised too
			os.WriteFile(path, nil, 0o644)
		}
		d, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		app, ver, err := d.SchemaInfo()
		if err != nil || app != ApplicationID || ver != SchemaVersion {
			t.Fatalf("SchemaInfo = %#x, %d, %v; want %#x, %d", app, ver, err, ApplicationID, SchemaVersion)
		}
		var mode string
		d.db.QueryRow("PRAGMA journal_mode").Scan(&mode)
		var fk, busy int
		d.db.QueryRow("PRAGMA foreign_keys").Scan(&fk)
		d.db.QueryRow("PRAGMA busy_timeout").Scan(&busy)
		if mode != "wal" || fk != 1 || busy != int(BusyTimeout.Milliseconds()) {
			t.Errorf("journal_mode %q foreign_keys %d busy_timeout %d", mode, fk, busy)
		}
		if _, err := d.CreateStudy(ctx, Study{Name: "keep"}); err != nil {
			t.Fatal(err)
		}
		d.Close()

		for _, open := range []func(string) (*DB, error){Open, OpenReadOnly} {
			d, err := open(path)
			if err != nil {
				t.Fatal(err)
			}
			if s, err := d.GetStudy(ctx, "keep"); err != nil || s.Name != "keep" {
				t.Fatalf("after reopen: %+v, %v", s, err)
			}
			if _, ver, _ := d.SchemaInfo(); ver != SchemaVersion {
				t.Fatalf("version %d after reopen", ver)
			}
			d.Close()
		}
	}
}

func TestForeignKeysEnforced(t *testing.T) {
	d := newDB(t)
	if _, err := d.AddTrial(ctx, 999, TrialSpec{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("trial of missing study: err = %v", err)
	}
	_, err := d.db.Exec(`INSERT INTO trials (study_id, number, created_at) VALUES (999, 0, 'x')`)
	if err == nil || !strings.Contains(err.Error(), "FOREIGN KEY") {
		t.Fatalf("raw insert of an orphan trial: err = %v", err)
	}
}

// snapshot returns the bytes of every file beside path that SQLite could
// touch (the database, -wal, -shm, -journal), so a test can show that a
// refused open wrote nothing.
func snapshot(t *testing.T, path string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
		if b, err := os.ReadFile(path + suffix); err == nil {
			out[suffix] = b
		}
	}
	return out
}

// rawSQLite runs statements on path with a plain rollback-journal
// connection, as another program would.
func rawSQLite(t *testing.T, path string, stmts ...string) {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func TestRefusesForeignAndNewerDatabases(t *testing.T) {
	dir := t.TempDir()
	foreign := filepath.Join(dir, "foreign.db")
	rawSQLite(t, foreign, "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)", "INSERT INTO notes (body) VALUES ('hello')")
	otherApp := filepath.Join(dir, "otherapp.db")
	rawSQLite(t, otherApp, "PRAGMA application_id = 1234")
	text := filepath.Join(dir, "notes.txt")
	os.WriteFile(text, []byte("this is not a database, it is a text file\n"), 0o644)
	newer := filepath.Join(dir, "newer.db")
	d, err := Open(newer)
	if err != nil {
		t.Fatal(err)
	}
	d.CreateStudy(ctx, Study{Name: "from the future"})
	d.Close()
	rawSQLite(t, newer, "PRAGMA journal_mode = DELETE", "PRAGMA user_version = 99")
	// The same, left in WAL mode as hwnas leaves its databases: reading
	// the header must not create -wal or -shm files either.
	newerWAL := filepath.Join(dir, "newer-wal.db")
	if d, err = Open(newerWAL); err != nil {
		t.Fatal(err)
	}
	d.Close()
	rawSQLite(t, newerWAL, fmt.Sprintf("PRAGMA user_version = %d", SchemaVersion+1))

	tests := []struct {
		path   string
		want   error
		errHas string
	}{
		{foreign, ErrNotHwnas, "with 1 schema objects and no hwnas application id"},
		{otherApp, ErrNotHwnas, "application id 0x000004d2"},
		{text, ErrNotHwnas, "not an SQLite file"},
		{newer, ErrNewerSchema, "schema version 99"},
		{newerWAL, ErrNewerSchema, fmt.Sprintf("schema version %d", SchemaVersion+1)},
	}
	for _, tc := range tests {
		for name, open := range map[string]func(string) (*DB, error){"Open": Open, "OpenReadOnly": OpenReadOnly} {
			before := snapshot(t, tc.path)
			d, err := open(tc.path)
			if err == nil {
				d.Close()
			}
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.errHas) || !strings.Contains(err.Error(), tc.path) {
				t.Errorf("%s(%s): err = %v, want %v containing %q", name, filepath.Base(tc.path), err, tc.want, tc.errHas)
			}
			if after := snapshot(t, tc.path); !maps.EqualFunc(before, after, bytes.Equal) {
				t.Errorf("%s(%s) changed the files (%d before, %d after)", name, filepath.Base(tc.path), len(before), len(after))
			}
		}
	}
}

func TestReadOnly(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.db")
	if _, err := OpenReadOnly(missing); !errors.Is(err, ErrNoDatabase) {
		t.Fatalf("missing: err = %v", err)
	}
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("OpenReadOnly created %s", missing)
	}
	empty := filepath.Join(dir, "empty.db")
	rawSQLite(t, empty, "PRAGMA user_version = 0")
	if _, err := OpenReadOnly(empty); !errors.Is(err, ErrNotHwnas) {
		t.Fatalf("empty SQLite: err = %v", err)
	}

	path := filepath.Join(dir, "h.db")
	w, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := w.CreateStudy(ctx, Study{Name: "s"})
	r, err := OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.CreateStudy(ctx, Study{Name: "t"}); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("CreateStudy on read-only: err = %v", err)
	}
	if _, err := r.db.Exec(`DELETE FROM studies`); err == nil || !strings.Contains(err.Error(), "readonly") {
		t.Fatalf("raw write through mode=ro: err = %v", err)
	}
	// The reader sees what the writer commits later.
	w.AddTrial(ctx, s.ID, TrialSpec{})
	if ts, err := r.ListTrials(ctx, s.ID, TrialFilter{}); err != nil || len(ts) != 1 {
		t.Fatalf("reader sees %d trials, %v", len(ts), err)
	}
	w.Close()
	// After the writer closed (WAL checkpointed and removed), a reader
	// still opens.
	r2, err := OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	if ss, err := r2.ListStudies(ctx); err != nil || len(ss) != 1 || ss[0].Pending != 1 {
		t.Fatalf("ListStudies after writer closed: %+v, %v", ss, err)
	}
	r2.Close()
}

// TestMigratesVersion1Studies: a database of schema version 1 (before
// trial leases and the data set record) opens for writing, gains
// studies.data_info with '{}' for its studies, and new studies keep their
// record.
func TestMigratesVersion1Studies(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v1.db")
	rawSQLite(t, path, migrations[0].sqlite,
		fmt.Sprintf("PRAGMA application_id = %d", ApplicationID), "PRAGMA user_version = 1",
		`INSERT INTO studies (name, dataset, device_spec, device_name, device_fingerprint, strategy, created_at, updated_at)
		 VALUES ('old', 'data/mnist', 'cpu', 'x', 'fp', 'rl', '2026-01-01T00:00:00.000000000Z', '2026-01-01T00:00:00.000000000Z')`)
	if _, err := OpenReadOnly(path); !errors.Is(err, ErrOlderSchema) {
		t.Fatalf("read-only open of version 1: %v", err)
	}
	d, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx := context.Background()
	old, err := d.GetStudy(ctx, "old")
	if err != nil || string(old.DataInfo) != "{}" {
		t.Fatalf("old study: %v, data info %s", err, old.DataInfo)
	}
	info := `{"dir":"data/fashion","format":"idx","shape":[1,28,28]}`
	if _, err := d.CreateStudy(ctx, Study{Name: "new", Dataset: "data/fashion", DeviceSpec: "cpu", DataInfo: []byte(info)}); err != nil {
		t.Fatal(err)
	}
	got, _ := d.GetStudy(ctx, "new")
	all, _ := d.ListStudies(ctx)
	if string(got.DataInfo) != info || len(all) != 2 || string(all[1].DataInfo) != info {
		t.Fatalf("data info %s, listed %d", got.DataInfo, len(all))
	}
	if _, err := d.CreateStudy(ctx, Study{Name: "bad", DataInfo: []byte("{")}); err == nil {
		t.Fatal("malformed data info accepted")
	}
}
