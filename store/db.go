package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	_ "github.com/mattn/go-sqlite3" // registers the "sqlite3" driver
)

// Errors callers tell apart with errors.Is.
var (
	// ErrNoDatabase: OpenReadOnly was given a path where no file exists
	// (reads never create one).
	ErrNoDatabase = errors.New("database does not exist")
	// ErrNotHwnas: the file is not SQLite, or is an SQLite database some
	// other program made. Nothing was written to it.
	ErrNotHwnas = errors.New("not an hwnas database")
	// ErrNewerSchema: the database was written by a newer hwnas. Nothing
	// was written to it.
	ErrNewerSchema = errors.New("database schema is newer than this hwnas understands")
	// ErrOlderSchema: a read-only open found a schema a writer must first
	// migrate.
	ErrOlderSchema = errors.New("database schema is older than this hwnas; open it for writing once to migrate")
	// ErrNotFound: no study, trial, checkpoint or weights by that key.
	ErrNotFound = errors.New("not found")
	// ErrReadOnly: a write through a database opened with OpenReadOnly.
	ErrReadOnly = errors.New("database opened read-only")
)

// BusyTimeout is how long a connection waits for a lock before SQLite
// reports SQLITE_BUSY. In WAL mode readers never wait for the writer; the
// timeout covers the brief exclusive moments (recovery, checkpoints).
const BusyTimeout = 10 * time.Second

// DB is an hwnas database. Only the search coordinator opens it for
// writing (Open); every query command opens it read-only (OpenReadOnly), so
// any number of readers in other processes run while a search writes. A DB
// is safe for concurrent use by goroutines.
type DB struct {
	db       *sql.DB
	path     string // the file, or the server URL without its password
	readOnly bool
	dialect  dialect
}

// Path returns the file the DB was opened from, or for PostgreSQL its URL
// without the password.
func (d *DB) Path() string { return d.path }

// ReadOnly reports whether d was opened with OpenReadOnly.
func (d *DB) ReadOnly() bool { return d.readOnly }

// Close closes the database; the last writer to close checkpoints the WAL
// into the main file.
func (d *DB) Close() error { return d.db.Close() }

// Open opens the database at path for writing, creating it when absent,
// and applies any pending migrations in one transaction. A file that is
// not an hwnas database (wrong SQLite application_id, or not SQLite at
// all), or whose schema is newer than SchemaVersion, is refused before a
// single byte of it is written. The connection runs in WAL mode with
// foreign keys on, synchronous=NORMAL (a killed process loses nothing that
// committed; a power cut may lose the last transactions), and write
// transactions that take the write lock when they begin.
//
// A postgres:// URL (IsURL) opens a PostgreSQL database instead, with the
// same schema, migrations and refusals; its version record is the table
// hwnas_schema and migrations run under an advisory lock.
func Open(path string) (*DB, error) {
	if path == "" {
		return nil, errors.New("store: empty database path")
	}
	if IsURL(path) {
		return openURL(path, false)
	}
	st, err := inspect(path)
	if err != nil {
		return nil, err
	}
	if st.exists && st.version > SchemaVersion {
		return nil, fmt.Errorf("%s: %w (schema version %d, this hwnas knows up to %d)", path, ErrNewerSchema, st.version, SchemaVersion)
	}
	sdb, err := sql.Open("sqlite3", dsn(path, "_journal_mode=WAL", "_synchronous=NORMAL", "_txlock=immediate"))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	sdb.SetMaxOpenConns(4)
	d := &DB{db: sdb, path: path}
	if err := d.migrate(); err != nil {
		sdb.Close()
		return nil, err
	}
	return d, nil
}

// OpenReadOnly opens an existing hwnas database for queries only
// (SQLite mode=ro): it never creates the file, never migrates, and never
// takes the write lock, so it does not disturb a search writing in another
// process.
//
// A postgres:// URL opens a session whose transactions are read-only.
func OpenReadOnly(path string) (*DB, error) {
	if path == "" {
		return nil, errors.New("store: empty database path")
	}
	if IsURL(path) {
		return openURL(path, true)
	}
	st, err := inspect(path)
	if err != nil {
		return nil, err
	}
	switch {
	case !st.present:
		return nil, fmt.Errorf("%s: %w (a search creates it: hwnas search --db %s ...)", path, ErrNoDatabase, path)
	case !st.exists:
		return nil, fmt.Errorf("%s: %w (an empty database)", path, ErrNotHwnas)
	case st.version > SchemaVersion:
		return nil, fmt.Errorf("%s: %w (schema version %d, this hwnas knows up to %d)", path, ErrNewerSchema, st.version, SchemaVersion)
	case st.version < SchemaVersion:
		return nil, fmt.Errorf("%s: %w (schema version %d, current %d)", path, ErrOlderSchema, st.version, SchemaVersion)
	}
	sdb, err := sql.Open("sqlite3", dsn(path, "mode=ro"))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	sdb.SetMaxOpenConns(4)
	return &DB{db: sdb, path: path, readOnly: true}, nil
}

// dsn builds the go-sqlite3 URI for path with the options every connection
// gets (busy timeout, foreign keys) plus extra.
func dsn(path string, extra ...string) string {
	esc := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
	opts := append([]string{fmt.Sprintf("_busy_timeout=%d", BusyTimeout.Milliseconds()), "_foreign_keys=on"}, extra...)
	return "file:" + esc + "?" + strings.Join(opts, "&")
}

// fileState is what inspect found at a path.
type fileState struct {
	present bool // a file is there
	exists  bool // and it is an hwnas database (not empty)
	appID   int64
	version int
}

var sqliteMagic = []byte("SQLite format 3\x00")

// inspect classifies the file at path without writing to it: absent or
// empty (exists false: a writer may initialise it), an hwnas database (its
// schema version), or anything else (ErrNotHwnas). The header is read
// through SQLite in read-only mode because in WAL mode the newest
// application_id and user_version may still sit in the -wal file.
func inspect(path string) (fileState, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return fileState{}, nil
	}
	if err != nil {
		return fileState{}, err
	}
	if fi.IsDir() {
		return fileState{}, fmt.Errorf("%s is a folder, not a database file", path)
	}
	if fi.Size() == 0 {
		return fileState{present: true}, nil // SQLite treats an empty file as an empty database
	}
	f, err := os.Open(path)
	if err != nil {
		return fileState{}, err
	}
	head := make([]byte, len(sqliteMagic))
	_, err = io.ReadFull(f, head)
	f.Close()
	if err != nil || !bytes.Equal(head, sqliteMagic) {
		return fileState{}, fmt.Errorf("%s: %w (not an SQLite file)", path, ErrNotHwnas)
	}
	// With no WAL content beside it, the main file holds the newest
	// header and SQLite can read it as immutable, which creates no -wal or
	// -shm file (a plain read-only open of a WAL-mode database would).
	mode := []string{"mode=ro"}
	if wal, err := os.Stat(path + "-wal"); err != nil || wal.Size() == 0 {
		mode = append(mode, "immutable=1")
	}
	sdb, err := sql.Open("sqlite3", dsn(path, mode...))
	if err != nil {
		return fileState{}, err
	}
	defer sdb.Close()
	st := fileState{present: true}
	var objects int
	err = sdb.QueryRow(`SELECT (SELECT application_id FROM pragma_application_id),
		(SELECT user_version FROM pragma_user_version),
		(SELECT count(*) FROM sqlite_schema)`).Scan(&st.appID, &st.version, &objects)
	if err != nil {
		return fileState{}, fmt.Errorf("%s: reading the database header: %w", path, err)
	}
	switch {
	case st.appID == ApplicationID:
		st.exists = true
		return st, nil
	case st.appID == 0 && st.version == 0 && objects == 0:
		return fileState{present: true}, nil // an empty SQLite database: a writer may initialise it
	case st.appID == 0:
		return fileState{}, fmt.Errorf("%s: %w (an SQLite database with %d schema objects and no hwnas application id)", path, ErrNotHwnas, objects)
	default:
		return fileState{}, fmt.Errorf("%s: %w (SQLite application id 0x%08x, hwnas uses 0x%08x)", path, ErrNotHwnas, st.appID, ApplicationID)
	}
}

// migrate applies the pending migrations in one write transaction, checking
// the header again under the write lock so two writers cannot both migrate.
func (d *DB) migrate() error {
	return d.write(context.Background(), func(tx *tx) error {
		var appID int64
		var version, objects int
		err := tx.QueryRow(`SELECT (SELECT application_id FROM pragma_application_id),
			(SELECT user_version FROM pragma_user_version),
			(SELECT count(*) FROM sqlite_schema)`).Scan(&appID, &version, &objects)
		if err != nil {
			return err
		}
		if appID != ApplicationID && (appID != 0 || version != 0 || objects != 0) {
			return fmt.Errorf("%s: %w", d.path, ErrNotHwnas)
		}
		if version > SchemaVersion {
			return fmt.Errorf("%s: %w (schema version %d, this hwnas knows up to %d)", d.path, ErrNewerSchema, version, SchemaVersion)
		}
		for v := version; v < SchemaVersion; v++ {
			if _, err := tx.Tx.Exec(migrations[v].sqlite); err != nil {
				return fmt.Errorf("%s: migration %d: %w", d.path, v+1, err)
			}
		}
		if version == SchemaVersion && appID == ApplicationID {
			return nil
		}
		_, err = tx.Exec(fmt.Sprintf("PRAGMA application_id = %d; PRAGMA user_version = %d", ApplicationID, SchemaVersion))
		return err
	})
}

// write runs fn in one write transaction (BEGIN IMMEDIATE), committing when
// fn returns nil and rolling back otherwise.
func (d *DB) write(ctx context.Context, fn func(*tx) error) error {
	if d.readOnly {
		return fmt.Errorf("%s: %w", d.path, ErrReadOnly)
	}
	st, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s: begin: %w", d.path, err)
	}
	if err := fn(&tx{st, d}); err != nil {
		st.Rollback()
		return err
	}
	if err := st.Commit(); err != nil {
		return fmt.Errorf("%s: commit: %w", d.path, err)
	}
	return nil
}

// SchemaInfo returns the database's application id and schema version.
func (d *DB) SchemaInfo() (appID int64, version int, err error) {
	if d.Postgres() {
		err = d.db.QueryRow(`SELECT application_id, version FROM hwnas_schema`).Scan(&appID, &version)
		return appID, version, err
	}
	err = d.db.QueryRow(`SELECT (SELECT application_id FROM pragma_application_id),
		(SELECT user_version FROM pragma_user_version)`).Scan(&appID, &version)
	return appID, version, err
}

// IntegrityCheck runs PRAGMA integrity_check and PRAGMA foreign_key_check
// and returns nil when both find nothing wrong. PostgreSQL enforces its
// constraints on every write; there the check is that the server answers.
func (d *DB) IntegrityCheck() error {
	if d.Postgres() {
		return d.db.QueryRow(`SELECT 1`).Scan(new(int))
	}
	rows, err := d.db.Query("PRAGMA integrity_check")
	if err != nil {
		return err
	}
	var problems []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			rows.Close()
			return err
		}
		if s != "ok" {
			problems = append(problems, s)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	var fk int
	if err := d.db.QueryRow("SELECT count(*) FROM pragma_foreign_key_check").Scan(&fk); err != nil {
		return err
	}
	if fk > 0 {
		problems = append(problems, fmt.Sprintf("%d rows violate foreign keys", fk))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s: integrity check failed: %s", d.path, strings.Join(problems, "; "))
	}
	return nil
}

// timeFormat is fixed-width UTC so stored times sort as text.
const timeFormat = "2006-01-02T15:04:05.000000000Z"

func fmtTime(t time.Time) string { return t.UTC().Format(timeFormat) }

// now is the clock (a variable so tests can fix it).
var now = time.Now

func parseTime(s sql.NullString) time.Time {
	if !s.Valid {
		return time.Time{}
	}
	t, _ := time.Parse(timeFormat, s.String)
	return t
}
