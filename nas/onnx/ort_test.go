//go:build cgo

package onnx

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSessionErrors: bad arguments and misuse give errors, not crashes.
func TestSessionErrors(t *testing.T) {
	model, err := Export(lenet300Plan(2), Metadata{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewSession(model, 0, SessionOptions{}); err == nil || !strings.Contains(err.Error(), "batch 0") {
		t.Errorf("batch 0: err %v", err)
	}
	if _, err := NewSession([]byte("not a model"), 1, SessionOptions{}); err == nil {
		t.Error("garbage model: want an error")
	}
	opt := filepath.Join(t.TempDir(), "optimized.onnx")
	s, err := NewSession(model, 2, SessionOptions{Threads: 1, OptimizedModelPath: opt})
	if err != nil {
		t.Fatal(err)
	}
	if s.Batch() != 2 || s.InputSize() != 784 || s.OutputSize() != 10 {
		t.Errorf("batch %d, sizes %d→%d", s.Batch(), s.InputSize(), s.OutputSize())
	}
	if st, err := os.Stat(opt); err != nil || st.Size() == 0 {
		t.Errorf("optimized model not written: %v", err)
	}
	if err := s.Run(make([]float32, 784), make([]float32, 20)); err == nil || !strings.Contains(err.Error(), "want 1568 and 20") {
		t.Errorf("short input: err %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := s.Run(make([]float32, 1568), make([]float32, 20)); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("run after close: err %v", err)
	}
}

// TestLibraryPathFromEnv: HWNAS_ORT_LIB wins, and a wrong value is an
// error that names it.
func TestLibraryPathFromEnv(t *testing.T) {
	lib, err := LibraryPath()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(LibraryEnv, lib)
	if got, err := LibraryPath(); err != nil || got != lib {
		t.Errorf("%s=%s: got %q, %v", LibraryEnv, lib, got, err)
	}
	missing := filepath.Join(t.TempDir(), "libonnxruntime.so")
	t.Setenv(LibraryEnv, missing)
	if _, err := LibraryPath(); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing library: err %v", err)
	}
}
