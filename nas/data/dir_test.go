package data

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeSet writes an n-image h×w IDX pair into dir under the given base
// names; image i is filled with byte i and labelled label(i).
func writeSet(t *testing.T, dir, images, labels string, n, h, w int, label func(i int) byte, gzipped bool) {
	t.Helper()
	pix := make([]byte, n*h*w)
	lab := make([]byte, n)
	for i := range n {
		for j := range h * w {
			pix[i*h*w+j] = byte(i)
		}
		lab[i] = label(i)
	}
	im := idxBytes(MagicImages, []uint32{uint32(n), uint32(h), uint32(w)}, pix)
	lb := idxBytes(MagicLabels, []uint32{uint32(n)}, lab)
	if gzipped {
		im, lb, images, labels = gz(im), gz(lb), images+".gz", labels+".gz"
	}
	if err := os.WriteFile(filepath.Join(dir, images), im, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, labels), lb, 0o644); err != nil {
		t.Fatal(err)
	}
}

func mod10(i int) byte { return byte(i % 10) }

func TestLoadIDX(t *testing.T) {
	dir := t.TempDir()
	writeSet(t, dir, "im", "lb", 7, 3, 2, func(i int) byte { return byte(6 - i) }, false)
	s, err := LoadIDX(filepath.Join(dir, "im"), filepath.Join(dir, "lb"))
	if err != nil {
		t.Fatal(err)
	}
	if s.N != 7 || s.C != 1 || s.H != 3 || s.W != 2 || s.Classes != 7 || len(s.Images) != 42 || len(s.Labels) != 7 {
		t.Fatalf("got N=%d C=%d H=%d W=%d classes=%d len=%d/%d", s.N, s.C, s.H, s.W, s.Classes, len(s.Images), len(s.Labels))
	}
	for i := range 7 {
		if got, want := s.Images[i*6+5], float32(i)/255; got != want {
			t.Errorf("image %d pixel = %v, want %v", i, got, want)
		}
		if s.Labels[i] != int32(6-i) {
			t.Errorf("label %d = %d, want %d", i, s.Labels[i], 6-i)
		}
	}

	// Count mismatch names both files.
	writeSet(t, dir, "im2", "lb2", 5, 3, 2, mod10, true)
	_, err = LoadIDX(filepath.Join(dir, "im"), filepath.Join(dir, "lb2.gz"))
	if err == nil || !strings.Contains(err.Error(), "holds 7 images but") || !strings.Contains(err.Error(), "lb2.gz holds 5 labels") {
		t.Fatalf("err = %v, want a count mismatch naming both files", err)
	}
	// A wrong-magic file is named.
	_, err = LoadIDX(filepath.Join(dir, "lb"), filepath.Join(dir, "lb"))
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "lb")+": wrong magic") {
		t.Fatalf("err = %v, want wrong magic naming the file", err)
	}
}

func TestLoadDirSplit(t *testing.T) {
	for _, gzipped := range []bool{false, true} {
		dir := filepath.Join(t.TempDir(), "fashion")
		os.Mkdir(dir, 0o755)
		writeSet(t, dir, TrainImagesFile, TrainLabelsFile, 120, 4, 4, mod10, gzipped)
		writeSet(t, dir, TestImagesFile, TestLabelsFile, 30, 4, 4, func(i int) byte { return byte(i % 3) }, gzipped)
		train, val, test, err := LoadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		// 120/12 = 10 held out for validation: the last 10.
		if train.N != 110 || val.N != 10 || test.N != 30 {
			t.Fatalf("split %d/%d/%d, want 110/10/30", train.N, val.N, test.N)
		}
		if train.Name != "fashion/train" || val.Name != "fashion/val" || test.Name != "fashion/test" {
			t.Errorf("names %q %q %q", train.Name, val.Name, test.Name)
		}
		if train.Classes != 10 || val.Classes != 10 || test.Classes != 10 {
			t.Errorf("classes %d %d %d, want 10 (from the training labels)", train.Classes, val.Classes, test.Classes)
		}
		if val.Images[0] != float32(110)/255 || val.Labels[0] != 0 || train.Images[len(train.Images)-1] != float32(109)/255 {
			t.Errorf("validation does not start at training image 110")
		}
		if len(train.Images) != 110*16 || len(val.Images) != 10*16 || len(test.Images) != 30*16 {
			t.Errorf("image lengths %d %d %d", len(train.Images), len(val.Images), len(test.Images))
		}
		// Not MNIST-shaped.
		if _, _, _, err := MNIST(dir); err == nil || !strings.Contains(err.Error(), "is not MNIST: 120 training and 30 test images of 4×4") {
			t.Errorf("MNIST err = %v", err)
		}
	}
}

func TestLoadDirErrors(t *testing.T) {
	root := t.TempDir()
	missing := filepath.Join(root, "nope")
	_, _, _, err := LoadDir(missing)
	if !errors.Is(err, ErrNoData) || !strings.Contains(err.Error(), "make data") || !strings.Contains(err.Error(), "hwnas data --out DIR") {
		t.Fatalf("missing folder: err = %v, want ErrNoData saying how to get the data", err)
	}

	half := filepath.Join(root, "half")
	os.Mkdir(half, 0o755)
	writeSet(t, half, TrainImagesFile, TrainLabelsFile, 24, 2, 2, mod10, true)
	_, _, _, err = LoadDir(half)
	if !errors.Is(err, ErrNoData) || !strings.Contains(err.Error(), "no "+TestImagesFile+"[.gz]") {
		t.Fatalf("missing test files: err = %v", err)
	}

	// Dotted names (as some mirrors spell them) are found.
	dotted := filepath.Join(root, "dotted")
	os.Mkdir(dotted, 0o755)
	writeSet(t, dotted, "train-images.idx3-ubyte", "train-labels.idx1-ubyte", 24, 2, 2, mod10, false)
	writeSet(t, dotted, "t10k-images.idx3-ubyte", "t10k-labels.idx1-ubyte", 5, 2, 2, mod10, false)
	if _, _, _, err := LoadDir(dotted); err != nil {
		t.Fatalf("dotted names: %v", err)
	}

	// A test label the training set never uses.
	cls := filepath.Join(root, "cls")
	os.Mkdir(cls, 0o755)
	writeSet(t, cls, TrainImagesFile, TrainLabelsFile, 24, 2, 2, func(i int) byte { return byte(i % 3) }, false)
	writeSet(t, cls, TestImagesFile, TestLabelsFile, 5, 2, 2, func(i int) byte { return byte(i) }, false)
	if _, _, _, err := LoadDir(cls); err == nil || !strings.Contains(err.Error(), "label 3 of sample 3 is outside 0..2") {
		t.Fatalf("test label range: err = %v", err)
	}

	// Test images of another size.
	size := filepath.Join(root, "size")
	os.Mkdir(size, 0o755)
	writeSet(t, size, TrainImagesFile, TrainLabelsFile, 24, 2, 2, mod10, false)
	writeSet(t, size, TestImagesFile, TestLabelsFile, 5, 3, 2, mod10, false)
	if _, _, _, err := LoadDir(size); err == nil || !strings.Contains(err.Error(), "holds 1×3×2 test images but") {
		t.Fatalf("size mismatch: err = %v", err)
	}

	// Too few to split.
	tiny := filepath.Join(root, "tiny")
	os.Mkdir(tiny, 0o755)
	writeSet(t, tiny, TrainImagesFile, TrainLabelsFile, 11, 2, 2, mod10, false)
	writeSet(t, tiny, TestImagesFile, TestLabelsFile, 5, 2, 2, mod10, false)
	if _, _, _, err := LoadDir(tiny); err == nil || !strings.Contains(err.Error(), "too few") {
		t.Fatalf("tiny: err = %v", err)
	}

	// A corrupt file is named with its problem.
	bad := filepath.Join(root, "bad")
	os.Mkdir(bad, 0o755)
	writeSet(t, bad, TrainImagesFile, TrainLabelsFile, 24, 2, 2, mod10, false)
	writeSet(t, bad, TestImagesFile, TestLabelsFile, 5, 2, 2, mod10, false)
	p := filepath.Join(bad, TestImagesFile)
	b, _ := os.ReadFile(p)
	os.WriteFile(p, b[:len(b)-3], 0o644)
	if _, _, _, err := LoadDir(bad); err == nil || errors.Is(err, ErrNoData) || !strings.Contains(err.Error(), p+": truncated") {
		t.Fatalf("truncated: err = %v", err)
	}
}

func TestSubsetSliceBatch(t *testing.T) {
	dir := t.TempDir()
	writeSet(t, dir, "im", "lb", 6, 1, 3, mod10, false)
	s, err := LoadIDX(filepath.Join(dir, "im"), filepath.Join(dir, "lb"))
	if err != nil {
		t.Fatal(err)
	}
	if sub := s.Subset(4); sub.N != 4 || len(sub.Images) != 12 || len(sub.Labels) != 4 || s.N != 6 {
		t.Errorf("Subset(4): N=%d len %d/%d (parent N=%d)", sub.N, len(sub.Images), len(sub.Labels), s.N)
	}
	if s.Subset(0) != s || s.Subset(6) != s || s.Subset(99) != s {
		t.Errorf("Subset(0/N/beyond N) should return the set itself")
	}
	if _, err := s.Slice(4, 3, "x"); err == nil {
		t.Errorf("Slice(4,3) accepted")
	}
	if _, err := s.Slice(0, 7, "x"); err == nil {
		t.Errorf("Slice(0,7) of 6 accepted")
	}

	x := make([]float32, 3*3)
	y := make([]int32, 3)
	if err := s.Batch([]int{5, 0, 2}, x, y); err != nil {
		t.Fatal(err)
	}
	wantX := []float32{5, 5, 5, 0, 0, 0, 2, 2, 2}
	for i := range wantX {
		if x[i] != wantX[i]/255 {
			t.Fatalf("x = %v, want %v/255", x, wantX)
		}
	}
	if y[0] != 5 || y[1] != 0 || y[2] != 2 {
		t.Fatalf("y = %v", y)
	}
	x[0] = -1
	if err := s.Batch([]int{1, 6}, x, y); err == nil || !strings.Contains(err.Error(), "sample index 6 is outside 0..5") {
		t.Fatalf("index 6: err = %v", err)
	}
	if x[0] != -1 {
		t.Errorf("Batch wrote before rejecting a bad index")
	}
	if err := s.Batch([]int{1, 2, 3, 4}, x, y); err == nil || !strings.Contains(err.Error(), "buffers hold 9 and 3") {
		t.Fatalf("small buffers: err = %v", err)
	}
}
