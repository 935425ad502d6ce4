package data

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ErrNoData is wrapped by the errors of LoadDir and MNIST when the folder
// or one of its files does not exist (as opposed to a file that is there
// but invalid).
var ErrNoData = errors.New("data not found")

// howToGetData is appended to missing-data errors.
const howToGetData = "get MNIST with `make data` or `hwnas data --out DIR`, Fashion-MNIST with `hwnas data --set fashion-mnist --out DIR`, or give a folder of IDX files, CIFAR binary batches or class subfolders of PNG/JPEG images"

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

// LoadDir loads the data set in dir with Load's default options and
// returns its three splits.
func LoadDir(dir string) (train, val, test *Set, err error) {
	d, err := Load(dir, Options{})
	if err != nil {
		return nil, nil, nil, err
	}
	return d.Train, d.Val, d.Test, nil
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
