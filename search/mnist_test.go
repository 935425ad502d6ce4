package search

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"hwnas/nas/data"
)

var (
	miniOnce sync.Once
	miniDir  string
	miniErr  error
)

// miniMNIST writes a small real-MNIST folder once per test binary: the
// first 1,200 training images (LoadDir holds out the last 100 for
// validation) and the first 500 test images, as raw IDX files.
func miniMNIST(t *testing.T) string {
	t.Helper()
	miniOnce.Do(func() {
		full, err := os.MkdirTemp("", "hwnas-mnist-full")
		if err != nil {
			miniErr = err
			return
		}
		defer os.RemoveAll(full)
		if _, err := data.Fetch(full); err != nil {
			miniErr = err
			return
		}
		train, val, test, err := data.LoadDir(full)
		if err != nil {
			miniErr = err
			return
		}
		_ = val
		miniDir, miniErr = os.MkdirTemp("", "hwnas-mnist-mini")
		if miniErr != nil {
			return
		}
		for _, f := range []struct {
			set  *data.Set
			n    int
			imgs string
			lbls string
		}{{train, 1200, data.TrainImagesFile, data.TrainLabelsFile}, {test, 500, data.TestImagesFile, data.TestLabelsFile}} {
			if miniErr = writeIDX(filepath.Join(miniDir, f.imgs), filepath.Join(miniDir, f.lbls), f.set.Subset(f.n)); miniErr != nil {
				return
			}
		}
	})
	if miniErr != nil {
		t.Fatalf("mini MNIST: %v", miniErr)
	}
	return miniDir
}

// writeIDX writes s as IDX images (0x803, pixels back to bytes) and
// labels (0x801).
func writeIDX(imgPath, lblPath string, s *data.Set) error {
	var b bytes.Buffer
	for _, v := range []uint32{0x803, uint32(s.N), uint32(s.H), uint32(s.W)} {
		_ = binary.Write(&b, binary.BigEndian, v)
	}
	for _, x := range s.Images {
		b.WriteByte(byte(min(255, max(0, x*255+0.5))))
	}
	if err := os.WriteFile(imgPath, b.Bytes(), 0o644); err != nil {
		return err
	}
	b.Reset()
	for _, v := range []uint32{0x801, uint32(s.N)} {
		_ = binary.Write(&b, binary.BigEndian, v)
	}
	for _, l := range s.Labels {
		b.WriteByte(byte(l))
	}
	return os.WriteFile(lblPath, b.Bytes(), 0o644)
}
