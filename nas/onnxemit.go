package nas

import "hwnas/accel"

// ONNXBuilder is what a layer type's ONNX emission writes with (see
// EmitONNX). Package nas/onnx implements it while it exports one plan; the
// layer types say which ONNX operators their plan op becomes, the builder
// owns value names, initializers and the int8 and packed weight forms.
type ONNXBuilder interface {
	// Shape returns plan tensor t's per-sample shape.
	Shape(t int) accel.Shape
	// Node appends an operator application.
	Node(opType, name string, in, out []string, attrs ...ONNXAttr)
	// Floats and Int64s add an initializer (once per name) and return its
	// name.
	Floats(name string, dims []int64, v []float32) string
	Int64s(name string, dims []int64, v []int64) string
	// ShapeOf adds the Reshape target [−1, s...] and returns its name.
	ShapeOf(s accel.Shape) string
	// Reshape returns value in (of per-sample shape have) as shape want,
	// adding a Reshape named after prefix when they differ.
	Reshape(in string, have, want accel.Shape, prefix string) string
	// Act writes activation a from in to out (an Identity for none).
	Act(a accel.Act, name, in, out string) error
	// WithAct names the value a node writes before the fused activation a
	// (out itself for none); finish then writes the activation into out.
	WithAct(a accel.Act, name, out string) (pre string, finish func() error)
	// Weights returns the value of a conv or linear op's weights shaped
	// dims: float, fp16, int8 or packed, pruned or not, as the op carries
	// them.
	Weights(op *accel.Op, name string, dims []int64) (string, error)
	// Input returns the value a conv or linear op reads for in: in
	// itself, or quantized and dequantized with the op's int8 input
	// quantization.
	Input(op *accel.Op, name, in string) (string, error)
}

// ONNXAttr is an attribute of an ONNX node: an integer, a list of
// integers, a float or a string (the one its constructor set).
type ONNXAttr struct {
	Name  string
	Kind  ONNXAttrKind
	Int   int64
	Ints  []int64
	Float float32
	Str   string
}

// ONNXAttrKind says which value of an ONNXAttr is set.
type ONNXAttrKind int

// The attribute kinds.
const (
	AttrInt ONNXAttrKind = iota
	AttrInts
	AttrFloat
	AttrString
)

// IntAttr, IntsAttr, FloatAttr and StringAttr make attributes.
func IntAttr(name string, v int64) ONNXAttr     { return ONNXAttr{Name: name, Kind: AttrInt, Int: v} }
func IntsAttr(name string, v ...int64) ONNXAttr { return ONNXAttr{Name: name, Kind: AttrInts, Ints: v} }
func FloatAttr(name string, v float32) ONNXAttr {
	return ONNXAttr{Name: name, Kind: AttrFloat, Float: v}
}
func StringAttr(name string, v string) ONNXAttr {
	return ONNXAttr{Name: name, Kind: AttrString, Str: v}
}
