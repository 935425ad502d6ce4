package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// dialect is the SQL the database speaks. Queries are written once, in
// the common subset of SQLite and PostgreSQL, with ? or ?N placeholders;
// rebind turns them into $N for PostgreSQL. What differs (the schema's
// types, the version record, row locks, the clock) is chosen here.
type dialect int

const (
	sqliteSQL dialect = iota
	postgresSQL
)

// IsURL reports whether a --db value names a PostgreSQL server
// (postgres:// or postgresql://) rather than an SQLite file.
func IsURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// Postgres reports whether d is a PostgreSQL database.
func (d *DB) Postgres() bool { return d.dialect == postgresSQL }

var rebound sync.Map // query text → PostgreSQL text

// rebind rewrites ? and ?N placeholders as $N for PostgreSQL. The queries
// of this package hold no ? inside string literals.
func (d *DB) rebind(q string) string {
	if d.dialect != postgresSQL {
		return q
	}
	if v, ok := rebound.Load(q); ok {
		return v.(string)
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] != '?' {
			b.WriteByte(q[i])
			continue
		}
		j := i + 1
		for j < len(q) && q[j] >= '0' && q[j] <= '9' {
			j++
		}
		if j > i+1 {
			b.WriteString("$" + q[i+1:j])
			i = j - 1
			continue
		}
		n++
		b.WriteString("$" + strconv.Itoa(n))
	}
	rebound.Store(q, b.String())
	return b.String()
}

// nowNS is an SQL expression for the database's clock in nanoseconds
// since 1970: leases are taken and compared on the server's clock, so the
// machines of a study need not agree on the time.
func (d *DB) nowNS() string {
	if d.dialect == postgresSQL {
		return `CAST(extract(epoch FROM clock_timestamp()) * 1000000000 AS BIGINT)`
	}
	return `CAST((julianday('now') - 2440587.5) * 86400000000000.0 AS INTEGER)`
}

// forUpdate locks the rows a write transaction reads before changing them
// (PostgreSQL; SQLite's write transaction already holds the database lock).
func (d *DB) forUpdate() string {
	if d.dialect == postgresSQL {
		return " FOR UPDATE"
	}
	return ""
}

func (d *DB) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return d.db.QueryContext(ctx, d.rebind(q), args...)
}

func (d *DB) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	return d.db.QueryRowContext(ctx, d.rebind(q), args...)
}

// tx is a write transaction that rebinds its queries.
type tx struct {
	*sql.Tx
	d *DB
}

func (t *tx) Exec(q string, args ...any) (sql.Result, error) {
	return t.Tx.Exec(t.d.rebind(q), args...)
}
func (t *tx) Query(q string, args ...any) (*sql.Rows, error) {
	return t.Tx.Query(t.d.rebind(q), args...)
}
func (t *tx) QueryRow(q string, args ...any) *sql.Row { return t.Tx.QueryRow(t.d.rebind(q), args...) }

// pgLockKey is the advisory lock migrations of a PostgreSQL database hold,
// so two processes opening it at once cannot both migrate.
const pgLockKey = ApplicationID

// openPostgres connects to the server at rawURL. readOnly sessions run
// with default_transaction_read_only, so a query command cannot write even
// by mistake.
func openPostgres(rawURL string, readOnly bool) (*DB, error) {
	shown := redact(rawURL)
	cfg, err := pgx.ParseConfig(rawURL)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", shown, err)
	}
	if readOnly {
		cfg.RuntimeParams["default_transaction_read_only"] = "on"
	}
	cfg.RuntimeParams["application_name"] = "hwnas"
	sdb := stdlib.OpenDB(*cfg)
	sdb.SetMaxOpenConns(8)
	d := &DB{db: sdb, path: shown, readOnly: readOnly, dialect: postgresSQL}
	if err := sdb.PingContext(context.Background()); err != nil {
		sdb.Close()
		return nil, fmt.Errorf("%s: %w", shown, err)
	}
	return d, nil
}

// redact hides the password of a database URL in messages.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "postgres://…"
	}
	return u.Redacted()
}

// pgState reads the version record of a PostgreSQL database: empty (no
// tables in its schema: a writer may initialise it), an hwnas database
// (its version), or a database of another program (ErrNotHwnas).
func pgState(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, shown string) (fileState, error) {
	var meta sql.NullString
	var tables int
	if err := q.QueryRowContext(ctx, `SELECT to_regclass('hwnas_schema')::text,
		(SELECT count(*) FROM pg_tables WHERE schemaname = current_schema())`).Scan(&meta, &tables); err != nil {
		return fileState{}, fmt.Errorf("%s: reading the schema: %w", shown, err)
	}
	if !meta.Valid {
		if tables > 0 {
			return fileState{}, fmt.Errorf("%s: %w (%d tables and no hwnas_schema record)", shown, ErrNotHwnas, tables)
		}
		return fileState{present: true}, nil
	}
	st := fileState{present: true, exists: true}
	err := q.QueryRowContext(ctx, `SELECT application_id, version FROM hwnas_schema`).Scan(&st.appID, &st.version)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && st.appID != ApplicationID) {
		return fileState{}, fmt.Errorf("%s: %w (hwnas_schema holds no hwnas record)", shown, ErrNotHwnas)
	}
	if err != nil {
		return fileState{}, fmt.Errorf("%s: reading hwnas_schema: %w", shown, err)
	}
	return st, nil
}

// sqlTx lets pgState run inside a transaction.
type sqlTx struct{ *sql.Tx }

func (t sqlTx) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	return t.Tx.QueryRowContext(ctx, q, args...)
}

// migratePostgres applies the pending migrations in one transaction that
// holds the migration advisory lock (DDL is transactional in PostgreSQL:
// a failed step leaves the database as it was).
func (d *DB) migratePostgres() error {
	ctx := context.Background()
	t, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s: begin: %w", d.path, err)
	}
	defer t.Rollback()
	if _, err := t.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, pgLockKey); err != nil {
		return fmt.Errorf("%s: %w", d.path, err)
	}
	st, err := pgState(ctx, sqlTx{t}, d.path)
	if err != nil {
		return err
	}
	if st.version > SchemaVersion {
		return fmt.Errorf("%s: %w (schema version %d, this hwnas knows up to %d)", d.path, ErrNewerSchema, st.version, SchemaVersion)
	}
	if st.exists && st.version == SchemaVersion {
		return nil
	}
	if !st.exists {
		if _, err := t.ExecContext(ctx, `CREATE TABLE hwnas_schema (application_id BIGINT NOT NULL, version INTEGER NOT NULL);
			INSERT INTO hwnas_schema VALUES (`+strconv.Itoa(ApplicationID)+`, 0)`); err != nil {
			return fmt.Errorf("%s: %w", d.path, err)
		}
	}
	for v := st.version; v < SchemaVersion; v++ {
		if _, err := t.ExecContext(ctx, migrations[v].postgres); err != nil {
			return fmt.Errorf("%s: migration %d: %w", d.path, v+1, err)
		}
	}
	if _, err := t.ExecContext(ctx, `UPDATE hwnas_schema SET version = $1`, SchemaVersion); err != nil {
		return err
	}
	return t.Commit()
}

// openURL opens a PostgreSQL database for writing (migrating it) or
// read-only (requiring the current schema), with the same refusals as the
// SQLite file: another program's database, a newer schema.
func openURL(rawURL string, readOnly bool) (*DB, error) {
	d, err := openPostgres(rawURL, readOnly)
	if err != nil {
		return nil, err
	}
	if !readOnly {
		if err := d.migratePostgres(); err != nil {
			d.Close()
			return nil, err
		}
		return d, nil
	}
	st, err := pgState(context.Background(), d.db, d.path)
	if err == nil {
		switch {
		case !st.exists:
			err = fmt.Errorf("%s: %w (an empty database: a search creates the schema)", d.path, ErrNoDatabase)
		case st.version > SchemaVersion:
			err = fmt.Errorf("%s: %w (schema version %d, this hwnas knows up to %d)", d.path, ErrNewerSchema, st.version, SchemaVersion)
		case st.version < SchemaVersion:
			err = fmt.Errorf("%s: %w (schema version %d, current %d)", d.path, ErrOlderSchema, st.version, SchemaVersion)
		}
	}
	if err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}
