package data

import (
	"fmt"
	"math"
)

// Set is a labelled image-classification data set held in memory.
type Set struct {
	Name       string // e.g. "mnist/train"
	N, C, H, W int    // samples, channels, height, width
	Classes    int    // labels are 0..Classes-1
	// Images holds N·C·H·W values in NCHW order, each pixel byte scaled
	// to [0,1] as b/255.
	Images []float32
	Labels []int32 // N labels
}

// SampleSize is the number of floats of one image, C·H·W.
func (s *Set) SampleSize() int { return s.C * s.H * s.W }

// Subset returns a view of the first n samples (sharing memory with s).
// n ≤ 0 or n ≥ s.N gives s itself.
func (s *Set) Subset(n int) *Set {
	if n <= 0 || n >= s.N {
		return s
	}
	sub := *s
	sub.Name = fmt.Sprintf("%s[:%d]", s.Name, n)
	sub.N = n
	sub.Images = s.Images[:n*s.SampleSize()]
	sub.Labels = s.Labels[:n]
	return &sub
}

// Slice returns a view of samples [from, to) (sharing memory with s).
func (s *Set) Slice(from, to int, name string) (*Set, error) {
	if from < 0 || to > s.N || from >= to {
		return nil, fmt.Errorf("%s: slice [%d, %d) is outside the %d samples", s.Name, from, to, s.N)
	}
	sub := *s
	sub.Name = name
	sub.N = to - from
	k := s.SampleSize()
	sub.Images = s.Images[from*k : to*k : to*k]
	sub.Labels = s.Labels[from:to:to]
	return &sub, nil
}

// Batch gathers the samples idx into x (len(idx)·C·H·W floats, NCHW) and
// y (len(idx) labels). It checks the buffer sizes and every index first and
// writes nothing when one is wrong.
func (s *Set) Batch(idx []int, x []float32, y []int32) error {
	k := s.SampleSize()
	if len(x) < len(idx)*k || len(y) < len(idx) {
		return fmt.Errorf("%s: batch of %d needs %d image floats and %d labels, buffers hold %d and %d",
			s.Name, len(idx), len(idx)*k, len(idx), len(x), len(y))
	}
	for _, i := range idx {
		if i < 0 || i >= s.N {
			return fmt.Errorf("%s: sample index %d is outside 0..%d", s.Name, i, s.N-1)
		}
	}
	for b, i := range idx {
		copy(x[b*k:(b+1)*k], s.Images[i*k:(i+1)*k])
		y[b] = s.Labels[i]
	}
	return nil
}

// LoadIDX reads an images file (MagicImages, N×H×W unsigned bytes) and a
// labels file (MagicLabels, N unsigned bytes), raw or gzip, into a Set with
// one channel. The two counts must agree. Classes is the largest label + 1.
func LoadIDX(imagesPath, labelsPath string) (*Set, error) {
	im, err := ReadIDXFile(imagesPath, MagicImages)
	if err != nil {
		return nil, err
	}
	lb, err := ReadIDXFile(labelsPath, MagicLabels)
	if err != nil {
		return nil, err
	}
	return fromIDX(imagesPath, im, labelsPath, lb)
}

func fromIDX(imagesPath string, im *IDX, labelsPath string, lb *IDX) (*Set, error) {
	n, h, w := im.Dims[0], im.Dims[1], im.Dims[2]
	if lb.Dims[0] != n {
		return nil, fmt.Errorf("%s holds %d images but %s holds %d labels", imagesPath, n, labelsPath, lb.Dims[0])
	}
	s := setFromBytes(imagesPath, n, 1, h, w, 0, im.Data, lb.Data)
	for _, b := range lb.Data {
		s.Classes = max(s.Classes, int(b)+1)
	}
	return s, nil
}

// ChannelStats returns the mean and standard deviation of each channel's
// values over all samples (accumulated in float64): the per-channel
// normalisation (x − mean)/std a model applies to its input. A channel of
// one value gets std 1, so the normalisation never divides by zero.
func (s *Set) ChannelStats() (mean, std []float32) {
	mean, std = make([]float32, s.C), make([]float32, s.C)
	plane := s.H * s.W
	for c := 0; c < s.C; c++ {
		var sum, sq float64
		for i := 0; i < s.N; i++ {
			for _, v := range s.Images[(i*s.C+c)*plane : (i*s.C+c+1)*plane] {
				sum += float64(v)
				sq += float64(v) * float64(v)
			}
		}
		n := float64(s.N * plane)
		if n == 0 {
			std[c] = 1
			continue
		}
		m := sum / n
		sd := math.Sqrt(max(0, sq/n-m*m))
		if sd < 1e-6 {
			sd = 1
		}
		mean[c], std[c] = float32(m), float32(sd)
	}
	return mean, std
}

// checkLabels reports the first label outside 0..classes-1.
func (s *Set) checkLabels(classes int) error {
	for i, l := range s.Labels {
		if l < 0 || int(l) >= classes {
			return fmt.Errorf("%s: label %d of sample %d is outside 0..%d", s.Name, l, i, classes-1)
		}
	}
	return nil
}
