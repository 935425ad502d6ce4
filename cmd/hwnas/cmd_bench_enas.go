package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"hwnas/search"
	"hwnas/store"
)

type benchENASOptions struct {
	Study, DB      string
	N, Threads     int
	Epochs, Subset int
	Seed           uint64
	JSON           bool
	stderr         io.Writer
}

func init() {
	opts := benchENASOptions{}
	cmd := &cobra.Command{
		Use:   "enas-rank",
		Short: "How well an enas study's supernet ranks sub-networks (Kendall τ against training each on its own)",
		Long: `enas-rank draws --n sub-networks of an enas study's space (seeded, uniform),
estimates each with the supernet's shared weights as the search's trials are
estimated, trains each from scratch with the study's proxy budget and
compression as an rl trial would, and prints both accuracies and Kendall's τ-b
between them: the figure that says whether the weight-sharing shortcut ranks
candidates as training them would. The supernet is not changed.

--epochs and --subset train the sub-networks on their own with a longer
budget instead (a final training's, say): whether the supernet ranks them as
training them to the end would.`,
		Example: `  hwnas bench enas-rank --db shared.db --study shared --n 20
  hwnas bench enas-rank --db shared.db --study shared --n 20 --epochs 4 --subset 20000   # against a longer training`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.stderr = cmd.ErrOrStderr()
			return runBenchENAS(cmd.Context(), cmd.OutOrStdout(), opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Study, "study", "", "enas study")
	f.StringVar(&opts.DB, "db", "hwnas.db", dbFlagHelp)
	f.IntVar(&opts.N, "n", 20, "sub-networks compared")
	f.IntVar(&opts.Epochs, "epochs", 0, "epochs of each standalone training (0: the study's proxy budget)")
	f.IntVar(&opts.Subset, "subset", 0, "training images of each standalone training (0: the study's proxy subset)")
	f.IntVar(&opts.Threads, "threads", 1, "threads for training (0: all cores)")
	f.Uint64Var(&opts.Seed, "seed", 1, "seed of the sub-networks drawn")
	f.BoolVar(&opts.JSON, "json", false, "print the result as JSON")
	_ = cmd.MarkFlagRequired("study")
	benchCmd.AddCommand(cmd)
}

func runBenchENAS(ctx context.Context, w io.Writer, opts benchENASOptions) error {
	if opts.N < 2 {
		return badInputf("--n %d: at least 2 sub-networks are needed for a rank correlation", opts.N)
	}
	if opts.Epochs < 0 || opts.Subset < 0 {
		return badInputf("--epochs %d, --subset %d: must not be negative", opts.Epochs, opts.Subset)
	}
	if err := checkStudy(ctx, opts.DB, opts.Study); err != nil {
		return queryError(err)
	}
	db, err := openWriteDB(opts.DB)
	if err != nil {
		return err
	}
	defer db.Close()
	res, err := search.SupernetRank(ctx, db, search.RankOptions{Study: opts.Study, N: opts.N, Seed: opts.Seed, Threads: opts.Threads,
		Epochs: opts.Epochs, Subset: opts.Subset, Log: opts.stderr})
	if err != nil {
		if errors.Is(err, store.ErrNotFound) || errors.Is(err, search.ErrNoSupernet) {
			return badInput(err)
		}
		return err
	}
	if opts.JSON {
		return writeJSON(w, res)
	}
	var est, alone float64
	for _, r := range res.Rows {
		est += r.EstimateSeconds
		alone += r.StandaloneSeconds
	}
	images := "all"
	if res.StandaloneSubset > 0 {
		images = fmt.Sprint(res.StandaloneSubset)
	}
	_, err = fmt.Fprintf(w, "study %s (supernet at round %d): Kendall τ %.3f over %d sub-networks (each trained on its own for %d epoch(s) on %s training images); the best-estimated one is %.2f points below the best trained on its own; %.2fs per estimate, %.1fs per standalone training\n",
		res.Study, res.Round, res.KendallTau, len(res.Rows), res.StandaloneEpochs, images, -100*res.Top1Gap, est/float64(len(res.Rows)), alone/float64(len(res.Rows)))
	return err
}
