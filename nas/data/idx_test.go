package data

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// idxBytes encodes an IDX file: magic, dims, payload.
func idxBytes(magic uint32, dims []uint32, payload []byte) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.BigEndian, magic)
	binary.Write(&b, binary.BigEndian, dims)
	b.Write(payload)
	return b.Bytes()
}

func gz(b []byte) []byte {
	var out bytes.Buffer
	w := gzip.NewWriter(&out)
	w.Write(b)
	w.Close()
	return out.Bytes()
}

func seq(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i * 7)
	}
	return b
}

func TestParseIDX(t *testing.T) {
	img := idxBytes(MagicImages, []uint32{3, 2, 5}, seq(30))
	lab := idxBytes(MagicLabels, []uint32{4}, []byte{0, 9, 3, 1})
	badCRC := gz(img)
	badCRC[len(badCRC)-8] ^= 0xff // the CRC-32 in the gzip trailer
	tests := []struct {
		name    string
		in      []byte
		want    uint32
		dims    []int
		payload []byte
		errHas  string
	}{
		{"raw images", img, MagicImages, []int{3, 2, 5}, seq(30), ""},
		{"gzip images", gz(img), MagicImages, []int{3, 2, 5}, seq(30), ""},
		{"raw labels", lab, MagicLabels, []int{4}, []byte{0, 9, 3, 1}, ""},
		{"gzip labels", gz(lab), MagicLabels, []int{4}, []byte{0, 9, 3, 1}, ""},
		{"labels where images expected", lab, MagicImages, nil, nil, "wrong magic number 0x00000801, want 0x00000803"},
		{"images where labels expected", img, MagicLabels, nil, nil, "wrong magic number 0x00000803"},
		{"float IDX refused", idxBytes(0x00000d03, []uint32{1, 1, 1}, make([]byte, 4)), MagicImages, nil, nil, "wrong magic number 0x00000d03"},
		{"empty", nil, MagicImages, nil, nil, "truncated header (no magic number)"},
		{"magic only", idxBytes(MagicImages, nil, nil), MagicImages, nil, nil, "truncated header (3 dimensions expected)"},
		{"short dims", idxBytes(MagicImages, []uint32{3, 2}, nil), MagicImages, nil, nil, "truncated header"},
		{"truncated data", img[:len(img)-1], MagicImages, nil, nil, "truncated: dimensions [3 2 5] need 30 bytes of data, file has 29"},
		{"truncated gzip data", gz(img[:len(img)-4]), MagicImages, nil, nil, "file has 26"},
		{"trailing bytes", append(append([]byte{}, img...), 1), MagicImages, nil, nil, "trailing bytes"},
		{"zero dimension", idxBytes(MagicImages, []uint32{0, 2, 5}, nil), MagicImages, nil, nil, "dimension 0 is 0"},
		{"absurd count", idxBytes(MagicLabels, []uint32{MaxIDXItems + 1}, nil), MagicLabels, nil, nil, "dimension 0 is 67108865"},
		{"absurd side", idxBytes(MagicImages, []uint32{1, 1 << 20, 1}, nil), MagicImages, nil, nil, "dimension 1 is 1048576, want 1..4096"},
		{"absurd total", idxBytes(MagicImages, []uint32{MaxIDXItems, 4096, 4096}, nil), MagicImages, nil, nil, "more than the 17179869184 allowed"},
		{"broken gzip", []byte{0x1f, 0x8b, 0, 0, 0}, MagicImages, nil, nil, "bad gzip stream"},
		{"gzip with bad checksum", badCRC, MagicImages, nil, nil, "checksum"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			x, err := ParseIDX(bytes.NewReader(tc.in), tc.want)
			if tc.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errHas) {
					t.Fatalf("err = %v, want one containing %q", err, tc.errHas)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if x.Magic != tc.want || !slices.Equal(x.Dims, tc.dims) || !bytes.Equal(x.Data, tc.payload) {
				t.Fatalf("got magic %#x dims %v data %v, want %#x %v %v", x.Magic, x.Dims, x.Data, tc.want, tc.dims, tc.payload)
			}
		})
	}
}

// A header that claims 16 GiB over a stream of a few bytes must cost about
// what the stream holds, not what the header claims.
func TestParseIDXLyingHeaderAllocatesLittle(t *testing.T) {
	for _, in := range [][]byte{
		idxBytes(MagicImages, []uint32{1 << 20, 128, 128}, seq(1000)),
		gz(idxBytes(MagicImages, []uint32{1 << 20, 128, 128}, seq(1000))),
	} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := ParseIDX(bytes.NewReader(in), MagicImages)
		runtime.ReadMemStats(&after)
		if err == nil || !strings.Contains(err.Error(), "truncated") {
			t.Fatalf("err = %v, want truncated", err)
		}
		if got := after.TotalAlloc - before.TotalAlloc; got > 1<<20 {
			t.Errorf("allocated %d bytes for a %d-byte input", got, len(in))
		}
	}
}

func FuzzParseIDX(f *testing.F) {
	f.Add(idxBytes(MagicImages, []uint32{2, 3, 3}, seq(18)))
	f.Add(gz(idxBytes(MagicImages, []uint32{2, 3, 3}, seq(18))))
	f.Add(idxBytes(MagicLabels, []uint32{5}, []byte{1, 2, 3, 4, 5}))
	f.Add(gz(idxBytes(MagicLabels, []uint32{5}, []byte{1, 2, 3, 4, 5})))
	f.Add(idxBytes(MagicImages, []uint32{1 << 25, 4096, 4096}, nil))
	f.Add([]byte{0x1f, 0x8b, 8, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, want := range []uint32{MagicImages, MagicLabels} {
			x, err := ParseIDX(bytes.NewReader(in), want)
			if err != nil {
				continue
			}
			n := 1
			for _, d := range x.Dims {
				n *= d
			}
			if x.Magic != want || len(x.Dims) != int(want&0xff) || len(x.Data) != n {
				t.Fatalf("accepted magic %#x dims %v with %d bytes of data", x.Magic, x.Dims, len(x.Data))
			}
			if in[0] != 0x1f && len(x.Data) > len(in) {
				t.Fatalf("raw input of %d bytes gave %d bytes of data", len(in), len(x.Data))
			}
		}
	})
}
