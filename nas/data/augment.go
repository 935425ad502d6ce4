package data

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
)

// Augment is the random transformation of every training batch, drawn
// anew for each image each time it is used (so an epoch sees other
// versions of the images than the last): a random crop with zero padding
// of Pad pixels on each side (equivalently, a translation by (dy, dx)
// drawn uniformly from [−Pad, Pad]², with black shifted in), then, with
// Flip, a horizontal mirror with probability ½. The zero value does
// nothing. It is what natural images are trained with (crop+flip, as for
// CIFAR-10); digits get none by default (a mirrored 2 is no digit).
type Augment struct {
	Pad  int  `json:"pad,omitempty"`
	Flip bool `json:"flip,omitempty"`
}

// AugmentAuto is the --augment value that picks the augmentation for the
// data: AutoAugment.
const AugmentAuto = "auto"

// ParseAugment reads an --augment value: "none", or a comma-separated
// list of "crop" (padding ⌈min(H,W)/8⌉ pixels: 4 for 32×32), "crop=P"
// and "flip". "auto" is resolved by AutoAugment, which needs the data
// shape; ParseAugment refuses it.
func ParseAugment(spec string, h, w int) (Augment, error) {
	var a Augment
	spec = strings.TrimSpace(spec)
	if spec == "" || spec == "none" {
		return a, nil
	}
	for _, part := range strings.Split(spec, ",") {
		name, val, hasVal := strings.Cut(strings.TrimSpace(part), "=")
		switch {
		case name == "flip" && !hasVal:
			a.Flip = true
		case name == "crop":
			a.Pad = (min(h, w) + 7) / 8
			if hasVal {
				p, err := strconv.Atoi(val)
				if err != nil || p < 1 {
					return Augment{}, fmt.Errorf("--augment %q: crop padding %q must be a positive number of pixels", spec, val)
				}
				a.Pad = p
			}
		default:
			return Augment{}, fmt.Errorf("--augment %q: unknown part %q (use none, auto, or a list of crop, crop=P, flip)", spec, part)
		}
	}
	if a.Pad >= min(h, w) {
		return Augment{}, fmt.Errorf("--augment %q: crop padding %d is not below the image side %d", spec, a.Pad, min(h, w))
	}
	return a, nil
}

// AutoAugment is the default augmentation for images of c×h×w: crop+flip
// for colour images (natural images), none for one channel (digits and
// other glyphs, where mirroring changes the class).
func AutoAugment(c, h, w int) Augment {
	if c >= 3 {
		a, _ := ParseAugment("crop,flip", h, w)
		return a
	}
	return Augment{}
}

// String is the canonical --augment form: "none", "crop=4,flip", ….
func (a Augment) String() string {
	var parts []string
	if a.Pad > 0 {
		parts = append(parts, "crop="+strconv.Itoa(a.Pad))
	}
	if a.Flip {
		parts = append(parts, "flip")
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ",")
}

// IsZero reports whether a does nothing.
func (a Augment) IsZero() bool { return a.Pad == 0 && !a.Flip }

// Apply transforms the n images of x (each c×h×w, NCHW) in place, drawing
// from rng; scratch must hold one image (c·h·w floats).
func (a Augment) Apply(x []float32, n, c, h, w int, rng *rand.Rand, scratch []float32) {
	if a.IsZero() {
		return
	}
	size := c * h * w
	side := 2*a.Pad + 1
	for i := 0; i < n; i++ {
		img := x[i*size : (i+1)*size]
		if a.Pad > 0 {
			k := rng.IntN(side * side)
			if dy, dx := k/side-a.Pad, k%side-a.Pad; dy != 0 || dx != 0 {
				copy(scratch, img)
				shiftImage(img, scratch[:size], c, h, w, dy, dx)
			}
		}
		if a.Flip && rng.IntN(2) == 1 {
			for r := 0; r < c*h; r++ {
				row := img[r*w : (r+1)*w]
				for lo, hi := 0, w-1; lo < hi; lo, hi = lo+1, hi-1 {
					row[lo], row[hi] = row[hi], row[lo]
				}
			}
		}
	}
}

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
func ShiftAugment(s *Set, copies, maxShift int, seed uint64) (*Set, error) {
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
