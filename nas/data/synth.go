package data

import (
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"

	"hwnas/internal/atomicfile"
)

// Synthetic data sets in the real file formats, for tests and smoke runs
// where the real CIFAR-10 (which users download themselves) or a user's
// images are not at hand. Each class has its own pattern — a colour and
// a bright square at a class-dependent place — under uniform noise, so a
// network learns them in an epoch or two; the pixels are never a stand-in
// for the real data's accuracy, only for its format and shape.

// synthPixel returns channel ch of pixel (y, x) of an image of class k.
func synthPixel(rng *rand.Rand, k, ch, y, x, h, w int) byte {
	v := 40 + rng.IntN(60)
	// The class colour: channel ch is bright for some classes.
	if (k>>ch)&1 == 1 {
		v += 60
	}
	// A square of side ~h/3 whose position walks round the image.
	cy := (k * 7 % 5) * (h - h/3) / 4
	cx := (k * 3 % 5) * (w - w/3) / 4
	if y >= cy && y < cy+h/3 && x >= cx && x < cx+w/3 {
		v += 90
	}
	return byte(min(v, 255))
}

// synthImageBytes returns n images of c×h×w planar bytes and their labels
// (class i mod classes).
func synthImageBytes(n, classes, c, h, w int, seed uint64) (pix, labels []byte) {
	rng := rand.New(rand.NewPCG(seed, 0x5e7))
	pix = make([]byte, n*c*h*w)
	labels = make([]byte, n)
	for i := 0; i < n; i++ {
		k := i % classes
		labels[i] = byte(k)
		for ch := 0; ch < c; ch++ {
			for y := 0; y < h; y++ {
				for x := 0; x < w; x++ {
					pix[((i*c+ch)*h+y)*w+x] = synthPixel(rng, k, ch, y, x, h, w)
				}
			}
		}
	}
	return pix, labels
}

// WriteSyntheticCIFAR writes a CIFAR-10 (or CIFAR-100) set in the binary
// format into dir: trainBatches files data_batch_1.bin … of perBatch
// records each and a test_batch.bin of test records (CIFAR-100: one
// train.bin of trainBatches·perBatch records and test.bin), with
// batches.meta.txt naming the classes.
func WriteSyntheticCIFAR(dir string, kind CIFARKind, trainBatches, perBatch, test int, seed uint64) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	classes := int(kind)
	write := func(name string, n int, seed uint64) error {
		pix, lab := synthImageBytes(n, classes, 3, CIFARSide, CIFARSide, seed)
		rec := kind.RecordSize()
		b := make([]byte, n*rec)
		for i := 0; i < n; i++ {
			r := b[i*rec:]
			if kind == CIFAR100 {
				r[0], r = lab[i]/5, r[1:]
			}
			r[0] = lab[i]
			copy(r[1:], pix[i*CIFARPixels:(i+1)*CIFARPixels])
		}
		return atomicfile.WriteFile(filepath.Join(dir, name), b, 0o644)
	}
	if kind == CIFAR100 {
		if err := write(cifar100Train, trainBatches*perBatch, seed); err != nil {
			return err
		}
		return write(cifar100Test, test, seed+1000)
	}
	for i := 1; i <= trainBatches; i++ {
		if err := write(fmt.Sprintf("data_batch_%d.bin", i), perBatch, seed+uint64(i)); err != nil {
			return err
		}
	}
	if err := write(cifar10Test, test, seed+1000); err != nil {
		return err
	}
	names := "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n"
	return atomicfile.WriteFile(filepath.Join(dir, cifar10Names), []byte(names), 0o644)
}

// SyntheticImages describes an image folder WriteSyntheticImages writes.
type SyntheticImages struct {
	Classes, PerClass int
	H, W              int
	Grey              bool
	// JPEG writes every third image as a JPEG (quality 95) instead of PNG.
	JPEG bool
	// Sizes, when set, gives image i the size Sizes[i%len(Sizes)] ([H, W])
	// instead of H×W (a folder that needs --resize).
	Sizes [][2]int
	Seed  uint64
}

// WriteSyntheticImages writes an image folder into dir: class folders
// class0, class1, … of PerClass images each.
func WriteSyntheticImages(dir string, s SyntheticImages) error {
	c := 3
	if s.Grey {
		c = 1
	}
	for k := 0; k < s.Classes; k++ {
		cdir := filepath.Join(dir, fmt.Sprintf("class%d", k))
		if err := os.MkdirAll(cdir, 0o755); err != nil {
			return err
		}
		rng := rand.New(rand.NewPCG(s.Seed, uint64(k)))
		for i := 0; i < s.PerClass; i++ {
			h, w := s.H, s.W
			if len(s.Sizes) > 0 {
				h, w = s.Sizes[i%len(s.Sizes)][0], s.Sizes[i%len(s.Sizes)][1]
			}
			var img image.Image
			if s.Grey {
				g := image.NewGray(image.Rect(0, 0, w, h))
				for y := 0; y < h; y++ {
					for x := 0; x < w; x++ {
						g.SetGray(x, y, color.Gray{synthPixel(rng, k, 0, y, x, h, w)})
					}
				}
				img = g
			} else {
				m := image.NewRGBA(image.Rect(0, 0, w, h))
				for y := 0; y < h; y++ {
					for x := 0; x < w; x++ {
						var px [3]byte
						for ch := 0; ch < c; ch++ {
							px[ch] = synthPixel(rng, k, ch, y, x, h, w)
						}
						m.SetRGBA(x, y, color.RGBA{px[0], px[1], px[2], 255})
					}
				}
				img = m
			}
			name := filepath.Join(cdir, fmt.Sprintf("img%04d", i))
			var err error
			if s.JPEG && i%3 == 2 {
				err = writeImage(name+".jpg", func(f *os.File) error { return jpeg.Encode(f, img, &jpeg.Options{Quality: 95}) })
			} else {
				err = writeImage(name+".png", func(f *os.File) error { return png.Encode(f, img) })
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

func writeImage(path string, enc func(*os.File) error) error {
	return atomicfile.Write(path, 0o644, enc)
}
