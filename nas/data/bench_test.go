package data

import (
	"path/filepath"
	"testing"
)

// BenchmarkMNIST times loading MNIST's four .gz files (decompression, checks,
// scaling to float32) into the three splits.
func BenchmarkMNIST(b *testing.B) {
	dir := filepath.Join(b.TempDir(), "mnist")
	if _, err := Fetch(dir); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, _, _, err := MNIST(dir); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBatch times gathering a shuffled batch of 64 MNIST-sized images.
func BenchmarkBatch(b *testing.B) {
	s := &Set{Name: "bench", N: 1000, C: 1, H: 28, W: 28, Classes: 10, Images: make([]float32, 1000*784), Labels: make([]int32, 1000)}
	idx := make([]int, 64)
	for i := range idx {
		idx[i] = (i * 397) % s.N
	}
	x, y := make([]float32, 64*784), make([]int32, 64)
	b.SetBytes(64 * 784 * 4)
	for b.Loop() {
		if err := s.Batch(idx, x, y); err != nil {
			b.Fatal(err)
		}
	}
}
