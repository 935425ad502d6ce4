package store

// ApplicationID is written to PRAGMA application_id of every hwnas database
// ("hwNS" in ASCII), so that a foreign SQLite file is recognised and refused
// before anything is written to it.
const ApplicationID = 0x68774e53

// migrations[i] takes the schema from version i to i+1; PRAGMA user_version
// holds the number applied. Append only: a released migration never
// changes, so a database records exactly which steps built it.
var migrations = []string{
	// 1: the initial schema. Times are UTC text of fixed width
	// (timeFormat), so they sort as strings; durations are nanoseconds.
	`
CREATE TABLE studies (
	id                 INTEGER PRIMARY KEY,
	name               TEXT NOT NULL UNIQUE CHECK (name <> ''),
	dataset            TEXT NOT NULL,
	device_spec        TEXT NOT NULL,
	device_name        TEXT NOT NULL,
	device_fingerprint TEXT NOT NULL,
	strategy           TEXT NOT NULL,
	config             TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(config)),
	status             TEXT NOT NULL DEFAULT 'running'
	                   CHECK (status IN ('running', 'done', 'stopped', 'failed')),
	next_trial         INTEGER NOT NULL DEFAULT 0, -- trial numbers are never reused
	created_at         TEXT NOT NULL,
	updated_at         TEXT NOT NULL
);

CREATE TABLE trials (
	id          INTEGER PRIMARY KEY,
	study_id    INTEGER NOT NULL REFERENCES studies(id) ON DELETE CASCADE,
	number      INTEGER NOT NULL,
	decisions   TEXT NOT NULL DEFAULT 'null' CHECK (json_valid(decisions)),
	arch        TEXT NOT NULL DEFAULT 'null' CHECK (json_valid(arch)),
	recipe      TEXT NOT NULL DEFAULT 'null' CHECK (json_valid(recipe)),
	status      TEXT NOT NULL DEFAULT 'pending'
	            CHECK (status IN ('pending', 'running', 'done', 'failed')),
	worker      TEXT NOT NULL DEFAULT '',
	attempts    INTEGER NOT NULL DEFAULT 0,
	created_at  TEXT NOT NULL,
	started_at  TEXT,
	finished_at TEXT,
	error       TEXT NOT NULL DEFAULT '',
	UNIQUE (study_id, number)
);
CREATE INDEX trials_by_status ON trials (study_id, status);

CREATE TABLE metrics (
	trial_id         INTEGER PRIMARY KEY REFERENCES trials(id) ON DELETE CASCADE,
	val_accuracy     REAL NOT NULL,
	test_accuracy    REAL,            -- NULL until measured for a final report
	params           INTEGER NOT NULL,
	compressed_bytes INTEGER NOT NULL,
	macs             INTEGER NOT NULL,
	train_seconds    REAL NOT NULL,
	reward           REAL NOT NULL
);

CREATE TABLE devices (
	fingerprint TEXT PRIMARY KEY,
	name        TEXT NOT NULL,
	backend     TEXT NOT NULL,
	description TEXT NOT NULL CHECK (json_valid(description)), -- accel.Device as JSON
	first_seen  TEXT NOT NULL
);

CREATE TABLE latencies (
	trial_id           INTEGER NOT NULL REFERENCES trials(id) ON DELETE CASCADE,
	device_fingerprint TEXT NOT NULL REFERENCES devices(fingerprint),
	batch              INTEGER NOT NULL CHECK (batch > 0),
	median_ns          INTEGER NOT NULL,
	p90_ns             INTEGER NOT NULL,
	mad_ns             INTEGER NOT NULL,
	mean_ns            INTEGER NOT NULL,
	min_ns             INTEGER NOT NULL,
	max_ns             INTEGER NOT NULL,
	runs               INTEGER NOT NULL,
	outliers           INTEGER NOT NULL,
	predicted_ns       INTEGER,          -- per-op table prediction; NULL when none
	measured_at        TEXT NOT NULL,
	PRIMARY KEY (trial_id, device_fingerprint, batch)
);
CREATE INDEX latencies_by_device ON latencies (device_fingerprint, batch);

CREATE TABLE op_latencies (
	device_fingerprint TEXT NOT NULL REFERENCES devices(fingerprint),
	signature          TEXT NOT NULL,
	median_ns          INTEGER NOT NULL,
	updated_at         TEXT NOT NULL,
	PRIMARY KEY (device_fingerprint, signature)
);

CREATE TABLE checkpoints (
	study_id   INTEGER NOT NULL REFERENCES studies(id) ON DELETE CASCADE,
	step       INTEGER NOT NULL,
	blob       BLOB NOT NULL,
	created_at TEXT NOT NULL,
	PRIMARY KEY (study_id, step)
);

CREATE TABLE weights (
	trial_id INTEGER PRIMARY KEY REFERENCES trials(id) ON DELETE CASCADE,
	blob     BLOB NOT NULL,
	sha256   TEXT NOT NULL
);
`,
}

// SchemaVersion is the schema version this build writes and reads.
var SchemaVersion = len(migrations)
