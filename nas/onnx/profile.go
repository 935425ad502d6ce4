package onnx

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"hwnas/accel"
)

// NodeTimes are the kernel times onnxruntime's profiler recorded for one
// graph node, one entry per run.
type NodeTimes struct {
	Node   string          // node name as onnxruntime ran it (after fusion)
	OpType string          // e.g. "Conv", "QLinearConv", "FusedGemm"
	Times  []time.Duration // per run
}

// PlanOp returns the index of the plan op of p a node was exported from,
// or -1 for nodes onnxruntime added (layout reorders). Exported nodes are
// named "op<index>_…"; onnxruntime names a fused node "fused <first
// node>" and a node it rewrote to its blocked layout after the node's
// output value ("t<tensor>_nchwc", "logits_…"), which maps back to the op
// that produced that tensor.
func (n NodeTimes) PlanOp(p *accel.Plan) int {
	name := strings.TrimPrefix(n.Node, "fused ")
	num := func(s string) (int, bool) {
		end := strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' })
		if end < 0 {
			end = len(s)
		}
		i, err := strconv.Atoi(s[:end])
		return i, err == nil
	}
	producer := func(t int) int {
		last := -1
		for i := range p.Ops {
			for _, o := range p.Ops[i].Out {
				if o == t {
					if last < 0 || t == p.Output {
						last = i
					}
				}
			}
		}
		return last
	}
	switch {
	case strings.HasPrefix(name, "op"):
		if i, ok := num(name[2:]); ok && i < len(p.Ops) {
			return i
		}
	case strings.HasPrefix(name, "t"):
		if t, ok := num(name[1:]); ok && t < len(p.Tensors) {
			return producer(t)
		}
	case strings.HasPrefix(name, OutputName):
		return producer(p.Output)
	}
	return -1
}

// ReadProfile reads the newest profile file starting with prefix (written
// by a session opened with SessionOptions.ProfilePrefix when it closed) and
// returns the kernel times of each node, in order of first appearance.
func ReadProfile(prefix string) ([]NodeTimes, error) {
	files, err := filepath.Glob(prefix + "*.json")
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("onnxruntime profile: no file %s*.json (was the session closed?)", prefix)
	}
	sort.Strings(files) // the names end in a timestamp
	path := files[len(files)-1]
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("onnxruntime profile: %w", err)
	}
	var events []struct {
		Cat  string `json:"cat"`
		Name string `json:"name"`
		Dur  int64  `json:"dur"` // µs
		Args struct {
			OpName string `json:"op_name"`
		} `json:"args"`
	}
	if err := json.Unmarshal(b, &events); err != nil {
		return nil, fmt.Errorf("onnxruntime profile %s: %w", path, err)
	}
	var out []NodeTimes
	idx := map[string]int{}
	for _, e := range events {
		node, ok := strings.CutSuffix(e.Name, "_kernel_time")
		if e.Cat != "Node" || !ok {
			continue
		}
		i, seen := idx[node]
		if !seen {
			i = len(out)
			idx[node] = i
			out = append(out, NodeTimes{Node: node, OpType: e.Args.OpName})
		}
		out[i].Times = append(out[i].Times, time.Duration(e.Dur)*time.Microsecond)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("onnxruntime profile %s: no node kernel times", path)
	}
	return out, nil
}
