package data

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// TestShiftAugment: every copy is its original translated by one offset
// within the bound (never zero), pixels shifted in from outside are 0,
// labels follow, the originals come first unchanged, and the same seed
// gives the same set.
func TestShiftAugment(t *testing.T) {
	const n, c, h, w = 3, 2, 5, 4
	s := &Set{Name: "tiny", N: n, C: c, H: h, W: w, Classes: 3, Images: make([]float32, n*c*h*w), Labels: []int32{2, 0, 1}}
	for i := range s.Images {
		s.Images[i] = float32(i + 1) // all non-zero, all distinct
	}
	for _, tc := range []struct{ copies, shift int }{{0, 0}, {1, 1}, {3, 2}} {
		a, err := ShiftAugment(s, tc.copies, tc.shift, 7)
		if err != nil {
			t.Fatal(err)
		}
		if a.N != n*(tc.copies+1) || len(a.Images) != a.N*c*h*w || len(a.Labels) != a.N {
			t.Fatalf("copies %d: N %d, %d floats, %d labels", tc.copies, a.N, len(a.Images), len(a.Labels))
		}
		ss := s.SampleSize()
		for j := 0; j < a.N; j++ {
			i := j % n
			if a.Labels[j] != s.Labels[i] {
				t.Fatalf("sample %d: label %d, want %d", j, a.Labels[j], s.Labels[i])
			}
			got, src := a.Images[j*ss:(j+1)*ss], s.Images[i*ss:(i+1)*ss]
			// Find the offset that explains the copy.
			found := false
			for dy := -tc.shift; dy <= tc.shift && !found; dy++ {
				for dx := -tc.shift; dx <= tc.shift && !found; dx++ {
					if (dy == 0 && dx == 0) != (j < n) {
						continue // originals are unshifted, copies are shifted
					}
					want := make([]float32, ss)
					shiftImage(want, src, c, h, w, dy, dx)
					found = slices.Equal(got, want)
				}
			}
			if !found {
				t.Fatalf("copies %d: sample %d is no allowed shift of sample %d: %v", tc.copies, j, i, got)
			}
		}
		b, _ := ShiftAugment(s, tc.copies, tc.shift, 7)
		if !slices.Equal(a.Images, b.Images) {
			t.Fatalf("copies %d: same seed, different images", tc.copies)
		}
	}
	// shiftImage itself on one 1×2×3 image: down 1, left 1.
	dst := make([]float32, 6)
	shiftImage(dst, []float32{1, 2, 3, 4, 5, 6}, 1, 2, 3, 1, -1)
	if !slices.Equal(dst, []float32{0, 0, 0, 2, 3, 0}) {
		t.Fatalf("shift (1,−1): %v", dst)
	}
	for _, tc := range []struct {
		copies, shift int
		want          string
	}{
		{-1, 2, "-1 copies"},
		{1, 0, "shift 0"},
		{1, 4, "shift 4"},
	} {
		if _, err := ShiftAugment(s, tc.copies, tc.shift, 1); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("copies %d shift %d: error %v, want %q", tc.copies, tc.shift, err, tc.want)
		}
	}
}

// TestAugmentApply: each augmented image is its original shifted by at
// most Pad (black shifted in) and possibly mirrored; over many draws
// every shift and both mirror states occur; the same seed repeats.
func TestAugmentApply(t *testing.T) {
	const n, c, h, w = 64, 3, 5, 6
	src := make([]float32, n*c*h*w)
	for i := range src {
		src[i] = float32(i%97 + 1)
	}
	a := Augment{Pad: 1, Flip: true}
	run := func(seed uint64) []float32 {
		x := append([]float32(nil), src...)
		a.Apply(x, n, c, h, w, rand.New(rand.NewPCG(seed, 1)), make([]float32, c*h*w))
		return x
	}
	x := run(3)
	if !slices.Equal(x, run(3)) {
		t.Fatal("same seed, different batch")
	}
	seen := map[[3]int]bool{}
	size := c * h * w
	for i := 0; i < n; i++ {
		got, orig := x[i*size:(i+1)*size], src[i*size:(i+1)*size]
		match := false
		for dy := -1; dy <= 1 && !match; dy++ {
			for dx := -1; dx <= 1 && !match; dx++ {
				for flip := 0; flip < 2 && !match; flip++ {
					want := make([]float32, size)
					shiftImage(want, orig, c, h, w, dy, dx)
					if flip == 1 {
						for r := 0; r < c*h; r++ {
							slices.Reverse(want[r*w : (r+1)*w])
						}
					}
					if slices.Equal(got, want) {
						match = true
						seen[[3]int{dy, dx, flip}] = true
					}
				}
			}
		}
		if !match {
			t.Fatalf("image %d is no shift ≤ 1 (and mirror) of its original", i)
		}
	}
	if len(seen) < 12 {
		t.Errorf("only %d of 18 shift/mirror combinations drawn in %d images", len(seen), n)
	}
}

func TestParseAugment(t *testing.T) {
	for _, tc := range []struct {
		spec string
		h, w int
		want Augment
	}{
		{"none", 32, 32, Augment{}},
		{"", 28, 28, Augment{}},
		{"crop,flip", 32, 32, Augment{Pad: 4, Flip: true}},
		{"crop", 28, 28, Augment{Pad: 4}},
		{"crop=2", 28, 28, Augment{Pad: 2}},
		{"flip", 10, 10, Augment{Flip: true}},
	} {
		got, err := ParseAugment(tc.spec, tc.h, tc.w)
		if err != nil || got != tc.want {
			t.Errorf("ParseAugment(%q) = %+v, %v; want %+v", tc.spec, got, err, tc.want)
		}
		if again, err := ParseAugment(got.String(), tc.h, tc.w); err != nil || again != got {
			t.Errorf("%q does not read back: %+v %v", got.String(), again, err)
		}
	}
	for _, bad := range []string{"auto", "rotate", "crop=0", "crop=x", "flip=1", "crop=32"} {
		if _, err := ParseAugment(bad, 32, 32); err == nil {
			t.Errorf("ParseAugment(%q) accepted", bad)
		}
	}
	if AutoAugment(3, 32, 32) != (Augment{Pad: 4, Flip: true}) || !AutoAugment(1, 28, 28).IsZero() {
		t.Errorf("auto: colour %+v, grey %+v", AutoAugment(3, 32, 32), AutoAugment(1, 28, 28))
	}
}
