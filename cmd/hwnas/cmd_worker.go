package main

import (
	"context"
	"io"

	"github.com/spf13/cobra"

	"hwnas/search"
)

func init() {
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
			return runWorker(cmd.Context(), cmd.InOrStdin(), cmd.OutOrStdout())
		},
	}
	rootCmd.AddCommand(cmd)
}

func runWorker(ctx context.Context, in io.Reader, out io.Writer) error {
	return search.ServeWorker(ctx, in, out)
}
