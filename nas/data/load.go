package data

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Formats Load recognises, in the order it looks for them.
const (
	FormatIDX      = "idx"      // MNIST-style IDX files
	FormatCIFAR10  = "cifar10"  // CIFAR-10 binary batches
	FormatCIFAR100 = "cifar100" // CIFAR-100 binary batches (fine labels)
	FormatImages   = "images"   // class subfolders of PNG/JPEG images
)

// Options say how to read a data folder. The zero value reads any format
// as found, with the default split of an image folder.
type Options struct {
	// Resize is [H, W]: image-folder images of another size are scaled to
	// it (nil: every image must have the same size). IDX and CIFAR files
	// have one size and refuse it.
	Resize []int `json:"resize,omitempty"`
	// SplitSeed seeds an image folder's train/validation(/test) split
	// (0 means 1); ValFraction and TestFraction are the shares of each
	// class held out (0 means DefaultValFraction, DefaultTestFraction;
	// TestFraction is not used when the folder has its own test/).
	SplitSeed    uint64  `json:"split_seed,omitempty"`
	ValFraction  float64 `json:"val_fraction,omitempty"`
	TestFraction float64 `json:"test_fraction,omitempty"`
	// Cache is the folder of the decode cache ("" → $HWNAS_CACHE or the
	// user cache folder; "off" → no cache). Not part of what is recorded.
	Cache string `json:"-"`
}

// Defaults of an image folder's split.
const (
	DefaultSplitSeed    = 1
	DefaultValFraction  = 0.1
	DefaultTestFraction = 0.1
)

// Info describes a loaded data set: what a study records so that it can
// tell later that its data is still the same, and what a model needs to
// know about its input.
type Info struct {
	Dir        string   `json:"dir"`
	Format     string   `json:"format"`
	Shape      []int    `json:"shape"` // [C, H, W]
	Classes    int      `json:"classes"`
	ClassNames []string `json:"class_names,omitempty"`
	Train      int      `json:"train"`
	Val        int      `json:"val"`
	Test       int      `json:"test"`
	// Options as applied (image folders: the split seed and fractions
	// filled in).
	Options Options `json:"options"`
	// Digest is a SHA-256 of an image folder's split: the files of each
	// split, in order, with their sizes. Empty for IDX and CIFAR, whose
	// split is fixed by the files.
	Digest string `json:"digest,omitempty"`
	// Mean and Std are the per-channel mean and standard deviation of
	// the training split's pixels (in [0, 1]).
	Mean []float32 `json:"mean"`
	Std  []float32 `json:"std"`
}

// String is a one-line description: "fashion: idx 1×28×28, 10 classes,
// 55000/5000/10000".
func (i *Info) String() string {
	shape := make([]string, len(i.Shape))
	for k, d := range i.Shape {
		shape[k] = strconv.Itoa(d)
	}
	return fmt.Sprintf("%s: %s %s, %d classes, train/val/test %d/%d/%d", i.Dir, i.Format, strings.Join(shape, "×"), i.Classes, i.Train, i.Val, i.Test)
}

// Data is a loaded data set: its three splits and their description.
type Data struct {
	Train, Val, Test *Set
	Info             Info
}

// Load reads the data set in dir, recognising its format by its files:
// IDX files (train-images-idx3-ubyte[.gz] …), CIFAR-10 or CIFAR-100
// binary batches (data_batch_N.bin and test_batch.bin, or train.bin and
// test.bin; also inside the cifar-10-batches-bin/ or cifar-100-binary/
// folder their archives unpack into), or an image folder (class
// subfolders of PNG/JPEG images). IDX and CIFAR hold out the last
// min(ValidationSize, N/12) training images for validation; an image
// folder holds out a seeded ValFraction of each class (and TestFraction
// for the test split unless it has its own test/ folder). Searches decide
// on the validation split; the test split is for final reports.
func Load(dir string, o Options) (*Data, error) {
	st, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: data folder %s does not exist; %s", ErrNoData, dir, howToGetData)
	}
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("data folder %s is not a folder", dir)
	}
	if err := checkOptions(&o); err != nil {
		return nil, err
	}
	var d *Data
	name := filepath.Base(filepath.Clean(dir))
	cifar, err := findCIFAR(dir)
	switch {
	case err != nil:
		return nil, err
	case hasIDX(dir):
		if d, err = loadFixed(dir, name, FormatIDX, o, loadIDXFiles); err != nil {
			return nil, err
		}
	case cifar != nil:
		load := func(string) (*Set, *Set, []string, error) { return loadCIFAR(cifar) }
		if d, err = loadFixed(dir, name, cifar.kind.String(), o, load); err != nil {
			return nil, err
		}
	case hasSubfolders(dir):
		if d, err = loadImageFolder(dir, name, o); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("%w: %s holds no data set: no IDX files (%s[.gz], …), no CIFAR batches (%s, %s; or %s, %s), no class subfolders of PNG/JPEG images; %s",
			ErrNoData, dir, TrainImagesFile, cifar10TrainGlob, cifar10Test, cifar100Train, cifar100Test, howToGetData)
	}
	d.Info.Dir = dir
	d.Info.Shape = []int{d.Train.C, d.Train.H, d.Train.W}
	d.Info.Classes = d.Train.Classes
	d.Info.Train, d.Info.Val, d.Info.Test = d.Train.N, d.Val.N, d.Test.N
	d.Info.Mean, d.Info.Std = d.Train.ChannelStats()
	return d, nil
}

// checkOptions validates o and fills in the split defaults.
func checkOptions(o *Options) error {
	if o.Resize != nil {
		if len(o.Resize) != 2 || o.Resize[0] < 1 || o.Resize[1] < 1 || o.Resize[0] > MaxImageSide || o.Resize[1] > MaxImageSide {
			return fmt.Errorf("resize %v: want [H, W], each 1..%d", o.Resize, MaxImageSide)
		}
	}
	if o.SplitSeed == 0 {
		o.SplitSeed = DefaultSplitSeed
	}
	if o.ValFraction == 0 {
		o.ValFraction = DefaultValFraction
	}
	if o.TestFraction == 0 {
		o.TestFraction = DefaultTestFraction
	}
	if o.ValFraction <= 0 || o.TestFraction <= 0 || o.ValFraction+o.TestFraction >= 1 {
		return fmt.Errorf("split fractions validation %g and test %g: each must be positive and together below 1", o.ValFraction, o.TestFraction)
	}
	return nil
}

// ParseResize reads a --resize value: "H×W" or "HxW" (height first, as in
// C×H×W), or one number for a square.
func ParseResize(s string) ([]int, error) {
	if s == "" {
		return nil, nil
	}
	parts := strings.Split(strings.ReplaceAll(strings.ToLower(s), "×", "x"), "x")
	if len(parts) == 1 {
		parts = append(parts, parts[0])
	}
	if len(parts) != 2 {
		return nil, fmt.Errorf("--resize %q: want H×W (e.g. 32x32 or 48x64) or one number", s)
	}
	out := make([]int, 2)
	for i, p := range parts {
		v, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || v < 1 || v > MaxImageSide {
			return nil, fmt.Errorf("--resize %q: %q is not a size in 1..%d", s, p, MaxImageSide)
		}
		out[i] = v
	}
	return out, nil
}

// hasIDX reports whether dir holds the training images of an IDX set.
func hasIDX(dir string) bool {
	_, err := FindIDX(dir, TrainImagesFile)
	return err == nil
}

// loadFixed loads a format whose files fix the split (IDX, CIFAR): the
// training files less their last min(ValidationSize, N/12) images for
// training, those for validation, the test files for test.
func loadFixed(dir, name, format string, o Options, load func(dir string) (full, test *Set, classNames []string, err error)) (*Data, error) {
	if o.Resize != nil {
		return nil, fmt.Errorf("%s holds %s files of one image size: --resize applies to image folders only", dir, format)
	}
	full, test, names, err := load(dir)
	if err != nil {
		return nil, err
	}
	if test.C != full.C || test.H != full.H || test.W != full.W {
		return nil, fmt.Errorf("%s holds %d×%d×%d test images but %s holds %d×%d×%d", test.Name, test.C, test.H, test.W, full.Name, full.C, full.H, full.W)
	}
	if err := test.checkLabels(full.Classes); err != nil {
		return nil, fmt.Errorf("%w (the training labels use 0..%d)", err, full.Classes-1)
	}
	test.Classes = full.Classes
	nv := min(ValidationSize, full.N/12)
	if nv < 1 {
		return nil, fmt.Errorf("%s holds %d images, too few to hold out a validation split (need ≥ 12)", full.Name, full.N)
	}
	d := &Data{Info: Info{Format: format, ClassNames: names, Options: Options{}}}
	test.Name = name + "/test"
	if d.Train, err = full.Slice(0, full.N-nv, name+"/train"); err != nil {
		return nil, err
	}
	if d.Val, err = full.Slice(full.N-nv, full.N, name+"/val"); err != nil {
		return nil, err
	}
	d.Test = test
	return d, nil
}

// loadIDXFiles reads the four standard IDX files of dir.
func loadIDXFiles(dir string) (full, test *Set, _ []string, err error) {
	var paths [4]string
	for i, base := range []string{TrainImagesFile, TrainLabelsFile, TestImagesFile, TestLabelsFile} {
		if paths[i], err = FindIDX(dir, base); err != nil {
			return nil, nil, nil, err
		}
	}
	if full, err = LoadIDX(paths[0], paths[1]); err != nil {
		return nil, nil, nil, err
	}
	if test, err = LoadIDX(paths[2], paths[3]); err != nil {
		return nil, nil, nil, err
	}
	return full, test, nil, nil
}

// loadImageFolder scans, decodes (or reads the decode cache) and splits an
// image folder.
func loadImageFolder(dir, name string, o Options) (*Data, error) {
	f, err := scanImageFolder(dir)
	if err != nil {
		return nil, err
	}
	root := cacheRoot(o)
	key := cacheKey(f.files, o.Resize)
	c, h, w, pix, ok := readCache(root, key, len(f.files))
	if !ok {
		if c, h, w, err = imageShape(f.files, o.Resize); err != nil {
			return nil, err
		}
		if pix, err = decodeImages(f.files, c, h, w); err != nil {
			return nil, err
		}
		_ = writeCache(root, key, len(f.files), c, h, w, pix) // a missing cache only costs time
	}
	train, val, test, err := splitImages(f, o)
	if err != nil {
		return nil, err
	}
	o.Cache = ""
	d := &Data{Info: Info{Format: FormatImages, ClassNames: f.classes, Options: o}}
	digest := sha256.New()
	build := func(split string, idx []int) *Set {
		chw := c * h * w
		s := &Set{Name: name + "/" + split, N: len(idx), C: c, H: h, W: w, Classes: len(f.classes),
			Images: make([]float32, len(idx)*chw), Labels: make([]int32, len(idx))}
		fmt.Fprintf(digest, "%s %d\n", split, len(idx))
		for k, i := range idx {
			for j, b := range pix[i*chw : (i+1)*chw] {
				s.Images[k*chw+j] = byteScale[b]
			}
			s.Labels[k] = int32(f.files[i].class)
			fmt.Fprintf(digest, "%q %d\n", f.files[i].rel, f.files[i].size)
		}
		return s
	}
	d.Train, d.Val, d.Test = build("train", train), build("val", val), build("test", test)
	d.Info.Digest = hex.EncodeToString(digest.Sum(nil))
	return d, nil
}

// splitImages assigns each file of f to a split: per class, the files in
// scan order are permuted by a generator seeded with (SplitSeed, class),
// the first round(ValFraction·n) go to validation, the next
// round(TestFraction·n) to test (unless the folder has its own test
// images), the rest to training; each split is then shuffled as a whole
// (seeded too) so that its first images are a fair sample of all classes
// (searches train on a prefix). Every class keeps at least one training
// image; an empty validation or test split is an error.
func splitImages(f *imageFolder, o Options) (train, val, test []int, err error) {
	ownTest := f.testFrom >= 0
	trainEnd := len(f.files)
	if ownTest {
		trainEnd = f.testFrom
		for i := f.testFrom; i < len(f.files); i++ {
			test = append(test, i)
		}
	}
	byClass := make([][]int, len(f.classes))
	for i := 0; i < trainEnd; i++ {
		byClass[f.files[i].class] = append(byClass[f.files[i].class], i)
	}
	for c, idx := range byClass {
		rng := rand.New(rand.NewPCG(o.SplitSeed, uint64(c)))
		rng.Shuffle(len(idx), func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
		n := len(idx)
		nv := int(math.Round(o.ValFraction * float64(n)))
		nt := 0
		if !ownTest {
			nt = int(math.Round(o.TestFraction * float64(n)))
		}
		for nv+nt >= n && nv+nt > 0 { // keep one training image
			if nt >= nv && nt > 0 {
				nt--
			} else {
				nv--
			}
		}
		val = append(val, idx[:nv]...)
		test = append(test, idx[nv:nv+nt]...)
		train = append(train, idx[nv+nt:]...)
	}
	if len(val) == 0 || len(test) == 0 {
		return nil, nil, nil, fmt.Errorf("image folder %s: %d images are too few to hold out %.0f%% for validation and %.0f%% for test (need at least one each)",
			f.dir, trainEnd, 100*o.ValFraction, 100*o.TestFraction)
	}
	for k, s := range [][]int{train, val, test} {
		rng := rand.New(rand.NewPCG(o.SplitSeed, 0x5b117+uint64(k)))
		rng.Shuffle(len(s), func(i, j int) { s[i], s[j] = s[j], s[i] })
	}
	return train, val, test, nil
}
