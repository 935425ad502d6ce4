package search

import (
	"strings"
	"testing"

	"hwnas/nas/data"
)

// TestShiftAugment: every copy is its original translated by one offset
// within the bound (never zero), pixels shifted in from outside are 0,
// labels follow, the originals come first unchanged, and the same seed
// gives the same set.
func TestShiftAugment(t *testing.T) {
	const n, c, h, w = 3, 2, 5, 4
	s := &data.Set{Name: "tiny", N: n, C: c, H: h, W: w, Classes: 3, Images: make([]float32, n*c*h*w), Labels: []int32{2, 0, 1}}
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
					found = equalF32(got, want)
				}
			}
			if !found {
				t.Fatalf("copies %d: sample %d is no allowed shift of sample %d: %v", tc.copies, j, i, got)
			}
		}
		b, _ := ShiftAugment(s, tc.copies, tc.shift, 7)
		if !equalF32(a.Images, b.Images) {
			t.Fatalf("copies %d: same seed, different images", tc.copies)
		}
	}
	// shiftImage itself on one 1×2×3 image: down 1, left 1.
	dst := make([]float32, 6)
	shiftImage(dst, []float32{1, 2, 3, 4, 5, 6}, 1, 2, 3, 1, -1)
	if !equalF32(dst, []float32{0, 0, 0, 2, 3, 0}) {
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

func equalF32(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
