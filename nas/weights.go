package nas

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"slices"

	"hwnas/internal/atomicfile"
)

// The weights file (all integers little-endian):
//
//	"HWNW"                       magic
//	uint32 version               WeightsVersion
//	[32]byte arch hash           SHA-256 of the architecture (Arch.Hash)
//	uint16 len, bytes            architecture name (for messages only)
//	uint32 count                 number of tensors
//	count × tensor:
//	  uint16 len, bytes          name ("conv1.w")
//	  uint8 rank, rank × uint32  shape
//	  product(shape) × float32   data
//	uint32 CRC-32 (IEEE)         of every byte before it
const (
	weightsMagic = "HWNW"
	// WeightsVersion is the weights file format version.
	WeightsVersion = 1
	maxRank        = 8
)

// ErrWeights is wrapped by every error about a weights file's content.
var ErrWeights = errors.New("invalid weights file")

// namedTensor is a tensor as stored in a weights file.
type namedTensor struct {
	Name  string
	Shape []int
	Data  []float32
}

// weightsFile is a decoded weights file.
type weightsFile struct {
	ArchHash string
	ArchName string
	Tensors  []namedTensor
}

// EncodeWeights serialises every tensor of m (parameters and batch-norm
// statistics) in the weights file format.
func EncodeWeights(m *Model) []byte {
	var b bytes.Buffer
	b.WriteString(weightsMagic)
	le := binary.LittleEndian
	b.Write(le.AppendUint32(nil, WeightsVersion))
	h, _ := hex.DecodeString(m.Arch.Hash())
	b.Write(h)
	writeString := func(s string) {
		b.Write(le.AppendUint16(nil, uint16(len(s))))
		b.WriteString(s)
	}
	writeString(truncate(m.Arch.Name, math.MaxUint16))
	ts := m.Tensors()
	b.Write(le.AppendUint32(nil, uint32(len(ts))))
	buf := make([]byte, 0, 4096)
	for _, p := range ts {
		writeString(p.Name)
		b.WriteByte(byte(len(p.Shape)))
		for _, d := range p.Shape {
			b.Write(le.AppendUint32(nil, uint32(d)))
		}
		for i := 0; i < len(p.Data); i += 1024 {
			buf = buf[:0]
			for _, v := range p.Data[i:min(i+1024, len(p.Data))] {
				buf = le.AppendUint32(buf, math.Float32bits(v))
			}
			b.Write(buf)
		}
	}
	b.Write(le.AppendUint32(nil, crc32.ChecksumIEEE(b.Bytes())))
	return b.Bytes()
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// decodeWeights parses a weights file, checking the magic, version,
// checksum and that every length fits the bytes there are.
func decodeWeights(b []byte) (*weightsFile, error) {
	le := binary.LittleEndian
	if len(b) < 4 || string(b[:4]) != weightsMagic {
		return nil, fmt.Errorf("%w: not a hwnas weights file (magic %q, want %q)", ErrWeights, b[:min(4, len(b))], weightsMagic)
	}
	if len(b) < 4+4+32+2+4+4 {
		return nil, fmt.Errorf("%w: truncated (%d bytes)", ErrWeights, len(b))
	}
	if v := le.Uint32(b[4:]); v != WeightsVersion {
		return nil, fmt.Errorf("%w: format version %d, this hwnas reads version %d", ErrWeights, v, WeightsVersion)
	}
	body := b[:len(b)-4]
	if got, want := crc32.ChecksumIEEE(body), le.Uint32(b[len(b)-4:]); got != want {
		return nil, fmt.Errorf("%w: checksum mismatch (stored %08x, computed %08x): the file is corrupt or truncated", ErrWeights, want, got)
	}
	r := &reader{b: body, off: 8}
	f := &weightsFile{}
	h := r.next(32)
	f.ArchHash = hex.EncodeToString(h)
	f.ArchName = string(r.next(int(r.u16())))
	count := int(r.u32())
	if r.err == nil && count > len(body)/7 { // every tensor takes ≥ 7 bytes
		return nil, fmt.Errorf("%w: %d tensors cannot fit in %d bytes", ErrWeights, count, len(body))
	}
	for i := 0; i < count && r.err == nil; i++ {
		var t namedTensor
		t.Name = string(r.next(int(r.u16())))
		rank := int(r.u8())
		if rank > maxRank {
			return nil, fmt.Errorf("%w: tensor %q has rank %d (at most %d)", ErrWeights, t.Name, rank, maxRank)
		}
		size := 1
		for k := 0; k < rank; k++ {
			d := int(r.u32())
			t.Shape = append(t.Shape, d)
			if d == 0 || size > (len(body)-r.off)/4/d+1 {
				size = -1
				break
			}
			size *= d
		}
		if r.err != nil {
			break
		}
		if size < 0 || size*4 > len(body)-r.off {
			return nil, fmt.Errorf("%w: tensor %q of shape %v does not fit in the %d bytes left", ErrWeights, t.Name, t.Shape, len(body)-r.off)
		}
		raw := r.next(size * 4)
		t.Data = make([]float32, size)
		for j := range t.Data {
			t.Data[j] = math.Float32frombits(le.Uint32(raw[4*j:]))
		}
		f.Tensors = append(f.Tensors, t)
	}
	if r.err != nil {
		return nil, r.err
	}
	if r.off != len(body) {
		return nil, fmt.Errorf("%w: %d unexpected bytes after the last tensor", ErrWeights, len(body)-r.off)
	}
	return f, nil
}

// reader reads little-endian fields, remembering the first overrun.
type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) next(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b)-r.off {
		r.err = fmt.Errorf("%w: truncated at byte %d (needs %d more)", ErrWeights, r.off, n)
		return nil
	}
	s := r.b[r.off : r.off+n]
	r.off += n
	return s
}

func (r *reader) u8() uint8 {
	if s := r.next(1); s != nil {
		return s[0]
	}
	return 0
}

func (r *reader) u16() uint16 {
	if s := r.next(2); s != nil {
		return binary.LittleEndian.Uint16(s)
	}
	return 0
}

func (r *reader) u32() uint32 {
	if s := r.next(4); s != nil {
		return binary.LittleEndian.Uint32(s)
	}
	return 0
}

// SaveWeights writes m's tensors to path atomically (a temporary file in
// the same folder, renamed over path).
func SaveWeights(path string, m *Model) error {
	if err := atomicfile.WriteFile(path, EncodeWeights(m), 0o644); err != nil {
		return fmt.Errorf("save weights: %w", err)
	}
	return nil
}

// LoadWeights reads path into m. The file must have been saved for the
// same architecture (same Arch.Hash) and hold exactly m's tensors with
// their shapes; otherwise m is left unchanged and the error says why.
func LoadWeights(path string, m *Model) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("load weights: %w", err)
	}
	if err := DecodeWeightsInto(b, m); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// DecodeWeightsInto checks a weights file's bytes against m and copies
// its tensors into m (all or nothing).
func DecodeWeightsInto(b []byte, m *Model) error {
	f, err := decodeWeights(b)
	if err != nil {
		return err
	}
	if h := m.Arch.Hash(); f.ArchHash != h {
		return fmt.Errorf("%w: saved for architecture %q (hash %.12s), not %q (hash %.12s)", ErrWeights, f.ArchName, f.ArchHash, m.Arch.Name, h)
	}
	ts := m.Tensors()
	if len(f.Tensors) != len(ts) {
		return fmt.Errorf("%w: %d tensors, architecture %q has %d", ErrWeights, len(f.Tensors), m.Arch.Name, len(ts))
	}
	for i, p := range ts {
		t := f.Tensors[i]
		if t.Name != p.Name || !slices.Equal(t.Shape, p.Shape) {
			return fmt.Errorf("%w: tensor %d is %q %v, model has %q %v", ErrWeights, i, t.Name, t.Shape, p.Name, p.Shape)
		}
	}
	for i, p := range ts {
		copy(p.Data, f.Tensors[i].Data)
	}
	return nil
}
