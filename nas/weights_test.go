package nas

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWeightsRoundTrip(t *testing.T) {
	a, _ := BuiltinArch("lenet5")
	m, _ := NewModel(a, 1)
	dir := t.TempDir()
	p := filepath.Join(dir, "w.hwnw")
	if err := SaveWeights(p, m); err != nil {
		t.Fatal(err)
	}
	m2, _ := NewModel(a, 2)
	if err := LoadWeights(p, m2); err != nil {
		t.Fatal(err)
	}
	for i, q := range m.Tensors() {
		r := m2.Tensors()[i]
		for j := range q.Data {
			if q.Data[j] != r.Data[j] {
				t.Fatalf("%s[%d]: %v after load, want %v", q.Name, j, r.Data[j], q.Data[j])
			}
		}
	}
	// The file size is the header plus 4 bytes per value.
	st, _ := os.Stat(p)
	if st.Size() < 4*431080 || st.Size() > 4*431080+400 {
		t.Fatalf("file of %d bytes for 431,080 floats", st.Size())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("temporary files left behind: %v", entries)
	}
}

func TestWeightsRefused(t *testing.T) {
	a, _ := BuiltinArch("lenet300")
	m, _ := NewModel(a, 1)
	good := EncodeWeights(m)
	le := binary.LittleEndian
	resum := func(b []byte) []byte {
		le.PutUint32(b[len(b)-4:], crc32.ChecksumIEEE(b[:len(b)-4]))
		return b
	}
	other, _ := BuiltinArch("lenet5")
	om, _ := NewModel(other, 1)
	for _, tc := range []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "not a hwnas weights file"},
		{"magic", append([]byte("XXXX"), good[4:]...), `magic "XXXX"`},
		{"truncated", good[:len(good)/2], "checksum mismatch"},
		{"flipped", func() []byte { b := append([]byte(nil), good...); b[1000] ^= 1; return b }(), "checksum mismatch"},
		{"version", func() []byte { b := append([]byte(nil), good...); le.PutUint32(b[4:], 9); return resum(b) }(), "format version 9"},
		{"other arch", EncodeWeights(om), `saved for architecture "lenet5"`},
		{"short header", []byte("HWNW\x01\x00"), "truncated"},
		{"huge count", func() []byte {
			b := append([]byte(nil), good...)
			off := 4 + 4 + 32 + 2 + len("lenet300")
			le.PutUint32(b[off:], 1<<30)
			return resum(b)
		}(), "cannot fit"},
		{"cut tensor", func() []byte {
			b := append([]byte(nil), good[:len(good)-4-100]...)
			return resum(append(b, 0, 0, 0, 0))
		}(), "does not fit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m2, _ := NewModel(a, 5)
			before := m2.Params[0].Data[0]
			err := DecodeWeightsInto(tc.b, m2)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrWeights) {
				t.Fatalf("error %v, want ErrWeights containing %q", err, tc.want)
			}
			if m2.Params[0].Data[0] != before {
				t.Fatal("a refused file changed the model")
			}
		})
	}
	if err := LoadWeights(filepath.Join(t.TempDir(), "none"), m); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("missing file: %v", err)
	}
}

func FuzzDecodeWeights(f *testing.F) {
	a, _ := ParseArch([]byte(`{"version":1,"name":"tiny","input":[2,3,3],"classes":2,"layers":[
		{"name":"c","type":"conv","out":2,"kernel":2},{"name":"bn","type":"batchnorm"},{"name":"f","type":"linear","out":2}]}`))
	m, _ := NewModel(a, 1)
	f.Add(EncodeWeights(m))
	f.Add([]byte("HWNW"))
	f.Fuzz(func(t *testing.T, b []byte) {
		wf, err := decodeWeights(b)
		if err != nil {
			if !errors.Is(err, ErrWeights) {
				t.Fatalf("error not wrapping ErrWeights: %v", err)
			}
			return
		}
		for _, tn := range wf.Tensors {
			size := 1
			for _, d := range tn.Shape {
				size *= d
			}
			if size != len(tn.Data) {
				t.Fatalf("tensor %q shape %v with %d values", tn.Name, tn.Shape, len(tn.Data))
			}
		}
		_ = DecodeWeightsInto(b, m)
	})
}
