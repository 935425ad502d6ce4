package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"hwnas/accel"
	"hwnas/nas"
	"hwnas/nas/compress"
	"hwnas/nas/data"
)

// trainOptions configure `hwnas train`.
type trainOptions struct {
	Arch      string
	Epochs    int
	Data      string
	Save      string
	Seed      uint64
	Batch     int
	LR        float64
	Optimizer string
	Threads   int
	Subset    int // train on the first Subset images (0: all)
	Resize    string
	Augment   string // --augment: auto, none, crop[=P],flip
	Normalize string // --normalize: auto, on, off
	Teacher   string // --teacher: FILE[:T=…][:a=…][:arch=…], distillation
	JSON      bool
	// Progress, when not nil, receives a progress bar (a terminal).
	Progress io.Writer
}

// trainReport is the --json output of `hwnas train`.
type trainReport struct {
	Arch            string             `json:"arch"`
	ArchHash        string             `json:"arch_hash"`
	Params          int64              `json:"params"`
	MACs            int64              `json:"macs"`
	Data            string             `json:"data"`
	DataInfo        data.Info          `json:"data_info"`
	Normalize       *nas.Normalization `json:"normalize,omitempty"`
	Augment         string             `json:"augment"`
	Teacher         string             `json:"teacher,omitempty"`
	TrainImages     int                `json:"train_images"`
	Optimizer       string             `json:"optimizer"`
	LR              float64            `json:"lr"`
	Batch           int                `json:"batch"`
	Seed            uint64             `json:"seed"`
	Threads         int                `json:"threads"`
	Device          accel.Device       `json:"device"`
	Epochs          []nas.EpochResult  `json:"epochs"`
	SecondsPerEpoch float64            `json:"seconds_per_epoch"`
	ValAccuracy     float64            `json:"val_accuracy"`
	TestAccuracy    float64            `json:"test_accuracy"`
	TestLoss        float64            `json:"test_loss"`
	Seconds         float64            `json:"seconds"`
	Saved           string             `json:"saved,omitempty"`
	SavedArch       string             `json:"saved_arch,omitempty"`
}

// Training defaults, chosen so that 10 epochs reach the MNIST
// targets (LeNet-5 ≥ 99.0%, LeNet-300-100 ≥ 98.2% test accuracy).
const (
	defaultTrainLR    = 0.05
	defaultTrainBatch = 64
)

func init() {
	opts := trainOptions{}
	cmd := &cobra.Command{
		Use:   "train",
		Short: "Train an architecture on an image data set (MNIST by default)",
		Long: `Trains a built-in architecture or an architecture JSON file on an image
data set: IDX files (MNIST, Fashion-MNIST), CIFAR-10/100 binary batches, or a
folder of class subfolders of PNG/JPEG images (split by a fixed seed). Built-in
architectures take the data set's shape (C×H×W and classes):
` + nas.BuiltinHelp() + `
It trains on the training split (validation reported every epoch), then
evaluates the test split once at the end. The input is normalised per channel
with the training split's statistics when --normalize says (by default colour
images are, grey ones stay raw pixels in [0, 1]) and
training batches are augmented as --augment says. SGD with momentum 0.9 and
weight decay 5e-4 (or Adam) on a cosine learning-rate schedule with warm-up;
the same --seed gives the same model. --save writes the weights and, beside
them, the architecture as built (FILE.arch.json), which compress, export and
bench ort read.`,
		Example: `  hwnas data --set fashion-mnist --out data/fashion
  hwnas train --arch lenet5 --data data/fashion --epochs 20 --save lenet5.hwnw
  hwnas train --arch resnet20 --data photos/ --resize 32x32 --augment crop,flip`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f, ok := cmd.ErrOrStderr().(*os.File); ok && term.IsTerminal(int(f.Fd())) {
				opts.Progress = f
			}
			return runTrain(cmd.Context(), cmd.OutOrStdout(), opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Arch, "arch", "lenet5", "architecture: a built-in name ("+joinNames()+") or a JSON file")
	f.IntVar(&opts.Epochs, "epochs", 10, "training epochs")
	f.StringVar(&opts.Data, "data", "data/mnist", dataFlagHelp)
	addDataFlags(f, &opts.Resize, &opts.Normalize)
	f.StringVar(&opts.Augment, "augment", data.AugmentAuto, augmentFlagHelp)
	f.StringVar(&opts.Save, "save", "", "write the trained weights to this file")
	f.Uint64Var(&opts.Seed, "seed", 1, "seed of the initial weights and the shuffling")
	f.IntVar(&opts.Batch, "batch", defaultTrainBatch, "mini-batch size")
	f.Float64Var(&opts.LR, "lr", 0, fmt.Sprintf("base learning rate (default %g for sgd, 0.001 for adam)", defaultTrainLR))
	f.StringVar(&opts.Optimizer, "optimizer", "sgd", "sgd or adam")
	f.IntVar(&opts.Threads, "threads", 0, "kernel threads (0: all cores)")
	f.IntVar(&opts.Subset, "subset", 0, "train on the first N training images only (0: all)")
	f.StringVar(&opts.Teacher, "teacher", "", "distil from a trained teacher: FILE[:T=4][:a=0.7][:arch=NAME|FILE] (hwnas train --save weights; its architecture is FILE.arch.json unless arch= names one); the loss is a·T²·KL(teacher‖student) + (1−a)·cross-entropy")
	f.BoolVar(&opts.JSON, "json", false, "print JSON")
	rootCmd.AddCommand(cmd)
}

func joinNames() string { return strings.Join(nas.BuiltinNames(), ", ") }

// runTrain trains, evaluates on the test split, optionally saves, and
// prints the figures.
func runTrain(ctx context.Context, w io.Writer, opts trainOptions) error {
	if opts.Epochs <= 0 {
		return badInputf("--epochs %d: must be positive", opts.Epochs)
	}
	if opts.Batch <= 0 {
		return badInputf("--batch %d: must be positive", opts.Batch)
	}
	if opts.LR < 0 {
		return badInputf("--lr %g: must not be negative", opts.LR)
	}
	if err := checkOptimizer("--optimizer", opts.Optimizer); err != nil {
		return err
	}
	if opts.LR == 0 && opts.Optimizer == "sgd" {
		opts.LR = defaultTrainLR
	}
	d, err := loadData(opts.Data, opts.Resize)
	if err != nil {
		return err
	}
	train, val, test := d.Train, d.Val, d.Test
	shape, err := dataShape(d, opts.Normalize)
	if err != nil {
		return err
	}
	arch, err := resolveArch(opts.Arch, shape)
	if err != nil {
		return err
	}
	aug, err := resolveAugment(opts.Augment, d)
	if err != nil {
		return err
	}
	m, err := nas.NewModel(arch, opts.Seed)
	if err != nil {
		return badInput(err)
	}
	if err := m.CheckData(train); err != nil {
		return badInput(err)
	}
	k, closeK, err := nas.DefaultKernels(opts.Threads)
	if err != nil {
		return err
	}
	defer closeK()
	m.Kernels = k
	cfg := nas.TrainConfig{Epochs: opts.Epochs, BatchSize: opts.Batch, LR: opts.LR, Optimizer: opts.Optimizer,
		Seed: opts.Seed, Augment: aug}
	if opts.Teacher != "" {
		ds, err := compress.ParseDistill(opts.Teacher)
		if err != nil {
			return badInputf("--teacher %s: %v", opts.Teacher, err)
		}
		if beside := archBesideWeights(ds.Teacher); ds.TeacherArch == "" && fileExists(beside) {
			ds.TeacherArch = beside
		}
		if cfg.Loss, err = compress.DistillLossFunc(ds, m, k); err != nil {
			return badInputf("--teacher %s: %v", opts.Teacher, err)
		}
	}
	if opts.Subset > 0 {
		train = train.Subset(opts.Subset)
	}
	dev := accel.DetectCPU(opts.Threads, "")
	if !opts.JSON {
		fmt.Fprintf(w, "data %s\n", d.Info.String())
		fmt.Fprintf(w, "training %s (%d params, %d MACs/image) on %s: %d images, %d epochs, %s lr %g, batch %d, augment %s, normalised input %v, %d threads\n",
			arch.Name, m.NumParams(), m.Graph.MACs(), opts.Data, train.N, opts.Epochs, opts.Optimizer, cfg.LR, opts.Batch, aug, arch.Normalize != nil, dev.Cores)
		if opts.Teacher != "" {
			fmt.Fprintf(w, "distilling from %s\n", opts.Teacher)
		}
	}
	var bar *progressbar.ProgressBar
	progress := func(p nas.Progress) {
		if opts.Progress != nil {
			if bar == nil {
				bar = progressbar.NewOptions(p.Batches, progressbar.OptionSetWriter(opts.Progress),
					progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish(),
					progressbar.OptionSetWidth(30), progressbar.OptionShowCount())
			}
			bar.Describe(fmt.Sprintf("epoch %d/%d loss %.4f acc %.2f%% %.0f img/s", p.Epoch, p.Epochs, p.Loss, 100*p.Accuracy, p.ImagesPerSecond))
			_ = bar.Set(p.Batch)
			if p.EpochDone {
				_ = bar.Finish()
				bar = nil
			}
		}
		if p.EpochDone && !opts.JSON {
			fmt.Fprintf(w, "epoch %d/%d  loss %.4f  train %.2f%%  val %.2f%%  %.1f s  %.0f img/s\n",
				p.Epoch, p.Epochs, p.Loss, 100*p.Accuracy, 100*p.ValAccuracy, p.EpochSeconds, p.ImagesPerSecond)
		}
	}
	res, err := nas.Train(ctx, m, train, val, cfg, progress)
	if err != nil {
		if errors.Is(err, nas.ErrNaN) {
			return badInput(err)
		}
		return err
	}
	testAcc, testLoss, err := nas.Evaluate(m, test)
	if err != nil {
		return err
	}
	rep := trainReport{Arch: arch.Name, ArchHash: arch.Hash(), Params: m.NumParams(), MACs: m.Graph.MACs(), Data: opts.Data,
		DataInfo: d.Info, Normalize: arch.Normalize, Augment: aug.String(), Teacher: opts.Teacher,
		TrainImages: train.N, Optimizer: opts.Optimizer, LR: cfg.LR, Batch: opts.Batch, Seed: opts.Seed, Threads: dev.Cores,
		Device: dev, Epochs: res.Epochs, ValAccuracy: res.ValAcc, TestAccuracy: testAcc, TestLoss: testLoss, Seconds: res.Seconds}
	for _, e := range res.Epochs {
		rep.SecondsPerEpoch += e.Seconds / float64(len(res.Epochs))
	}
	if opts.Save != "" {
		if err := nas.SaveWeights(opts.Save, m); err != nil {
			return err
		}
		rep.Saved = opts.Save
		if rep.SavedArch, err = writeArchBeside(opts.Save, arch); err != nil {
			return err
		}
	}
	if opts.JSON {
		return writeJSON(w, rep)
	}
	fmt.Fprintf(w, "test accuracy %.2f%% (loss %.4f) on %d images; %.1f s per epoch, %.1f s in all\n",
		100*testAcc, testLoss, test.N, rep.SecondsPerEpoch, rep.Seconds)
	if rep.Saved != "" {
		fmt.Fprintf(w, "weights saved to %s (architecture: %s)\n", rep.Saved, rep.SavedArch)
	}
	return nil
}

// checkOptimizer refuses an optimizer nas.Train does not know, naming
// the flag that gave it.
func checkOptimizer(flag, name string) error {
	if name != "sgd" && name != "adam" {
		return badInputf("%s %q: use sgd or adam", flag, name)
	}
	return nil
}
