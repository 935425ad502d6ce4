package data

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ErrNoData is wrapped by the errors of LoadDir and MNIST when the folder
// or one of its files does not exist (as opposed to a file that is there
// but invalid).
var ErrNoData = errors.New("data not found")

// howToGetData is appended to missing-data errors.
const howToGetData = "get MNIST with `make data` or `hwnas data --out DIR`, or give a folder with an IDX data set (Fashion-MNIST, KMNIST)"

// ValidationSize is the number of training images held out for validation:
// the last min(ValidationSize, N/12) of the training files, 5,000 of
// MNIST's 60,000.
const ValidationSize = 5000

// The standard IDX file names of MNIST, Fashion-MNIST and KMNIST; each may
// also be spelt with a dot before idx and may carry .gz.
const (
	TrainImagesFile = "train-images-idx3-ubyte"
	TrainLabelsFile = "train-labels-idx1-ubyte"
	TestImagesFile  = "t10k-images-idx3-ubyte"
	TestLabelsFile  = "t10k-labels-idx1-ubyte"
)

// FindIDX returns the path of the standard file base in dir: base, base.gz,
// or the same with "-idx" spelt ".idx".
func FindIDX(dir, base string) (string, error) {
	dotted := strings.Replace(base, "-idx", ".idx", 1)
	for _, name := range []string{base + ".gz", base, dotted + ".gz", dotted} {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: %s has no %s[.gz]; %s", ErrNoData, dir, base, howToGetData)
}

// LoadDir loads an IDX image-classification set from the four standard
// files in dir and splits it: train is the training files less their last
// min(ValidationSize, N/12) samples, val is those last samples, test is the
// t10k files (for final reports only; searches decide on val). All three
// share the training set's class count; a test label beyond it, or test
// images of another size, is an error.
func LoadDir(dir string) (train, val, test *Set, err error) {
	st, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil, fmt.Errorf("%w: data folder %s does not exist; %s", ErrNoData, dir, howToGetData)
	}
	if err != nil {
		return nil, nil, nil, err
	}
	if !st.IsDir() {
		return nil, nil, nil, fmt.Errorf("data folder %s is not a folder", dir)
	}
	var paths [4]string
	for i, base := range []string{TrainImagesFile, TrainLabelsFile, TestImagesFile, TestLabelsFile} {
		if paths[i], err = FindIDX(dir, base); err != nil {
			return nil, nil, nil, err
		}
	}
	full, err := LoadIDX(paths[0], paths[1])
	if err != nil {
		return nil, nil, nil, err
	}
	test, err = LoadIDX(paths[2], paths[3])
	if err != nil {
		return nil, nil, nil, err
	}
	if test.H != full.H || test.W != full.W {
		return nil, nil, nil, fmt.Errorf("%s holds %d×%d images but %s holds %d×%d", paths[2], test.H, test.W, paths[0], full.H, full.W)
	}
	if err := test.checkLabels(full.Classes); err != nil {
		return nil, nil, nil, fmt.Errorf("%w (the training labels use 0..%d)", err, full.Classes-1)
	}
	test.Classes = full.Classes
	nv := min(ValidationSize, full.N/12)
	if nv < 1 {
		return nil, nil, nil, fmt.Errorf("%s holds %d images, too few to hold out a validation split (need ≥ 12)", paths[0], full.N)
	}
	name := filepath.Base(filepath.Clean(dir))
	test.Name = name + "/test"
	if train, err = full.Slice(0, full.N-nv, name+"/train"); err != nil {
		return nil, nil, nil, err
	}
	if val, err = full.Slice(full.N-nv, full.N, name+"/val"); err != nil {
		return nil, nil, nil, err
	}
	return train, val, test, nil
}

// MNIST shapes, checked by MNIST.
const (
	MNISTTrain   = 60000
	MNISTTest    = 10000
	MNISTSide    = 28
	MNISTClasses = 10
)

// MNIST loads MNIST from dir (as `hwnas data` writes it) with LoadDir and
// checks that it is MNIST-shaped: 60,000 training and 10,000 test images of
// 28×28, labels 0..9. The split is train = the first 55,000 training
// images, val = the last 5,000, test = the 10,000 test images.
func MNIST(dir string) (train, val, test *Set, err error) {
	train, val, test, err = LoadDir(dir)
	if err != nil {
		return nil, nil, nil, err
	}
	if n := train.N + val.N; n != MNISTTrain || test.N != MNISTTest || train.H != MNISTSide || train.W != MNISTSide {
		return nil, nil, nil, fmt.Errorf("%s is not MNIST: %d training and %d test images of %d×%d, want %d and %d of %d×%d",
			dir, n, test.N, train.H, train.W, MNISTTrain, MNISTTest, MNISTSide, MNISTSide)
	}
	for _, s := range []*Set{train, val, test} {
		if err := s.checkLabels(MNISTClasses); err != nil {
			return nil, nil, nil, err
		}
		s.Classes = MNISTClasses
	}
	return train, val, test, nil
}
