package main

import "github.com/spf13/cobra"

// benchCmd groups the benchmark verbs; each lives in its own file
// (cmd_bench_kernels.go, cmd_bench_model.go, cmd_bench_ort.go).
var benchCmd = &cobra.Command{
	Use:   "bench",
	Short: "Measure kernels, models and peers on this machine",
}

func init() { rootCmd.AddCommand(benchCmd) }
