package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

type importOptions struct {
	DB   string
	JSON bool
}

func init() {
	opts := importOptions{}
	cmd := &cobra.Command{
		Use:   "import OTHER",
		Short: "Merge the studies, trials, weights and latencies of another database into this one",
		Long: `import copies from OTHER (an SQLite file or a postgres:// URL) into --db
whatever --db lacks: devices, studies (by name), their finished trials (by
study and trial number) with metrics and weights, every latency of those
trials (by device, batch and runtime), per-op latency tables, and the
checkpoints of studies new to --db. Nothing --db has is replaced, so a second
import of the same database adds nothing. Latencies measured on a board
(hwnas measure on a copy of the database there) join the main database this
way. A study of the same name with another configuration is refused.`,
		Example: `  hwnas import board.db
  hwnas import postgres://hwnas@db.lan/hwnas --db local.db`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runImport(cmd.Context(), cmd.OutOrStdout(), args[0], opts)
		},
	}
	cmd.Flags().StringVar(&opts.DB, "db", "hwnas.db", dbFlagHelp+" (written)")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the counts as JSON")
	rootCmd.AddCommand(cmd)
}

func runImport(ctx context.Context, w io.Writer, other string, opts importOptions) error {
	if other == opts.DB {
		return badInputf("import %s into itself: give another --db", other)
	}
	src, err := openQueryDB(other)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := openWriteDB(opts.DB)
	if err != nil {
		return err
	}
	defer dst.Close()
	st, err := dst.Import(ctx, src)
	if err != nil {
		return badInput(err)
	}
	if opts.JSON {
		return writeJSON(w, st)
	}
	_, err = fmt.Fprintf(w, "imported from %s into %s: %d studies, %d trials, %d latencies, %d weights, %d devices, %d op latencies, %d reference figures, %d checkpoints (%d unfinished trials left out)\n",
		src.Path(), dst.Path(), st.Studies, st.Trials, st.Latencies, st.Weights, st.Devices, st.OpLatencies, st.ReferenceFigures, st.Checkpoints, st.Skipped)
	return err
}
