//go:build cgo

package onnx

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"

	"hwnas/accel"
)

// summaryScript prints what onnx.load reads from a file: the fields the
// exporter writes, for TestFileStructure.
const summaryScript = `
import json, sys, onnx
from onnx import numpy_helper
m = onnx.load(sys.argv[1])
g = m.graph
def dims(v):
    return [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
out = {
  "ir": m.ir_version, "opsets": [[o.domain, o.version] for o in m.opset_import],
  "producer": m.producer_name, "graph": g.name,
  "inputs": [[v.name, v.type.tensor_type.elem_type, dims(v)] for v in g.input],
  "outputs": [[v.name, v.type.tensor_type.elem_type, dims(v)] for v in g.output],
  "props": {p.key: p.value for p in m.metadata_props},
  "nodes": [n.op_type for n in g.node],
  "inits": {t.name: [t.data_type, list(t.dims)] for t in g.initializer},
}
for n in g.node:
    if n.op_type == "Conv":
        out["conv"] = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
        out["conv_inputs"] = list(n.input)
        break
w = {t.name: t for t in g.initializer}["op0_c.weight_q"]
out["w_q"] = numpy_helper.to_array(w).reshape(-1).tolist()
out["w_zero"] = numpy_helper.to_array({t.name: t for t in g.initializer}["op0_c.weight_zero"]).reshape(-1).tolist()
print(json.dumps(out))
`

// TestFileStructure reads an exported int8 model back with the onnx
// package and checks the fields as the ONNX spec defines them: IR
// version, opset, named inputs and outputs with the symbolic batch,
// attributes, initializer types and values, metadata.
func TestFileStructure(t *testing.T) {
	b := newPlan("structure", 1, accel.Shape{2, 7, 7})
	x := b.conv("c", b.p.Input, 4, 3, 0, 2, 1, 2, accel.ActReLU6)
	p := b.done(b.linear("fc", b.flatten(x), 3, accel.ActNone, true))
	q := make([]int8, len(p.Ops[0].W))
	for i := range q {
		q[i] = int8(i%255 - 127)
	}
	p.Ops[0].Quant = &accel.QuantWeights{Bits: 8, Q: q, Scale: []float32{0.5, 0.25, 1, 2}, InScale: 0.1, InZero: 3}
	path := filepath.Join(t.TempDir(), "s.onnx")
	if _, err := WriteFile(path, p, Metadata{Arch: `{"a":1}`, Figures: map[string]float64{"accuracy": 0.5}}); err != nil {
		t.Fatal(err)
	}
	raw, err := exec.Command(onnxChecker(t), "-c", summaryScript, path).CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, raw)
	}
	var got struct {
		IR         int               `json:"ir"`
		Opsets     [][]any           `json:"opsets"`
		Producer   string            `json:"producer"`
		Graph      string            `json:"graph"`
		Inputs     [][]any           `json:"inputs"`
		Outputs    [][]any           `json:"outputs"`
		Props      map[string]string `json:"props"`
		Conv       map[string]any    `json:"conv"`
		ConvInputs []string          `json:"conv_inputs"`
		Nodes      []string          `json:"nodes"`
		Inits      map[string][]any  `json:"inits"`
		WQ         []float64         `json:"w_q"`
		WZero      []float64         `json:"w_zero"`
	}
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatalf("%v: %s", err, raw)
	}
	check := func(name string, have, want any) {
		t.Helper()
		if !reflect.DeepEqual(have, want) {
			t.Errorf("%s = %v, want %v", name, have, want)
		}
	}
	check("ir_version", got.IR, IRVersion)
	check("opset_import", got.Opsets, [][]any{{"", float64(Opset)}})
	check("producer", got.Producer, "hwnas")
	check("graph name", got.Graph, "structure")
	check("inputs", got.Inputs, [][]any{{"input", float64(dtFloat), []any{"N", 2.0, 7.0, 7.0}}})
	check("outputs", got.Outputs, [][]any{{"logits", float64(dtFloat), []any{"N", 3.0}}})
	check("props", got.Props, map[string]string{"hwnas.arch": `{"a":1}`, "hwnas.accuracy": "0.5"})
	check("conv attributes", got.Conv, map[string]any{
		"kernel_shape": []any{3.0, 3.0}, "strides": []any{2.0, 2.0}, "pads": []any{1.0, 1.0, 1.0, 1.0},
		"dilations": []any{1.0, 1.0}, "group": 2.0})
	check("conv inputs", got.ConvInputs, []string{"op0_c.in_dq", "op0_c.weight", "op0_c.bias"})
	check("nodes", got.Nodes, []string{"QuantizeLinear", "DequantizeLinear", "DequantizeLinear", "Conv", "Clip", "Reshape", "Gemm"})
	// Weights beyond ±64 are stored as uint8 codes q+128 with zero point
	// 128 (exact in onnxruntime's u8·u8 kernels on every x86 CPU).
	check("8-bit weights", got.Inits["op0_c.weight_q"], []any{float64(dtUint8), []any{4.0, 1.0, 3.0, 3.0}})
	check("weight zero points", got.WZero, []float64{128, 128, 128, 128})
	check("weight scales", got.Inits["op0_c.weight_scale"], []any{float64(dtFloat), []any{4.0}})
	check("input zero point", got.Inits["op0_c.in_zero"], []any{float64(dtUint8), []any{}})
	want := make([]float64, len(q))
	for i, v := range q {
		want[i] = float64(v) + 128
	}
	check("8-bit weight codes", got.WQ, want)
}
