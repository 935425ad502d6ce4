package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"hwnas/accel"
	"hwnas/accel/remote"
)

type cudaWorkerOptions struct {
	Backend string
}

func init() {
	opts := cudaWorkerOptions{Backend: "cuda"}
	cmd := &cobra.Command{
		Use:   "cuda-worker",
		Short: "Serve a backend to a parent hwnas over stdin/stdout (started by the cuda device)",
		Long: `cuda-worker serves one backend over the worker protocol of package
accel/remote on stdin and stdout: the CPU-only hwnas binary starts the
CUDA-enabled one (hwnas-cuda) this way to reach a GPU. It is not meant to be
run by hand; --backend cpu serves the CPU backend, which the protocol's tests use.`,
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			proto, err := protocolStdout()
			if err != nil {
				return err
			}
			defer proto.Close()
			return runCudaWorker(cmd.InOrStdin(), proto, opts)
		},
	}
	cmd.Flags().StringVar(&opts.Backend, "backend", opts.Backend, "backend to serve (cuda, cpu)")
	rootCmd.AddCommand(cmd)
}

// runCudaWorker serves the backend opts names on r and w until the client
// closes it.
func runCudaWorker(r io.Reader, w io.Writer, opts cudaWorkerOptions) error {
	reg, err := accel.Lookup(opts.Backend)
	if err != nil {
		return badInput(err)
	}
	return remote.Serve(r, w, reg)
}

// protocolStdout moves the protocol to a private copy of file descriptor 1
// and points descriptor 1 (and os.Stdout) at stderr, so that whatever C, CUDA
// or Go code prints cannot corrupt the frames.
func protocolStdout() (*os.File, error) {
	fd, err := unix.Dup(1)
	if err != nil {
		return nil, fmt.Errorf("cuda-worker: dup stdout: %w", err)
	}
	if err := unix.Dup2(2, 1); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("cuda-worker: redirect stdout: %w", err)
	}
	os.Stdout = os.Stderr
	return os.NewFile(uintptr(fd), "protocol"), nil
}
