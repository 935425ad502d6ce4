//go:build cgo

package onnx

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	ort "github.com/yalue/onnxruntime_go"

	"hwnas/accel"
)

// LibraryEnv names the environment variable that points at onnxruntime's
// shared library; without it the library is looked for where
// scripts/deps.sh installs it, under the module root.
const LibraryEnv = "HWNAS_ORT_LIB"

// DefaultLibrary is where scripts/deps.sh puts onnxruntime's shared library
// for this build's architecture, relative to the module root: the npm
// package onnxruntime-node ships one per architecture, under Node's name for
// it (x64 for amd64, arm64).
var DefaultLibrary = ".cache/onnxruntime/node_modules/onnxruntime-node/bin/napi-v6/linux/" + nodeArch(runtime.GOARCH) + "/libonnxruntime.so.1"

func nodeArch(goarch string) string {
	if goarch == "amd64" {
		return "x64"
	}
	return goarch
}

// LibraryPath returns the onnxruntime shared library to load: $HWNAS_ORT_LIB
// when set, else DefaultLibrary under the first folder holding a go.mod
// found walking up from the working directory or from the executable's
// folder. The error says how to install the library.
func LibraryPath() (string, error) {
	if p := os.Getenv(LibraryEnv); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("onnxruntime: %s=%s: %w", LibraryEnv, p, err)
		}
		return p, nil
	}
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if exe, err := os.Executable(); err == nil {
		starts = append(starts, filepath.Dir(exe))
	}
	for _, dir := range starts {
		for {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				lib := filepath.Join(dir, DefaultLibrary)
				if _, err := os.Stat(lib); err == nil {
					return lib, nil
				}
				break
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	return "", fmt.Errorf("onnxruntime: shared library not found: run scripts/deps.sh in the hwnas source tree (it installs %s) or set %s to a libonnxruntime.so", DefaultLibrary, LibraryEnv)
}

var (
	envOnce sync.Once
	envErr  error
)

// InitRuntime loads onnxruntime (LibraryPath) and creates its process-wide
// environment once; later calls return the first call's result.
func InitRuntime() error {
	envOnce.Do(func() {
		lib, err := LibraryPath()
		if err != nil {
			envErr = err
			return
		}
		ort.SetSharedLibraryPath(lib)
		if err := ort.InitializeEnvironment(ort.WithLogLevelError()); err != nil {
			envErr = fmt.Errorf("onnxruntime: loading %s: %w", lib, err)
		}
	})
	return envErr
}

// RuntimeVersion returns the loaded onnxruntime's version string.
func RuntimeVersion() string {
	if InitRuntime() != nil {
		return ""
	}
	return ort.GetVersion()
}

// SessionOptions configure an onnxruntime session.
type SessionOptions struct {
	// Threads is onnxruntime's intra-op thread count (0: its default).
	// Execution is sequential (one inter-op thread) with all graph
	// optimisations on unless Unoptimized.
	Threads int
	// OptimizedModelPath, when set, is where onnxruntime writes the graph
	// after its optimisations (to see which kernels it chose).
	OptimizedModelPath string
	// ProfilePrefix, when set, turns on onnxruntime's profiler: when the
	// session is closed it writes a Chrome-trace JSON file whose name
	// starts with this prefix (see ReadProfile).
	ProfilePrefix string
	// Unoptimized turns onnxruntime's graph optimisations off, so the model
	// runs node by node as written (QDQ pairs stay float arithmetic
	// instead of being fused into integer kernels).
	Unoptimized bool
}

// Session runs an ONNX model with one float32 input and one float32 output
// at a fixed batch size in onnxruntime. It implements accel.Program, so
// accel.MeasureProgram times it exactly as it times hwnas's own programs.
// A Session is not safe for concurrent use.
type Session struct {
	batch, inSize, outSize int
	in, out                *ort.Tensor[float32]
	s                      *ort.AdvancedSession
}

var _ accel.Program = (*Session)(nil)

// NewSession compiles model for batch samples per Run. The model must have
// one input and one output, float32 tensors whose only symbolic dimension,
// if any, is the leading batch dimension.
func NewSession(model []byte, batch int, opt SessionOptions) (*Session, error) {
	if batch <= 0 {
		return nil, fmt.Errorf("onnxruntime: batch %d, want ≥ 1", batch)
	}
	if err := InitRuntime(); err != nil {
		return nil, err
	}
	ins, outs, err := ort.GetInputOutputInfoWithONNXData(model)
	if err != nil {
		return nil, fmt.Errorf("onnxruntime: reading the model's inputs and outputs: %w", err)
	}
	if len(ins) != 1 || len(outs) != 1 {
		return nil, fmt.Errorf("onnxruntime: the model has %d inputs and %d outputs, want 1 and 1", len(ins), len(outs))
	}
	shape := func(info ort.InputOutputInfo) (ort.Shape, error) {
		if info.DataType != ort.TensorElementDataTypeFloat {
			return nil, fmt.Errorf("onnxruntime: %q is %v, want float32", info.Name, info.DataType)
		}
		s := info.Dimensions.Clone()
		for i, d := range s {
			if d < 0 {
				if i != 0 {
					return nil, fmt.Errorf("onnxruntime: %q has a symbolic dimension %d; only the batch (0) may be", info.Name, i)
				}
				s[i] = int64(batch)
			}
		}
		if len(s) == 0 || s[0] != int64(batch) {
			return nil, fmt.Errorf("onnxruntime: %q has shape %v, want a leading batch dimension", info.Name, info.Dimensions)
		}
		return s, nil
	}
	inShape, err := shape(ins[0])
	if err != nil {
		return nil, err
	}
	outShape, err := shape(outs[0])
	if err != nil {
		return nil, err
	}
	so, err := ort.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("onnxruntime: %w", err)
	}
	defer so.Destroy()
	for _, set := range []func() error{
		func() error { return so.SetExecutionMode(ort.ExecutionModeSequential) },
		func() error { return so.SetInterOpNumThreads(1) },
		func() error {
			if opt.Unoptimized {
				return so.SetGraphOptimizationLevel(ort.GraphOptimizationLevelDisableAll)
			}
			return so.SetGraphOptimizationLevel(ort.GraphOptimizationLevelEnableAll)
		},
		func() error {
			if opt.Threads > 0 {
				return so.SetIntraOpNumThreads(opt.Threads)
			}
			return nil
		},
		func() error {
			if opt.ProfilePrefix != "" {
				return so.EnableProfiling(opt.ProfilePrefix)
			}
			return nil
		},
		func() error {
			if opt.OptimizedModelPath != "" {
				return so.SetOptimizedModelFilePath(opt.OptimizedModelPath)
			}
			return nil
		},
	} {
		if err := set(); err != nil {
			return nil, fmt.Errorf("onnxruntime: session options: %w", err)
		}
	}
	s := &Session{batch: batch, inSize: int(inShape.FlattenedSize()) / batch, outSize: int(outShape.FlattenedSize()) / batch}
	if s.in, err = ort.NewEmptyTensor[float32](inShape); err != nil {
		return nil, fmt.Errorf("onnxruntime: input tensor: %w", err)
	}
	if s.out, err = ort.NewEmptyTensor[float32](outShape); err != nil {
		s.in.Destroy()
		return nil, fmt.Errorf("onnxruntime: output tensor: %w", err)
	}
	s.s, err = ort.NewAdvancedSessionWithONNXData(model, []string{ins[0].Name}, []string{outs[0].Name},
		[]ort.Value{s.in}, []ort.Value{s.out}, so)
	if err != nil {
		s.in.Destroy()
		s.out.Destroy()
		return nil, fmt.Errorf("onnxruntime: creating the session: %w", err)
	}
	return s, nil
}

// NewPlanSession exports p and opens it in onnxruntime.
func NewPlanSession(p *accel.Plan, batch int, opt SessionOptions) (*Session, error) {
	model, err := Export(p, Metadata{})
	if err != nil {
		return nil, err
	}
	return NewSession(model, batch, opt)
}

// Batch is the number of samples Run processes.
func (s *Session) Batch() int { return s.batch }

// InputSize is the number of input floats per sample.
func (s *Session) InputSize() int { return s.inSize }

// OutputSize is the number of output floats per sample.
func (s *Session) OutputSize() int { return s.outSize }

// Run copies Batch()·InputSize() floats from in into the session's input,
// runs the model and copies Batch()·OutputSize() floats to out.
func (s *Session) Run(in, out []float32) error {
	if s.s == nil {
		return errors.New("onnxruntime: session is closed")
	}
	if len(in) != s.batch*s.inSize || len(out) != s.batch*s.outSize {
		return fmt.Errorf("onnxruntime: run with %d inputs and %d outputs, want %d and %d", len(in), len(out), s.batch*s.inSize, s.batch*s.outSize)
	}
	copy(s.in.GetData(), in)
	if err := s.s.Run(); err != nil {
		return fmt.Errorf("onnxruntime: run: %w", err)
	}
	copy(out, s.out.GetData())
	return nil
}

// Close releases the session and its tensors.
func (s *Session) Close() error {
	if s.s == nil {
		return nil
	}
	err := errors.Join(s.s.Destroy(), s.in.Destroy(), s.out.Destroy())
	s.s = nil
	return err
}
