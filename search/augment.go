package search

import (
	"fmt"
	"math/rand/v2"

	"hwnas/nas/data"
)

// ShiftAugment returns a new set holding s's samples followed by copies
// further versions of every sample, each translated by its own random
// offset (dx, dy) drawn uniformly from [−maxShift, maxShift]² without
// (0, 0): output pixel (y, x) of a copy is input pixel (y−dy, x−dx), or 0
// where that falls outside the image (MNIST's background). Labels follow
// their images. The same seed gives the same set. It is the random-shift
// augmentation of small MNIST networks, made once before training (static,
// so nas.Train's shuffling and schedule stay as they are); an epoch over
// the result costs copies+1 epochs over s. It fails on copies < 0, on
// maxShift < 1 when copies > 0, and on a shift as large as the image.
func ShiftAugment(s *data.Set, copies, maxShift int, seed uint64) (*data.Set, error) {
	if s == nil {
		return nil, fmt.Errorf("shift augmentation: no data set")
	}
	if copies < 0 {
		return nil, fmt.Errorf("shift augmentation of %s: %d copies (want ≥ 0)", s.Name, copies)
	}
	if copies > 0 && (maxShift < 1 || maxShift >= s.H || maxShift >= s.W) {
		return nil, fmt.Errorf("shift augmentation of %s: shift %d is not in [1, %d)", s.Name, maxShift, min(s.H, s.W))
	}
	n, ss := s.N, s.SampleSize()
	out := *s
	out.Name = fmt.Sprintf("%s+%d×shift%d", s.Name, copies, maxShift)
	out.N = n * (copies + 1)
	out.Images = make([]float32, out.N*ss)
	out.Labels = make([]int32, out.N)
	copy(out.Images, s.Images[:n*ss])
	copy(out.Labels, s.Labels[:n])
	rng := rand.New(rand.NewPCG(seed, 0x5617f7))
	side := 2*maxShift + 1
	for c := 1; c <= copies; c++ {
		for i := 0; i < n; i++ {
			k := rng.IntN(side*side - 1) // skip the centre (no shift)
			if k >= side*side/2 {
				k++
			}
			dy, dx := k/side-maxShift, k%side-maxShift
			j := c*n + i
			out.Labels[j] = s.Labels[i]
			shiftImage(out.Images[j*ss:(j+1)*ss], s.Images[i*ss:(i+1)*ss], s.C, s.H, s.W, dy, dx)
		}
	}
	return &out, nil
}

// shiftImage writes src translated by (dy, dx) into dst (zeroed first is
// not needed: every pixel is written).
func shiftImage(dst, src []float32, c, h, w, dy, dx int) {
	for ch := 0; ch < c; ch++ {
		base := ch * h * w
		for y := 0; y < h; y++ {
			row := dst[base+y*w : base+(y+1)*w]
			sy := y - dy
			if sy < 0 || sy >= h {
				clear(row)
				continue
			}
			for x := range row {
				sx := x - dx
				if sx < 0 || sx >= w {
					row[x] = 0
				} else {
					row[x] = src[base+sy*w+sx]
				}
			}
		}
	}
}
