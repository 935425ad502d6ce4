// Package store keeps hwnas's studies, trials, metrics, latencies per
// device, per-op latency tables, controller checkpoints and trained weights
// in SQLite (github.com/mattn/go-sqlite3).
//
// One process writes (the search coordinator, through Open); any number of
// others read at the same time (the query commands, through OpenReadOnly).
// The database runs in WAL mode, so readers see the last committed state
// and never wait for the writer. Every change a trial makes on finishing is
// one transaction, so a process killed at any moment leaves the database
// consistent, and RequeueRunning re-runs what was in flight.
//
// The schema is versioned (PRAGMA user_version) and marked as hwnas's
// (PRAGMA application_id = ApplicationID): a foreign SQLite file or a
// database from a newer hwnas is refused before anything is written.
package store
