package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"hwnas/internal/atomicfile"
	"hwnas/nas"
	"hwnas/nas/data"
)

// The data set flags of train, compress, export, search and repro: the
// folder (any format data.Load recognises), --resize for image folders,
// and whether the model normalises its input with the training split's
// per-channel statistics.
const (
	dataFlagHelp      = "data folder: IDX files, CIFAR-10/100 binary batches, or class subfolders of PNG/JPEG images"
	resizeFlagHelp    = "resize image-folder images to H×W (e.g. 32x32, 48x64); without it all images must share one size"
	normalizeFlagHelp = "normalise the input per channel with the training split's mean and std (stored in the model and its ONNX export, which still takes raw [0,1] pixels): auto (on for colour images, off for grey), on, off"
	augmentFlagHelp   = "training augmentation: auto (crop+flip for colour images, none for grey), none, or a list of crop, crop=P, flip"
)

// addDataFlags registers --resize and --normalize (the --data flag stays
// with each command, whose default and help differ).
func addDataFlags(f *pflag.FlagSet, resize, normalize *string) {
	f.StringVar(resize, "resize", "", resizeFlagHelp)
	f.StringVar(normalize, "normalize", "auto", normalizeFlagHelp)
}

// normalizeFor resolves --normalize for d: auto normalises colour images
// (natural images, whose channels differ in mean and spread) and leaves
// grey ones as raw pixels (the digit and glyph sets, on which the LeNets'
// tuned learning rates assume [0, 1] inputs).
func normalizeFor(spec string, d *data.Data) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(spec)) {
	case "", "auto":
		return d.Info.Shape[0] >= 3, nil
	case "on", "true", "yes":
		return true, nil
	case "off", "false", "no":
		return false, nil
	}
	return false, badInputf("--normalize %q: want auto, on or off", spec)
}

// loadData loads the data folder with --resize applied; errors are usage
// errors that name the folder or file.
func loadData(dir, resize string) (*data.Data, error) {
	rs, err := data.ParseResize(resize)
	if err != nil {
		return nil, badInput(err)
	}
	d, err := data.Load(dir, data.Options{Resize: rs})
	if err != nil {
		return nil, badInput(err)
	}
	return d, nil
}

// dataShape is what built-in architectures are built for from d: its
// input shape, classes and normalisation as --normalize says.
func dataShape(d *data.Data, normalize string) (nas.DataShape, error) {
	s := nas.DataShape{Input: d.Info.Shape, Classes: d.Info.Classes}
	on, err := normalizeFor(normalize, d)
	if on {
		s.Normalize = nas.NewNormalization(d.Info.Mean, d.Info.Std)
	}
	return s, err
}

// resolveArch returns the architecture to train: a built-in built for s,
// or an architecture file, which gets s's normalisation when it has none
// of its own.
func resolveArch(nameOrPath string, s nas.DataShape) (*nas.Arch, error) {
	a, err := nas.ResolveArchFor(nameOrPath, s)
	if err != nil {
		return nil, badInput(err)
	}
	if a.Normalize == nil && s.Normalize != nil && !nas.IsBuiltin(nameOrPath) {
		a.Normalize = nas.NewNormalization(s.Normalize.Mean, s.Normalize.Std)
		if _, err := nas.NewGraph(a); err != nil {
			return nil, badInputf("%s: %v (the data set has %d channel(s))", nameOrPath, err, len(s.Normalize.Mean))
		}
	}
	return a, nil
}

// archBesideWeights is the architecture file hwnas writes next to a
// weights file (train --save W, compress --out W): W.arch.json.
func archBesideWeights(weights string) string { return weights + ".arch.json" }

// resolveSavedArch returns the architecture of the model in the weights
// file: the W.arch.json written beside it (it holds the shape and
// normalisation the model was trained with) when --arch is empty or names
// the same architecture (a built-in or file of the same name), else --arch
// built for s (or its file).
func resolveSavedArch(arch, weights string, s nas.DataShape) (*nas.Arch, error) {
	beside := archBesideWeights(weights)
	var saved *nas.Arch
	if weights != "" && fileExists(beside) {
		var err error
		if saved, err = nas.LoadArch(beside); err != nil {
			return nil, badInputf("%s: %v", beside, err)
		}
	}
	if arch == "" {
		if saved == nil {
			return nil, badInputf("--arch: give the architecture (a built-in name or a JSON file); %s was not found beside --weights", beside)
		}
		return saved, nil
	}
	a, err := nas.ResolveArchFor(arch, s)
	if err != nil {
		return nil, badInputf("--arch: %v", err)
	}
	if saved != nil && saved.Name == a.Name {
		return saved, nil
	}
	return a, nil
}

// writeArchBeside writes a's JSON next to a weights file.
func writeArchBeside(weights string, a *nas.Arch) (string, error) {
	p := archBesideWeights(weights)
	if err := atomicfile.WriteFile(p, a.JSON(), 0o644); err != nil {
		return "", err
	}
	return p, nil
}

// resolveAugment turns an --augment value into the augmentation for d.
func resolveAugment(spec string, d *data.Data) (data.Augment, error) {
	c, h, w := d.Info.Shape[0], d.Info.Shape[1], d.Info.Shape[2]
	if strings.TrimSpace(spec) == data.AugmentAuto {
		return data.AutoAugment(c, h, w), nil
	}
	a, err := data.ParseAugment(spec, h, w)
	if err != nil {
		return a, badInput(err)
	}
	return a, nil
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// parseInputShape reads --input C×H×W (empty: a built-in's default
// shape) with --classes.
func parseInputShape(input string, classes int) (nas.DataShape, error) {
	if input == "" {
		return nas.DataShape{}, nil
	}
	parts := strings.Split(strings.ReplaceAll(strings.ToLower(input), "×", "x"), "x")
	var dims []int
	for _, p := range parts {
		var v int
		if _, err := fmt.Sscan(p, &v); err != nil || v < 1 || v > data.MaxImageSide {
			return nas.DataShape{}, badInputf("--input %q: want C×H×W, e.g. 3x32x32", input)
		}
		dims = append(dims, v)
	}
	if len(dims) != 3 || classes < 1 {
		return nas.DataShape{}, badInputf("--input %q --classes %d: want C×H×W (e.g. 3x32x32) and at least one class", input, classes)
	}
	return nas.DataShape{Input: dims, Classes: classes}, nil
}
