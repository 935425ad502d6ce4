//go:build cgo

package onnx

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	ort "github.com/yalue/onnxruntime_go"

	"hwnas/accel"
)

// TestExportErrors: plans the exporter cannot express give an error that
// names the problem, and WriteFile leaves no file behind (nor replaces an
// existing one).
func TestExportErrors(t *testing.T) {
	unknownKind := lenet300Plan(2)
	unknownKind.Ops[1].Kind, unknownKind.Ops[1].Act = "attention", accel.ActNone
	badAct := lenet300Plan(2)
	badAct.Ops[0].Act = accel.Act(42)
	badQuant := lenet300Plan(2)
	badQuant.Ops[0].Quant = &accel.QuantWeights{Bits: 8, Q: make([]int8, 10), Scale: []float32{1}, InScale: 1}
	badZero := lenet300Plan(2)
	badZero.Ops[0].Quant = &accel.QuantWeights{Bits: 8, Q: make([]int8, 784*300), Scale: make([]float32, 300), InScale: 1, InZero: 300}
	cases := []struct {
		name string
		plan *accel.Plan
		want string
	}{
		{"nil plan", nil, "nil plan"},
		{"empty plan", &accel.Plan{Name: "empty"}, "no tensors or no ops"},
		{"unknown op kind", unknownKind, "unknown op kind"},
		{"unknown activation", badAct, "activation act(42) has no ONNX form"},
		{"int8 weights of the wrong size", badQuant, "int8 weights: 10 values and 1 scales"},
		{"zero point out of range", badZero, "zero point 300"},
	}
	dir := t.TempDir()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_")+".onnx")
			if err := os.WriteFile(path, []byte("previous"), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := WriteFile(path, c.plan, Metadata{})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err %v, want one containing %q", err, c.want)
			}
			if b, _ := os.ReadFile(path); string(b) != "previous" {
				t.Errorf("the existing file was changed to %d bytes", len(b))
			}
		})
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != len(cases) {
		t.Errorf("%d files in the output folder, want only the %d pre-existing ones", len(entries), len(cases))
	}
}

// TestWriteFileUnwritable: an output path that cannot be written fails
// cleanly and leaves nothing behind.
func TestWriteFileUnwritable(t *testing.T) {
	dir := t.TempDir()
	p := lenet300Plan(2)
	for _, path := range []string{
		filepath.Join(dir, "missing", "model.onnx"), // no such folder
		dir, // a folder, not a file
	} {
		if _, err := WriteFile(path, p, Metadata{}); err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("WriteFile(%s): err %v, want one naming the path", path, err)
		}
	}
	ro := filepath.Join(dir, "ro")
	if err := os.Mkdir(ro, 0o555); err != nil {
		t.Fatal(err)
	}
	if f, err := os.CreateTemp(ro, "probe"); err == nil { // root ignores permissions
		f.Close()
		os.Remove(f.Name())
	} else if _, err := WriteFile(filepath.Join(ro, "m.onnx"), p, Metadata{}); err == nil {
		t.Error("read-only folder: want an error")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("%d entries left in the folder, want only the read-only folder", len(entries))
	}
}

// TestMetadataRoundTrip reads the producer and metadata_props back through
// onnxruntime.
func TestMetadataRoundTrip(t *testing.T) {
	if err := InitRuntime(); err != nil {
		t.Fatal(err)
	}
	p := lenet5Plan(1, 0.25)
	meta := Metadata{
		ProducerVersion: "test",
		Arch:            `{"name":"lenet5"}`,
		Recipe:          "prune channels 75%",
		Figures:         map[string]float64{"accuracy": 0.9912, "latency_us": 41.5},
		Props:           map[string]string{"dataset": "mnist"},
		Uncarried:       []string{"Huffman coding is not carried"},
	}
	model, err := Export(p, meta)
	if err != nil {
		t.Fatal(err)
	}
	md, err := ort.GetModelMetadataWithONNXData(model)
	if err != nil {
		t.Fatal(err)
	}
	defer md.Destroy()
	if v, _ := md.GetProducerName(); v != "hwnas" {
		t.Errorf("producer %q, want hwnas", v)
	}
	if v, _ := md.GetGraphName(); v != p.Name {
		t.Errorf("graph name %q, want %q", v, p.Name)
	}
	for k, want := range map[string]string{
		"hwnas.arch":         meta.Arch,
		"hwnas.recipe":       meta.Recipe,
		"hwnas.accuracy":     "0.9912",
		"hwnas.latency_us":   "41.5",
		"dataset":            "mnist",
		"hwnas.export_notes": "Huffman coding is not carried",
	} {
		v, ok, err := md.LookupCustomMetadataMap(k)
		if err != nil || !ok || v != want {
			t.Errorf("metadata %q = %q (found %v, err %v), want %q", k, v, ok, err, want)
		}
	}
}

// TestCheckerRejectsBrokenModel makes sure the checker the tests rely on
// does reject an invalid file: a node reading a value nothing produces.
func TestCheckerRejectsBrokenModel(t *testing.T) {
	m := modelProto{irVersion: IRVersion, opset: Opset, producer: "hwnas", graph: graphProto{
		name:    "broken",
		nodes:   []nodeProto{{name: "relu", opType: "Relu", inputs: []string{"nowhere"}, outputs: []string{OutputName}}},
		inputs:  []valueInfo{{name: InputName, elem: dtFloat, shape: batched(accel.Shape{4})}},
		outputs: []valueInfo{{name: OutputName, elem: dtFloat, shape: batched(accel.Shape{4})}},
	}}
	path := filepath.Join(t.TempDir(), "broken.onnx")
	if err := os.WriteFile(path, m.marshal(), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(onnxChecker(t), "-c", checkerScript, path).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "nowhere") {
		t.Errorf("checker accepted a broken model (err %v): %s", err, out)
	}
}
