package main

import (
	"bytes"
	"context"
	"io"
	"os"

	"github.com/spf13/cobra"

	"hwnas/search"
)

func init() {
	var out string
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Evaluate one search trial (started by hwnas search)",
		Long: `worker reads one trial spec (JSON) on stdin, trains, compresses, evaluates
and measures the candidate, and prints the result (JSON) on stdout. hwnas
search starts it in a child process per trial so that a crash, a NaN or a
runaway candidate fails one trial, not the search. The environment variable
HWNAS_WORKER_FAULT=crash|hang|nan[@trial] forces a fault for tests.`,
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runWorker(cmd.Context(), cmd.InOrStdin(), cmd.OutOrStdout(), out)
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "write the result JSON to this file instead of stdout")
	rootCmd.AddCommand(cmd)
}

// runWorker evaluates the trial spec read from in and writes the result to
// w, or to the file outPath when it is set (written whole or not at all).
func runWorker(ctx context.Context, in io.Reader, w io.Writer, outPath string) error {
	if outPath == "" {
		return search.ServeWorker(ctx, in, w)
	}
	var b bytes.Buffer
	if err := search.ServeWorker(ctx, in, &b); err != nil {
		return err
	}
	tmp := outPath + ".tmp"
	if err := os.WriteFile(tmp, b.Bytes(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, outPath)
}
