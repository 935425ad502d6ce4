package data

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadCIFAR10 writes a small CIFAR-10 set in the binary format and
// loads it: batches in numeric order, the last twelfth held out for
// validation, pixels scaled to [0,1] in C×H×W order, class names read.
func TestLoadCIFAR10(t *testing.T) {
	for _, sub := range []string{"", "cifar-10-batches-bin"} {
		root := filepath.Join(t.TempDir(), "cifar")
		dir := filepath.Join(root, sub)
		// 11 batches so that "data_batch_10" must sort after "data_batch_2".
		if err := WriteSyntheticCIFAR(dir, CIFAR10, 11, 12, 20, 1); err != nil {
			t.Fatal(err)
		}
		d, err := Load(root, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if d.Info.Format != FormatCIFAR10 || d.Train.N != 121 || d.Val.N != 11 || d.Test.N != 20 {
			t.Fatalf("format %s split %d/%d/%d, want cifar10 121/11/20", d.Info.Format, d.Train.N, d.Val.N, d.Test.N)
		}
		for _, s := range []*Set{d.Train, d.Val, d.Test} {
			if s.C != 3 || s.H != 32 || s.W != 32 || s.Classes != 10 {
				t.Fatalf("%s: %d×%d×%d, %d classes", s.Name, s.C, s.H, s.W, s.Classes)
			}
		}
		if len(d.Info.ClassNames) != 10 || d.Info.ClassNames[3] != "cat" {
			t.Errorf("class names %v", d.Info.ClassNames)
		}
		// Record 0 of batch 10 is training image 9·12 = 108: compare with
		// the file's bytes.
		b, err := os.ReadFile(filepath.Join(dir, "data_batch_10.bin"))
		if err != nil {
			t.Fatal(err)
		}
		img := d.Train.Images[108*CIFARPixels : 109*CIFARPixels]
		for _, j := range []int{0, 1023, 1024, 2048 + 33, 3071} {
			if want := float32(b[1+j]) / 255; img[j] != want {
				t.Fatalf("image 108 value %d = %v, want %v (byte %d)", j, img[j], want, b[1+j])
			}
		}
		if d.Train.Labels[108] != int32(b[0]) {
			t.Errorf("label of image 108 = %d, want %d", d.Train.Labels[108], b[0])
		}
		if len(d.Info.Mean) != 3 || len(d.Info.Std) != 3 || d.Info.Std[0] <= 0 {
			t.Errorf("stats %v %v", d.Info.Mean, d.Info.Std)
		}
	}
}

func TestLoadCIFAR100FineLabels(t *testing.T) {
	dir := t.TempDir()
	if err := WriteSyntheticCIFAR(dir, CIFAR100, 2, 60, 10, 3); err != nil {
		t.Fatal(err)
	}
	d, err := Load(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Info.Format != FormatCIFAR100 || d.Train.Classes != 100 || d.Train.N+d.Val.N != 120 {
		t.Fatalf("format %s classes %d, %d+%d images", d.Info.Format, d.Train.Classes, d.Train.N, d.Val.N)
	}
	// Synthetic fine label of image i is i mod 100 (coarse i mod 100 / 5).
	if d.Train.Labels[99] != 99 || d.Train.Labels[57] != 57 {
		t.Errorf("fine labels %d %d, want 99 57", d.Train.Labels[99], d.Train.Labels[57])
	}
}

// TestCIFARBadFiles: a truncated batch, a label out of range and a missing
// test batch are errors that name the file.
func TestCIFARBadFiles(t *testing.T) {
	dir := t.TempDir()
	if err := WriteSyntheticCIFAR(dir, CIFAR10, 2, 12, 12, 1); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "data_batch_2.bin")
	b, _ := os.ReadFile(p)
	os.WriteFile(p, b[:len(b)-100], 0o644)
	_, err := Load(dir, Options{})
	if err == nil || !strings.Contains(err.Error(), p+": truncated") || !strings.Contains(err.Error(), "11 whole 3073-byte records and 2973 bytes more") {
		t.Fatalf("truncated: %v", err)
	}
	b[3073*5] = 10 // record 5's label
	os.WriteFile(p, b, 0o644)
	if _, err = Load(dir, Options{}); err == nil || !strings.Contains(err.Error(), p+": record 5 (byte 15365): label 10 is outside 0..9") {
		t.Fatalf("label: %v", err)
	}
	os.WriteFile(p, nil, 0o644)
	if _, err = Load(dir, Options{}); err == nil || !strings.Contains(err.Error(), p+": empty file") {
		t.Fatalf("empty: %v", err)
	}
	os.Remove(filepath.Join(dir, "test_batch.bin"))
	if _, err = Load(dir, Options{}); !errors.Is(err, ErrNoData) || !strings.Contains(err.Error(), "no test_batch.bin") {
		t.Fatalf("no test batch: %v", err)
	}
	// CIFAR files do not resize.
	dir2 := t.TempDir()
	WriteSyntheticCIFAR(dir2, CIFAR10, 1, 24, 12, 1)
	if _, err = Load(dir2, Options{Resize: []int{16, 16}}); err == nil || !strings.Contains(err.Error(), "--resize applies to image folders only") {
		t.Fatalf("resize: %v", err)
	}
}

func TestParseCIFARCIFAR100Labels(t *testing.T) {
	rec := make([]byte, CIFAR100.RecordSize())
	rec[0], rec[1] = 20, 3
	if _, _, err := ParseCIFAR(rec, CIFAR100); err == nil || !strings.Contains(err.Error(), "coarse label 20 is outside 0..19") {
		t.Fatalf("coarse: %v", err)
	}
	rec[0], rec[1] = 19, 100
	if _, _, err := ParseCIFAR(rec, CIFAR100); err == nil || !strings.Contains(err.Error(), "fine label 100 is outside 0..99") {
		t.Fatalf("fine: %v", err)
	}
	rec[1] = 42
	rec[2], rec[len(rec)-1] = 7, 9
	pix, lab, err := ParseCIFAR(rec, CIFAR100)
	if err != nil || len(pix) != CIFARPixels || lab[0] != 42 || pix[0] != 7 || pix[CIFARPixels-1] != 9 {
		t.Fatalf("parse: %v %d %v", err, len(pix), lab)
	}
}

// FuzzParseCIFAR: any bytes either parse into whole records with labels
// in range or give an error; never a panic.
func FuzzParseCIFAR(f *testing.F) {
	rec := make([]byte, CIFAR10.RecordSize())
	rec[0] = 3
	f.Add(rec, false)
	f.Add(append(rec, rec...), false)
	f.Add(rec[:100], false)
	f.Add(make([]byte, CIFAR100.RecordSize()), true)
	f.Add([]byte{}, true)
	f.Fuzz(func(t *testing.T, b []byte, hundred bool) {
		kind := CIFAR10
		if hundred {
			kind = CIFAR100
		}
		pix, lab, err := ParseCIFAR(b, kind)
		if err != nil {
			return
		}
		n := len(b) / kind.RecordSize()
		if n == 0 || len(b)%kind.RecordSize() != 0 || len(pix) != n*CIFARPixels || len(lab) != n {
			t.Fatalf("%d bytes parsed into %d pixels, %d labels", len(b), len(pix), len(lab))
		}
		for _, l := range lab {
			if int(l) >= int(kind) {
				t.Fatalf("label %d accepted for %s", l, kind)
			}
		}
	})
}
