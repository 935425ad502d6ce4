//go:build cgo

package onnx

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestReadProfile profiles LeNet-5 in onnxruntime and maps every timed node
// back to the plan op it was exported from.
func TestReadProfile(t *testing.T) {
	p := builtinPlan(t, "lenet5", 1)
	model, err := Export(p, Metadata{})
	if err != nil {
		t.Fatal(err)
	}
	prefix := filepath.Join(t.TempDir(), "prof")
	s, err := NewSession(model, 2, SessionOptions{Threads: 1, ProfilePrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	in, out := make([]float32, 2*784), make([]float32, 2*10)
	const runs = 5
	for i := 0; i < runs; i++ {
		if err := s.Run(in, out); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	nodes, err := ReadProfile(prefix)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, n := range nodes {
		t.Logf("%-30s %-12s plan op %d: %v", n.Node, n.OpType, n.PlanOp(p), n.Times)
		if len(n.Times) != runs {
			t.Errorf("node %s: %d times, want %d", n.Node, len(n.Times), runs)
		}
		if i := n.PlanOp(p); i >= 0 && i < len(p.Ops) {
			seen[i] = true
		} else if !strings.HasPrefix(n.OpType, "Reorder") {
			t.Errorf("node %s maps to plan op %d of %d", n.Node, i, len(p.Ops))
		}
	}
	for i := range p.Ops {
		if !seen[i] {
			t.Errorf("plan op %d (%s) has no node times", i, p.Ops[i].Name)
		}
	}
	if _, err := ReadProfile(filepath.Join(t.TempDir(), "none")); err == nil {
		t.Error("no profile file: want an error")
	}
}
