package cpu

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestEnvISA runs this test binary again with HWNAS_ISA set, since the
// variable is read once at start-up: a supported level is used, an unknown
// or unsupported one is reported once on stderr and the best level is used.
func TestEnvISA(t *testing.T) {
	if os.Getenv("HWNAS_ISA_TEST_CHILD") == "1" {
		fmt.Printf("isa=%s err=%v\n", ISA(), EnvISAError())
		return
	}
	sup := SupportedISAs()
	best := sup[len(sup)-1]
	type envCase struct{ env, wantOut, wantStderr string }
	cases := []envCase{
		{"generic", "isa=generic err=<nil>", ""},
		{best, "isa=" + best + " err=<nil>", ""},
		{"avx1024", "isa=" + best + " err=HWNAS_ISA=avx1024: unknown ISA level", "hwnas: HWNAS_ISA=avx1024: unknown ISA level"},
	}
	l := lackedISA()
	cases = append(cases, envCase{l, "isa=" + best + " err=HWNAS_ISA=" + l, "is not supported by this CPU"})
	for _, tc := range cases {
		cmd := exec.Command(os.Args[0], "-test.run=^TestEnvISA$")
		cmd.Env = append(os.Environ(), "HWNAS_ISA_TEST_CHILD=1", EnvISA+"="+tc.env)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s=%s: %v\n%s%s", EnvISA, tc.env, err, out, stderr.String())
		}
		if !strings.Contains(string(out), tc.wantOut) {
			t.Errorf("%s=%s: output %q, want it to contain %q", EnvISA, tc.env, out, tc.wantOut)
		}
		if n := strings.Count(stderr.String(), "hwnas:"); (tc.wantStderr == "") != (n == 0) || n > 1 || !strings.Contains(stderr.String(), tc.wantStderr) {
			t.Errorf("%s=%s: stderr %q, want %q reported once", EnvISA, tc.env, stderr.String(), tc.wantStderr)
		}
	}
}

// TestKernelLevels says which kernel levels this machine tests: the other
// kernel tests run at every level SupportedISAs lists, and a level of this
// architecture that this CPU lacks shows here as skipped (`make test`
// prints these lines), so a green run on an AVX2-only machine says plainly
// that the AVX-512 kernels went untested there. (The arm64 levels are
// tested by make test-arm64, under qemu.)
func TestKernelLevels(t *testing.T) {
	sup := SupportedISAs()
	for _, l := range archLevels {
		level := l.name
		t.Run(level, func(t *testing.T) {
			if !slices.Contains(sup, level) {
				t.Skipf("kernel level %s untested: this CPU lacks it (supported: %s)", level, strings.Join(sup, ", "))
			}
			ext := ""
			switch {
			case level == ISAAVX512 && HasVNNI():
				ext = " with and without VNNI"
			case level == ISAAVX512:
				ext = " without VNNI"
			case level == ISAARM64 && HasDotProd():
				ext = " with and without the dot product"
			case level == ISAARM64:
				ext = " without the dot product"
			}
			t.Logf("kernel level %s tested%s", level, ext)
		})
	}
}

// lackedISA is a known level this CPU cannot run: there is always one, since
// no CPU has both the x86 and the arm64 levels.
func lackedISA() string {
	for _, n := range isaNames {
		if !slices.Contains(SupportedISAs(), n) {
			return n
		}
	}
	panic("every ISA level is supported")
}
