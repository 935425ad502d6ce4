package compress

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"hwnas/accel"
	"hwnas/nas"
)

// compressedChain returns the chain model with each tensor format in use:
// conv1 int8 (pruned), conv2 4-bit, fc1 shared 3-bit and pruned, fc2 fp16.
func compressedChain(t *testing.T) (*nas.Model, EncodeOptions) {
	m := modelFromJSON(t, chainArch, 9)
	opt := EncodeOptions{Formats: map[string]TensorFormat{}}
	for _, c := range []struct {
		layer string
		bits  int
	}{{"conv1", 8}, {"conv2", 4}} {
		w := m.Param(c.layer + ".w")
		if c.layer == "conv1" {
			th, _ := MagnitudeThreshold([][]float32{w.Data}, 0.6)
			PruneMagnitude(w.Data, th)
		}
		q, err := quantizeWeights(w, c.bits, 0.05, 7)
		if err != nil {
			t.Fatal(err)
		}
		m.Quant[c.layer] = q
		opt.Formats[c.layer+".w"] = TensorFormat{Bits: c.bits}
	}
	fc1 := m.Param("fc1.w")
	th, _ := MagnitudeThreshold([][]float32{fc1.Data}, 0.7)
	PruneMagnitude(fc1.Data, th)
	s, err := ShareWeights(fc1.Data, 8, 20)
	if err != nil {
		t.Fatal(err)
	}
	copy(fc1.Data, s.Values())
	opt.Formats["fc1.w"] = TensorFormat{Share: 3}
	fc2 := m.Param("fc2.w")
	for i, v := range fc2.Data {
		fc2.Data[i] = Float16ToFloat32(Float32ToFloat16(v))
	}
	opt.Formats["fc2.w"] = TensorFormat{Bits: 16}
	return m, opt
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	for _, huffman := range []bool{false, true} {
		m, opt := compressedChain(t)
		opt.Huffman = huffman
		b, err := Encode(m, opt)
		if err != nil {
			t.Fatal(err)
		}
		d, err := Decode(m.Arch, b)
		if err != nil {
			t.Fatalf("huffman=%v: %v", huffman, err)
		}
		for _, p := range m.Tensors() {
			q := d.Param(p.Name)
			for i := range p.Data {
				if p.Data[i] != q.Data[i] {
					t.Fatalf("huffman=%v: %s[%d] = %g after decoding, want %g", huffman, p.Name, i, q.Data[i], p.Data[i])
				}
			}
		}
		for layer, q := range m.Quant {
			dq := d.Quant[layer]
			if dq == nil || dq.Bits != q.Bits || dq.InScale != q.InScale || dq.InZero != q.InZero || !bytes.Equal(int8s(dq.Q), int8s(q.Q)) {
				t.Fatalf("huffman=%v: quantized %s differs after decoding", huffman, layer)
			}
		}
		// Same outputs, on the host program with the int8 kernels too.
		x := make([]float32, 2*3*8*8)
		for i := range x {
			x[i] = float32(i%17) / 17
		}
		assertClose(t, "decoded model", forward(t, d, x, 2), forward(t, m, x, 2), 0)
		// The decoded model says what it is: conv1 (60% pruned) and fc1
		// (70%) carry their CSR form, conv2 and fc2 do not; its plan runs
		// fc1 on the sparse kernels, which sum in another order than the
		// dense ones the original ran.
		for layer, sparse := range map[string]bool{"conv1": true, "conv2": false, "fc1": true, "fc2": false} {
			if (d.Sparse[layer] != nil) != sparse {
				t.Errorf("huffman=%v: decoded %s has a sparse form: %v, want %v", huffman, layer, d.Sparse[layer] != nil, sparse)
			}
		}
		assertClose(t, "lowered decoded model", runPlan(t, d, x, 2), runPlan(t, m, x, 2), 1e-5)
		// Dense fp32 is 4 bytes per value; the compressed form must be far smaller.
		if dense := 4 * (m.NumParams() + 4*6); int64(len(b)) > dense/2 {
			t.Errorf("huffman=%v: %d bytes for %d dense", huffman, len(b), dense)
		}
	}
}

func int8s(s []int8) []byte {
	b := make([]byte, len(s))
	for i, v := range s {
		b[i] = byte(v)
	}
	return b
}

func runPlan(t *testing.T, m *nas.Model, x []float32, n int) []float32 {
	t.Helper()
	p, err := nas.Lower(m)
	if err != nil {
		t.Fatal(err)
	}
	k, closeK, err := nas.DefaultKernels(1)
	if err != nil {
		t.Fatal(err)
	}
	defer closeK()
	prog, err := accel.NewHostProgram(k, p, n)
	if err != nil {
		t.Fatal(err)
	}
	y := make([]float32, n*prog.OutputSize())
	if err := prog.Run(x, y); err != nil {
		t.Fatal(err)
	}
	return y
}

func TestDecodeRejectsBadInput(t *testing.T) {
	m, opt := compressedChain(t)
	b, err := Encode(m, opt)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := nas.BuiltinArch("lenet300")
	cases := map[string]struct {
		arch *nas.Arch
		b    []byte
		want string
	}{
		"magic":     {m.Arch, append([]byte("XXXX"), b[4:]...), "magic"},
		"version":   {m.Arch, append(append([]byte{}, b[:4]...), append([]byte{9}, b[5:]...)...), "version"},
		"arch":      {other, b, "another architecture"},
		"truncated": {m.Arch, b[:len(b)-3], ""},
		"trailing":  {m.Arch, append(append([]byte{}, b...), 0), "after the last tensor"},
	}
	for name, c := range cases {
		_, err := Decode(c.arch, c.b)
		if err == nil || !errors.Is(err, ErrCodec) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v", name, err)
		}
	}
	// A format that needs missing information fails to encode.
	delete(m.Quant, "conv2")
	if _, err := Encode(m, opt); err == nil || !strings.Contains(err.Error(), "quantized weights") {
		t.Errorf("missing quantized weights: %v", err)
	}
	opt.Formats = map[string]TensorFormat{"conv1.b": {Share: 1}}
	if _, err := Encode(m, opt); err == nil || !strings.Contains(err.Error(), "codebook") {
		t.Errorf("too many values for the codebook: %v", err)
	}
}
