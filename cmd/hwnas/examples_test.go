//go:build cgo

package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"hwnas/nas/data"
	"hwnas/nas/onnx"
	"hwnas/store/pgtest"
)

// cliEnv makes the test binary run as hwnas itself (TestMain): the
// examples below run in their own processes, as a user would run them, and
// the workers a search starts (os.Executable() worker) inherit it.
const cliEnv = "HWNAS_TEST_AS_CLI"

// exampleOrder is the order the commands' examples run in, so that each
// finds the files and databases the earlier ones wrote (the weights train
// saves, the study search records).
var exampleOrder = []string{"data", "train", "compress", "search", "export", "bench ort", "best", "trials", "pareto", "measure", "import", "worker", "repro vgg16-cifar10", "specialize", "bench enas-rank"}

// exampleEdits are the only changes the test makes to the help's words:
// fewer epochs and trials (the MNIST folder `hwnas data` writes is cut to
// 1,200 training images; lenet5's one epoch on Fashion-MNIST keeps the whole
// set, as on 1,100 of its images SGD at 0.05 diverges), the test's
// PostgreSQL server for the example host, and one row of the VGG-16 table.
var exampleEdits = []struct{ from, to string }{
	{"--epochs 20", "--epochs 1"},
	{"--epochs 30", "--epochs 1"},
	{"--trials 20 --subset 1000", "--trials 2 --subset 300"},
	{"--synthetic 10", "--synthetic 2"},
	{"--trials 60 --subset 5000 --final-epochs 2", "--trials 3 --subset 300 --epochs 1 --enas-steps 5 --final-epochs 1 --final-subset 300"},
	{"--max-latency 20us --evaluations 50", "--max-latency 1s --evaluations 2"},
	{"--n 20", "--n 2"},
	{"--epochs 4 --subset 20000", "--epochs 1 --subset 300"},
}

// commandExamples returns every command's example lines by command path
// (without "hwnas "), comments after " #" removed.
func commandExamples(c *cobra.Command, out map[string][]string) {
	for _, line := range strings.Split(c.Example, "\n") {
		if i := strings.Index(line, " #"); i >= 0 {
			line = line[:i]
		}
		if line = strings.TrimSpace(line); line != "" {
			path := strings.TrimPrefix(c.CommandPath(), "hwnas ")
			out[path] = append(out[path], line)
		}
	}
	for _, s := range c.Commands() {
		commandExamples(s, out)
	}
}

// TestHelpExamplesRun runs every example of every command's --help, in one
// folder, as separate processes, and wants each to succeed.
func TestHelpExamplesRun(t *testing.T) {
	examples := map[string][]string{}
	commandExamples(rootCmd, examples)
	for cmd := range examples {
		if !strings.Contains(" "+strings.Join(exampleOrder, " ")+" ", " "+cmd+" ") {
			t.Fatalf("hwnas %s has examples: add it to exampleOrder", cmd)
		}
	}
	dir := t.TempDir()
	pg := pgtest.NewDatabase(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ort, err := onnx.LibraryPath() // found from the source tree, which the examples' folder is not in
	if err != nil {
		t.Fatal(err)
	}
	hwnas := func(args ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		c := exec.CommandContext(ctx, exe, args...)
		c.Dir, c.Env = dir, append(os.Environ(), cliEnv+"=1", onnx.LibraryEnv+"="+ort)
		out, err := c.CombinedOutput()
		if err != nil {
			t.Fatalf("hwnas %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	for _, cmd := range exampleOrder {
		// What the examples assume exists before them.
		switch cmd {
		case "train":
			if err := data.WriteSyntheticImages(filepath.Join(dir, "photos"), data.SyntheticImages{Classes: 3, PerClass: 10, H: 40, W: 36, Seed: 1}); err != nil {
				t.Fatal(err)
			}
		case "measure": // and import, worker: the study in PostgreSQL
			hwnas("import", "hwnas.db", "--db", pg)
		case "import":
			copyFile(t, filepath.Join(dir, "hwnas.db"), filepath.Join(dir, "board.db"))
		case "repro vgg16-cifar10":
			if err := os.MkdirAll(filepath.Join(dir, "docs"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := data.WriteSyntheticCIFAR(filepath.Join(dir, "data", "cifar10"), data.CIFAR10, 1, 20, 10, 1); err != nil {
				t.Fatal(err)
			}
		}
		for _, line := range examples[cmd] {
			for _, e := range exampleEdits {
				line = strings.ReplaceAll(line, e.from, e.to)
			}
			args := strings.Fields(line)
			if args[0] != "hwnas" {
				t.Fatalf("example %q does not start with hwnas", line)
			}
			args = args[1:]
			for i, a := range args {
				if strings.HasPrefix(a, "postgres://") {
					args[i] = pg
				}
			}
			if cmd == "repro vgg16-cifar10" {
				args = append(args, "--row", "compact: ResNet-20")
			}
			t.Logf("hwnas %s", strings.Join(args, " "))
			hwnas(args...)
			if args[0] == "data" && strings.HasSuffix(line, " data/mnist") {
				out := filepath.Join(dir, args[len(args)-1])
				writeMNISTSubset(t, out, out, 1200, 300) // cut to what a test affords
			}
		}
	}
	for _, f := range []string{"lenet5.hwnw", "lenet5-c.hwnc", "lenet5-c.onnx", "lenet5-int8.onnx", "best.onnx", "pareto.png", "local.db", "docs/RESULTS.md"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Errorf("the examples wrote no %s (%v)", f, err)
		}
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
