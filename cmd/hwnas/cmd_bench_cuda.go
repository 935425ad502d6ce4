//go:build cuda

package main

import (
	"fmt"
	"io"
	"math/rand/v2"

	"github.com/spf13/cobra"

	"hwnas/accel"
	"hwnas/cuda"
)

// benchCUDAOptions configure `hwnas-cuda bench cuda`.
type benchCUDAOptions struct {
	Device string
	Sizes  []int
	Runs   int
	JSON   bool
}

// benchCUDARow is one SGEMM size of the report.
type benchCUDARow struct {
	N        int     `json:"n"`
	MedianUS float64 `json:"median_us"`
	TFLOPS   float64 `json:"tflops"`
}

type benchCUDAReport struct {
	Device accel.Device   `json:"device"`
	Sgemm  []benchCUDARow `json:"sgemm"`
}

func init() {
	opts := benchCUDAOptions{Device: "cuda:0", Sizes: []int{1024}, Runs: 50}
	cmd := &cobra.Command{
		Use:   "cuda",
		Short: "Measure the CUDA backend's SGEMM kernel (n×n×n, fp32, CUDA events)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBenchCUDA(cmd.OutOrStdout(), opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Device, "device", opts.Device, "GPU to measure (cuda:N)")
	f.IntSliceVar(&opts.Sizes, "sgemm", opts.Sizes, "matrix sizes n of the n×n×n products")
	f.IntVar(&opts.Runs, "runs", opts.Runs, "timed launches per size (the median is reported)")
	f.BoolVar(&opts.JSON, "json", false, "print JSON")
	benchCmd.AddCommand(cmd)
}

// runBenchCUDA times C = A·B for each size on random operands.
func runBenchCUDA(w io.Writer, opts benchCUDAOptions) error {
	if opts.Runs <= 0 {
		return badInputf("--runs %d: must be positive", opts.Runs)
	}
	b, err := accel.Open(opts.Device, accel.Options{})
	if err != nil {
		return badInput(err)
	}
	defer b.Close()
	cb, ok := b.(*cuda.Backend)
	if !ok {
		return badInputf("--device %s is not a CUDA device", opts.Device)
	}
	rep := benchCUDAReport{Device: b.Device()}
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range opts.Sizes {
		if n <= 0 {
			return badInputf("--sgemm %d: sizes must be positive", n)
		}
		a, bb, c := make([]float32, n*n), make([]float32, n*n), make([]float32, n*n)
		for i := range a {
			a[i], bb[i] = r.Float32()-0.5, r.Float32()-0.5
		}
		d, err := cb.Sgemm(n, n, n, a, bb, c, opts.Runs)
		if err != nil {
			return err
		}
		row := benchCUDARow{N: n, MedianUS: float64(d.Nanoseconds()) / 1e3}
		row.TFLOPS = 2 * float64(n) * float64(n) * float64(n) / d.Seconds() / 1e12
		rep.Sgemm = append(rep.Sgemm, row)
	}
	if opts.JSON {
		return writeJSON(w, rep)
	}
	for _, row := range rep.Sgemm {
		if _, err := fmt.Fprintf(w, "sgemm %d³ on %s: median %.1f µs, %.2f TFLOP/s\n", row.N, rep.Device.Name, row.MedianUS, row.TFLOPS); err != nil {
			return err
		}
	}
	return nil
}
