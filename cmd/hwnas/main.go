// Command hwnas is the hardware-aware neural architecture search tool: it
// trains, compresses, measures, searches and exports compact networks.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	_ "hwnas/cpu" // registers the "cpu" backend
)

// exitUsage is the exit status for bad input (flags, files, data).
const exitUsage = 2

// usageError marks errors caused by the user's input; they exit with status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// badInput wraps err as a usage error (exit status 2).
func badInput(err error) error {
	if err == nil {
		return nil
	}
	return usageError{err}
}

// badInputf formats a usage error.
func badInputf(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

var rootCmd = &cobra.Command{
	Use:   "hwnas",
	Short: "Hardware-aware neural architecture search with model compression",
	Long: `hwnas searches compact neural network architectures together with a per-layer
compression mix (pruning, quantization, low-rank, weight sharing, distillation),
trains and compresses each candidate, measures it on the real device (CPU
kernels, CUDA), and records accuracy, latency and bytes in SQLite.`,
	SilenceUsage:  true,
	SilenceErrors: true,
}

func main() {
	os.Exit(run(context.Background(), os.Args[1:]))
}

// run executes the CLI with args and returns the exit status.
func run(ctx context.Context, args []string) int {
	rootCmd.SetArgs(args)
	err := rootCmd.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	fmt.Fprintln(os.Stderr, "hwnas:", err)
	var ue usageError
	if errors.As(err, &ue) || isFlagError(err) {
		return exitUsage
	}
	return 1
}
