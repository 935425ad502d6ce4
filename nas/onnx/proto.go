package onnx

import (
	"encoding/binary"
	"math"

	"google.golang.org/protobuf/encoding/protowire"

	"hwnas/nas/compress"
)

// This file is a minimal writer for the ONNX protobuf messages hwnas emits.
// Field numbers are those of onnx/onnx.proto (IR version 8); only the
// fields the exporter sets are modelled. Everything is written with
// protowire, so no generated code is needed.

// ONNX TensorProto.DataType values.
const (
	dtFloat   = 1
	dtUint8   = 2
	dtInt8    = 3
	dtInt32   = 6
	dtInt64   = 7
	dtFloat16 = 10
)

// ONNX AttributeProto.AttributeType values.
const (
	attrFloat  = 1
	attrInt    = 2
	attrString = 3
	attrInts   = 7
	attrTensor = 4
)

// tensorProto is an initializer: dims and little-endian raw bytes.
type tensorProto struct {
	name  string
	dims  []int64
	dtype int32
	raw   []byte
}

// floatTensor, int8Tensor, uint8Tensor and int64Tensor build initializers
// from Go slices.
func floatTensor(name string, dims []int64, v []float32) tensorProto {
	raw := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(f))
	}
	return tensorProto{name: name, dims: dims, dtype: dtFloat, raw: raw}
}

// float16Tensor stores v, whose values must be exactly representable in
// IEEE binary16, as FLOAT16.
func float16Tensor(name string, dims []int64, v []float32) tensorProto {
	raw := make([]byte, 2*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint16(raw[2*i:], compress.Float32ToFloat16(f))
	}
	return tensorProto{name: name, dims: dims, dtype: dtFloat16, raw: raw}
}

func int8Tensor(name string, dims []int64, v []int8) tensorProto {
	raw := make([]byte, len(v))
	for i, q := range v {
		raw[i] = byte(q)
	}
	return tensorProto{name: name, dims: dims, dtype: dtInt8, raw: raw}
}

func uint8Tensor(name string, dims []int64, v []uint8) tensorProto {
	return tensorProto{name: name, dims: dims, dtype: dtUint8, raw: append([]byte(nil), v...)}
}

func int32Tensor(name string, dims []int64, v []int32) tensorProto {
	raw := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(raw[4*i:], uint32(x))
	}
	return tensorProto{name: name, dims: dims, dtype: dtInt32, raw: raw}
}

func int64Tensor(name string, dims []int64, v []int64) tensorProto {
	raw := make([]byte, 8*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint64(raw[8*i:], uint64(x))
	}
	return tensorProto{name: name, dims: dims, dtype: dtInt64, raw: raw}
}

// elemSize is the byte size of one element of the data types written here.
func elemSize(dtype int32) int {
	switch dtype {
	case dtFloat, dtInt32:
		return 4
	case dtInt64:
		return 8
	case dtFloat16:
		return 2
	}
	return 1
}

// sparseEntries codes the elements of t that differ from zero (one
// element's raw bytes: the encoding of the value 0, all zero bytes but for
// a uint8 tensor with zero point 128) as 1-byte position deltas and their
// values: entry k sits deltas [0..k] summed, minus one, elements into the
// flat tensor. A gap longer than 255 takes filler entries of value zero at
// every 255th element, as Deep Compression's relative indices do. It
// returns the deltas and the values' raw bytes.
func sparseEntries(t tensorProto, zero []byte) (deltas []byte, values []byte) {
	size := elemSize(t.dtype)
	n := len(t.raw) / size
	last := -1
	for i := 0; i < n; i++ {
		e := t.raw[i*size : (i+1)*size]
		if string(e) == string(zero) {
			continue
		}
		for i-last > 255 {
			last += 255
			deltas = append(deltas, 255)
			values = append(values, zero...)
		}
		deltas = append(deltas, byte(i-last))
		values = append(values, e...)
		last = i
	}
	return deltas, values
}

// attribute is one node attribute of type FLOAT, INT, STRING or INTS.
type attribute struct {
	name string
	typ  int32
	f    float32
	i    int64
	s    string
	ints []int64
	t    *tensorProto
}

func intAttr(name string, v int64) attribute { return attribute{name: name, typ: attrInt, i: v} }
func intsAttr(name string, v ...int64) attribute {
	return attribute{name: name, typ: attrInts, ints: v}
}
func floatAttr(name string, v float32) attribute {
	return attribute{name: name, typ: attrFloat, f: v}
}

// nodeProto is one operator application.
type nodeProto struct {
	name, opType string
	inputs       []string
	outputs      []string
	attrs        []attribute
}

// dim is one dimension of a value's shape: a fixed size or a symbolic
// name (the dynamic batch dimension).
type dim struct {
	value int64
	param string
}

// valueInfo declares a graph input or output tensor.
type valueInfo struct {
	name  string
	elem  int32
	shape []dim
}

// graphProto is the computation graph.
type graphProto struct {
	name    string
	doc     string
	nodes   []nodeProto
	inits   []tensorProto
	inputs  []valueInfo
	outputs []valueInfo
}

// modelProto is the top-level message of an .onnx file.
type modelProto struct {
	irVersion       int64
	opset           int64
	producer        string
	producerVersion string
	doc             string
	graph           graphProto
	props           [][2]string // metadata_props in order
}

func appendString(b []byte, num protowire.Number, s string) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendBytes(b []byte, num protowire.Number, v []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func appendVarint(b []byte, num protowire.Number, v uint64) []byte {
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

// appendPackedInt64 writes a repeated int64 field in packed form.
func appendPackedInt64(b []byte, num protowire.Number, v []int64) []byte {
	if len(v) == 0 {
		return b
	}
	var p []byte
	for _, x := range v {
		p = protowire.AppendVarint(p, uint64(x))
	}
	return appendBytes(b, num, p)
}

// TensorProto: dims=1, data_type=2, name=8, raw_data=9.
func (t *tensorProto) marshal() []byte {
	b := appendPackedInt64(nil, 1, t.dims)
	b = appendVarint(b, 2, uint64(t.dtype))
	b = appendString(b, 8, t.name)
	return appendBytes(b, 9, t.raw)
}

// AttributeProto: name=1, f=2, i=3, s=4, t=5, ints=8, type=20.
func (a *attribute) marshal() []byte {
	b := appendString(nil, 1, a.name)
	switch a.typ {
	case attrFloat:
		b = protowire.AppendTag(b, 2, protowire.Fixed32Type)
		b = protowire.AppendFixed32(b, math.Float32bits(a.f))
	case attrInt:
		b = appendVarint(b, 3, uint64(a.i))
	case attrString:
		b = appendString(b, 4, a.s)
	case attrInts:
		b = appendPackedInt64(b, 8, a.ints)
	case attrTensor:
		b = appendBytes(b, 5, a.t.marshal())
	}
	return appendVarint(b, 20, uint64(a.typ))
}

// NodeProto: input=1, output=2, name=3, op_type=4, attribute=5.
func (n *nodeProto) marshal() []byte {
	var b []byte
	for _, s := range n.inputs {
		b = appendString(b, 1, s)
	}
	for _, s := range n.outputs {
		b = appendString(b, 2, s)
	}
	b = appendString(b, 3, n.name)
	b = appendString(b, 4, n.opType)
	for i := range n.attrs {
		b = appendBytes(b, 5, n.attrs[i].marshal())
	}
	return b
}

// ValueInfoProto: name=1, type=2 → TypeProto.tensor_type=1 →
// Tensor{elem_type=1, shape=2 → TensorShapeProto.dim=1 →
// Dimension{dim_value=1 | dim_param=2}}.
func (v *valueInfo) marshal() []byte {
	var shape []byte
	for _, d := range v.shape {
		var db []byte
		if d.param != "" {
			db = appendString(db, 2, d.param)
		} else {
			db = appendVarint(db, 1, uint64(d.value))
		}
		shape = appendBytes(shape, 1, db)
	}
	tensor := appendVarint(nil, 1, uint64(v.elem))
	tensor = appendBytes(tensor, 2, shape)
	typ := appendBytes(nil, 1, tensor)
	b := appendString(nil, 1, v.name)
	return appendBytes(b, 2, typ)
}

// GraphProto: node=1, name=2, initializer=5, doc_string=10, input=11,
// output=12.
func (g *graphProto) marshal() []byte {
	var b []byte
	for i := range g.nodes {
		b = appendBytes(b, 1, g.nodes[i].marshal())
	}
	b = appendString(b, 2, g.name)
	for i := range g.inits {
		b = appendBytes(b, 5, g.inits[i].marshal())
	}
	if g.doc != "" {
		b = appendString(b, 10, g.doc)
	}
	for i := range g.inputs {
		b = appendBytes(b, 11, g.inputs[i].marshal())
	}
	for i := range g.outputs {
		b = appendBytes(b, 12, g.outputs[i].marshal())
	}
	return b
}

// ModelProto: ir_version=1, producer_name=2, producer_version=3,
// doc_string=6, graph=7, opset_import=8 (OperatorSetIdProto{domain=1,
// version=2}), metadata_props=14 (StringStringEntryProto{key=1, value=2}).
func (m *modelProto) marshal() []byte {
	b := appendVarint(nil, 1, uint64(m.irVersion))
	b = appendString(b, 2, m.producer)
	if m.producerVersion != "" {
		b = appendString(b, 3, m.producerVersion)
	}
	if m.doc != "" {
		b = appendString(b, 6, m.doc)
	}
	b = appendBytes(b, 7, m.graph.marshal())
	opset := appendString(nil, 1, "") // the default ai.onnx domain
	opset = appendVarint(opset, 2, uint64(m.opset))
	b = appendBytes(b, 8, opset)
	for _, kv := range m.props {
		e := appendString(nil, 1, kv[0])
		e = appendString(e, 2, kv[1])
		b = appendBytes(b, 14, e)
	}
	return b
}
