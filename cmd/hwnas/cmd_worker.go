package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"time"

	"github.com/spf13/cobra"

	"hwnas/internal/atomicfile"
	"hwnas/search"
	"hwnas/store"
)

type workerOptions struct {
	Out            string
	DB, Study      string
	Workers        int
	Lease          time.Duration
	TrialTimeout   time.Duration
	TrialMemory    int64
	NoPin, NoQuiet bool
	Quiet          string
	worker         []string // the trial process command (tests)
	workerEnv      []string
	stderr         io.Writer
}

func init() {
	opts := workerOptions{}
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Run a study's trials on this machine (with --db), or evaluate one trial spec",
		Long: `worker --db DB --study S joins a study from any machine: it claims the
study's pending trials one by one (PostgreSQL: FOR UPDATE SKIP LOCKED, so any
number of workers on any number of machines never take the same trial), trains,
compresses, evaluates and measures each in a child process, and records the
result. A claimed trial holds a lease that heartbeats renew; a worker that dies
loses it after --lease and another worker runs the trial again. It waits for a
study that does not exist yet and exits when the study is no longer running and
nothing is left to claim. --workers N runs N trials at once, pinned to distinct
cores where the machine has them, measuring one at a time while the others
are stopped (the quiet slot).

Without --db, worker reads one trial spec (JSON) on stdin, evaluates it and
prints the result (JSON) on stdout: the child process hwnas search and
hwnas worker start per trial, so that a crash, a NaN or a runaway candidate
fails one trial, not the search. HWNAS_WORKER_FAULT=crash|hang|nan[@trial]
forces a fault for tests.`,
		Example: `  hwnas worker --db postgres://hwnas:secret@db.lan/hwnas --study quick --workers 4`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.stderr = cmd.ErrOrStderr()
			if opts.DB == "" {
				return runTrialSpec(cmd.Context(), cmd.InOrStdin(), cmd.OutOrStdout(), opts.Out)
			}
			return runWorker(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Out, "out", "", "with a spec on stdin: write the result JSON to this file instead of stdout")
	f.StringVar(&opts.DB, "db", "", dbFlagHelp)
	f.StringVar(&opts.Study, "study", "", "study whose trials to run")
	f.IntVar(&opts.Workers, "workers", 1, "trials run at once on this machine")
	f.DurationVar(&opts.Lease, "lease", search.DefaultLease, "how long a claimed trial stays this worker's without a heartbeat")
	f.DurationVar(&opts.TrialTimeout, "trial-timeout", 15*time.Minute, "time limit of one trial")
	f.Int64Var(&opts.TrialMemory, "trial-memory", 8<<30, "address-space limit of one trial process in bytes")
	f.BoolVar(&opts.NoPin, "no-pin", false, "do not pin trial processes to distinct cores")
	f.StringVar(&opts.Quiet, "quiet", "auto", "when trial processes measure one at a time, the others paused: auto (only when they share cores), on or off")
	f.BoolVar(&opts.NoQuiet, "no-quiet", false, "the same as --quiet off (the old spelling)")
	rootCmd.AddCommand(cmd)
}

// runWorker joins the study and runs its trials until it is over.
func runWorker(ctx context.Context, opts workerOptions) error {
	if opts.Study == "" {
		return badInputf("--study is required with --db")
	}
	if opts.Workers < 1 || opts.Lease < 3*time.Millisecond || opts.TrialTimeout < 0 || opts.TrialMemory < 0 {
		return badInputf("--workers must be ≥ 1, --lease positive, --trial-timeout and --trial-memory not negative")
	}
	quiet, err := quietFlag(opts.Quiet, opts.NoQuiet)
	if err != nil {
		return err
	}
	db, err := openWriteDB(opts.DB)
	if err != nil {
		return err
	}
	defer db.Close()
	err = search.Work(ctx, search.WorkOptions{DB: db, Study: opts.Study, Slots: opts.Workers, Worker: opts.worker,
		WorkerEnv: opts.workerEnv, Limits: search.WorkerLimits{Timeout: opts.TrialTimeout, MemoryBytes: opts.TrialMemory},
		Lease: opts.Lease, NoPin: opts.NoPin, Quiet: quiet, UntilDone: true, Log: opts.stderr})
	if errors.Is(err, store.ErrNotFound) {
		return badInput(err)
	}
	return err
}

// runTrialSpec evaluates the trial spec read from in and writes the
// result to w, or to the file outPath when it is set (written whole or
// not at all).
func runTrialSpec(ctx context.Context, in io.Reader, w io.Writer, outPath string) error {
	if outPath == "" {
		return search.ServeWorker(ctx, in, w)
	}
	var b bytes.Buffer
	if err := search.ServeWorker(ctx, in, &b); err != nil {
		return err
	}
	return atomicfile.WriteFile(outPath, b.Bytes(), 0o644)
}
