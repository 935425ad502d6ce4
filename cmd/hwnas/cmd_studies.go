package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"hwnas/store"
)

type studiesOptions struct {
	DB   string
	JSON bool
}

func init() {
	opts := studiesOptions{}
	cmd := &cobra.Command{
		Use:   "studies",
		Short: "List the studies in a database",
		Long: `studies lists every study with its data set, target device, strategy, status,
trial counts and best reward. It opens the database read-only, so it runs
safely while a search writes.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runStudies(cmd.Context(), cmd.OutOrStdout(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.DB, "db", "hwnas.db", dbFlagHelp)
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print JSON")
	rootCmd.AddCommand(cmd)
}

func runStudies(ctx context.Context, w io.Writer, opts studiesOptions) error {
	db, err := openQueryDB(opts.DB)
	if err != nil {
		return err
	}
	defer db.Close()
	list, err := db.ListStudies(ctx)
	if err != nil {
		return err
	}
	if opts.JSON {
		if list == nil {
			list = []store.StudySummary{}
		}
		return writeJSON(w, list)
	}
	if len(list) == 0 {
		_, err := fmt.Fprintf(w, "no studies in %s\n", opts.DB)
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STUDY\tDATASET\tDEVICE\tSTRATEGY\tSTATUS\tDONE\tFAILED\tPENDING\tRUNNING\tBEST REWARD\tUPDATED")
	for _, s := range list {
		best := "-"
		if s.BestReward != nil {
			best = fmt.Sprintf("%.4f", *s.BestReward)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\n", s.Name, s.Dataset, deviceLabel(s.DeviceSpec, s.DeviceName),
			s.Strategy, s.Status, s.Done, s.Failed, s.Pending, s.Running, best, s.Updated.Local().Format(time.DateTime))
	}
	return tw.Flush()
}

// dbFlagHelp describes --db on every command.
const dbFlagHelp = "database: an SQLite file, or a PostgreSQL URL (postgres://user:pass@host/db) shared by many machines"

// openQueryDB opens the database read-only for a query command. A missing
// file (reads never create one), a file that is not an hwnas database or
// one from a newer hwnas is bad input (exit status 2).
func openQueryDB(path string) (*store.DB, error) {
	db, err := store.OpenReadOnly(path)
	if err != nil {
		return nil, queryError(err)
	}
	return db, nil
}

// openWriteDB opens (creating and migrating) the database a search writes;
// a file that is not an hwnas database or is from a newer hwnas is bad
// input, and nothing is written to it.
func openWriteDB(path string) (*store.DB, error) {
	db, err := store.Open(path)
	if errors.Is(err, store.ErrNotHwnas) || errors.Is(err, store.ErrNewerSchema) {
		return nil, badInput(err)
	}
	return db, err
}

// queryError marks store errors caused by what the user asked for (a
// missing database, an unknown study or device) as bad input.
func queryError(err error) error {
	for _, e := range []error{store.ErrNoDatabase, store.ErrNotHwnas, store.ErrNewerSchema, store.ErrOlderSchema, store.ErrNotFound} {
		if errors.Is(err, e) {
			return badInput(err)
		}
	}
	return err
}

func deviceLabel(spec, name string) string {
	switch {
	case name == "":
		return spec
	case spec == "":
		return name
	}
	return spec + " (" + name + ")"
}

// fmtLatency rounds a latency for tables: 3 significant digits.
func fmtLatency(d time.Duration) string {
	switch {
	case d <= 0:
		return "-"
	case d < 10*time.Microsecond:
		return d.Round(10 * time.Nanosecond).String()
	case d < 10*time.Millisecond:
		return d.Round(time.Microsecond / 10).String()
	}
	return d.Round(10 * time.Microsecond).String()
}

// fmtBytes prints a byte count with decimal units (1 KB = 1000 bytes),
// the units --max-bytes takes.
func fmtBytes(n int64) string {
	switch {
	case n < 1000:
		return fmt.Sprintf("%d B", n)
	case n < 1000*1000:
		return fmt.Sprintf("%.2f KB", float64(n)/1e3)
	}
	return fmt.Sprintf("%.2f MB", float64(n)/1e6)
}

func fmtPercent(x float64, ok bool) string {
	if !ok {
		return "-"
	}
	return fmt.Sprintf("%.2f%%", 100*x)
}
