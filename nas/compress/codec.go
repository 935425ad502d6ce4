package compress

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"sort"

	"hwnas/accel"
	"hwnas/nas"
)

// The compressed model format (integers little-endian or uvarint):
//
//	"HWNC" magic, byte version (CodecVersion)
//	[8]byte  first 8 bytes of the architecture's hash (nas.Arch.Hash)
//	uvarint  number of tensors, then each tensor of m.Tensors() in order:
//	  byte   format | flags: format fmtF32, fmtF16, fmtInt (b-bit integers
//	         with per-row fp16 scales), fmtShared (codebook + indices);
//	         flagSparse: only non-zero entries are stored, their positions
//	         as gaps (zeros skipped before each); flagHuffman: gaps and
//	         indices are Huffman streams (HuffmanEncode), else fixed-width
//	         bit fields
//	  sparse: uvarint nnz, then the gaps
//	  fmtF32: 4 bytes per stored value; fmtF16: 2 bytes (IEEE binary16)
//	  fmtInt: byte bits, rows × fp16 scales, f32 input scale, byte input
//	         zero point, then the values (q + 2^(bits−1), or the sign bit
//	         for 1 bit)
//	  fmtShared: byte index bits, uvarint codebook size, codebook as f32,
//	         then one index per stored value
//
// The shape of every tensor comes from the architecture, which is not
// stored (Decode takes it), so the byte count is that of the weights alone,
// as Deep Compression counts it.
const (
	codecMagic = "HWNC"
	// CodecVersion is the compressed-model format version.
	CodecVersion = 1

	fmtF32    = 0
	fmtF16    = 1
	fmtInt    = 2
	fmtShared = 3

	flagSparse  = 0x10
	flagHuffman = 0x20
)

// TensorFormat says how Encode stores one tensor's values.
type TensorFormat struct {
	// Bits: 16 stores fp16; 1..8 stores the layer's m.Quant integers (the
	// tensor must be the ".w" of a layer with m.Quant set).
	Bits int
	// Share stores a codebook of at most 2^Share distinct values and an
	// index per weight; the tensor must have that few distinct non-zero
	// values.
	Share int
}

// EncodeOptions choose the per-tensor formats. Tensors without an entry
// are stored as fp32. Either form is stored sparse when that is smaller.
type EncodeOptions struct {
	Formats map[string]TensorFormat // by tensor name ("fc1.w")
	Huffman bool
}

// Encode serialises m's tensors in the compressed model format. The result
// is exact for the values it is given when they are representable: fp16
// tensors must hold fp16 values, integer tensors must equal Scale·Q with
// fp16 scales (the pipeline rounds them so); Decode returns what was
// stored.
func Encode(m *nas.Model, opt EncodeOptions) ([]byte, error) {
	out := append([]byte(codecMagic), CodecVersion)
	h, _ := hex.DecodeString(m.Arch.Hash())
	out = append(out, h[:8]...)
	ts := m.Tensors()
	out = binary.AppendUvarint(out, uint64(len(ts)))
	for _, p := range ts {
		f := opt.Formats[p.Name]
		var best []byte
		var firstErr error
		for _, sparse := range []bool{false, true} {
			b, err := encodeTensor(m, p, f, sparse, opt.Huffman)
			if errors.Is(err, errNoDenseCodebook) {
				continue // the sparse form leaves the zeros out
			}
			if err != nil {
				firstErr = err
				break
			}
			if best == nil || len(b) < len(best) {
				best = b
			}
		}
		if firstErr != nil || best == nil {
			if firstErr == nil {
				firstErr = errors.New("no storage form fits")
			}
			return nil, fmt.Errorf("encode %q: %w", p.Name, firstErr)
		}
		out = append(out, best...)
	}
	return out, nil
}

func encodeTensor(m *nas.Model, p *nas.Param, f TensorFormat, sparse, huffman bool) ([]byte, error) {
	format := byte(fmtF32)
	var q *accel.QuantWeights
	switch {
	case f.Share > 0:
		format = fmtShared
	case f.Bits == 16:
		format = fmtF16
	case f.Bits > 0:
		format = fmtInt
		layer := p.Name[:len(p.Name)-len(kindOf(p.Name))-1]
		q = m.Quant[layer]
		if q == nil || kindOf(p.Name) != "w" || len(q.Q) != len(p.Data) {
			return nil, fmt.Errorf("%d-bit format needs the layer's quantized weights", f.Bits)
		}
		if q.Bits != f.Bits {
			return nil, fmt.Errorf("quantized weights have %d bits, format says %d", q.Bits, f.Bits)
		}
	}
	head := format
	if sparse {
		head |= flagSparse
	}
	if huffman {
		head |= flagHuffman
	}
	out := []byte{head}
	// Stored positions: all, or the non-zero ones (integer zero for fmtInt).
	isZero := func(i int) bool {
		if q != nil {
			return q.Q[i] == 0
		}
		return p.Data[i] == 0
	}
	var pos []int
	if sparse {
		var gaps []uint32
		last := -1
		for i := range p.Data {
			if !isZero(i) {
				gaps = append(gaps, uint32(i-last-1))
				last = i
				pos = append(pos, i)
			}
		}
		out = binary.AppendUvarint(out, uint64(len(pos)))
		out = appendSymbols(out, gaps, huffman)
	} else {
		pos = make([]int, len(p.Data))
		for i := range pos {
			pos[i] = i
		}
	}
	switch format {
	case fmtF32:
		for _, i := range pos {
			out = binary.LittleEndian.AppendUint32(out, math.Float32bits(p.Data[i]))
		}
	case fmtF16:
		for _, i := range pos {
			out = binary.LittleEndian.AppendUint16(out, Float32ToFloat16(p.Data[i]))
		}
	case fmtInt:
		out = append(out, byte(q.Bits))
		for _, s := range q.Scale {
			out = binary.LittleEndian.AppendUint16(out, Float32ToFloat16(s))
		}
		out = binary.LittleEndian.AppendUint32(out, math.Float32bits(q.InScale))
		out = append(out, byte(q.InZero))
		syms := make([]uint32, len(pos))
		for k, i := range pos {
			syms[k] = intSymbol(q.Q[i], q.Bits)
		}
		if huffman {
			out = append(out, HuffmanEncode(syms)...)
		} else {
			out = appendFixed(out, syms, q.Bits)
		}
	case fmtShared:
		book, index, err := codebookOf(p.Data, pos, f.Share)
		if err != nil {
			return nil, err
		}
		out = append(out, byte(f.Share))
		out = binary.AppendUvarint(out, uint64(len(book)))
		for _, v := range book {
			out = binary.LittleEndian.AppendUint32(out, math.Float32bits(v))
		}
		if huffman {
			out = append(out, HuffmanEncode(index)...)
		} else {
			out = appendFixed(out, index, f.Share)
		}
	}
	return out, nil
}

// intSymbol maps a b-bit signed integer to an unsigned symbol.
func intSymbol(v int8, b int) uint32 {
	if b == 1 {
		if v > 0 {
			return 1
		}
		return 0
	}
	return uint32(int32(v) + 1<<(b-1))
}

func symbolInt(s uint32, b int) int8 {
	if b == 1 {
		if s == 1 {
			return 1
		}
		return -1
	}
	return int8(int32(s) - 1<<(b-1))
}

// errNoDenseCodebook says that a shared tensor's zeros (pruned weights)
// would be one value more than its codebook holds if stored densely: as in
// Deep Compression, a pruned weight has no codebook entry, its position is
// given by the sparse index, so only the sparse form stores such a tensor.
var errNoDenseCodebook = errors.New("zero does not fit the codebook beside the shared values")

// codebookOf returns the sorted distinct values at pos and each one's index.
// Pruned zeros are not shared values: when the non-zero values fill the
// 2^share codebook, a dense form (pos holding zeros) fails with
// errNoDenseCodebook and the sparse form, whose pos holds only non-zeros,
// is used.
func codebookOf(data []float32, pos []int, share int) ([]float32, []uint32, error) {
	set := map[float32]bool{}
	for _, i := range pos {
		set[data[i]] = true
	}
	if len(set) > 1<<share {
		if set[0] && len(set)-1 <= 1<<share {
			return nil, nil, errNoDenseCodebook
		}
		return nil, nil, fmt.Errorf("%d distinct non-zero values do not fit a %d-bit codebook (share the weights first)", len(set)-btoi(set[0]), share)
	}
	book := make([]float32, 0, len(set))
	for v := range set {
		book = append(book, v)
	}
	sort.Slice(book, func(i, j int) bool { return book[i] < book[j] })
	at := make(map[float32]uint32, len(book))
	for i, v := range book {
		at[v] = uint32(i)
	}
	index := make([]uint32, len(pos))
	for k, i := range pos {
		index[k] = at[data[i]]
	}
	return book, index, nil
}

// appendSymbols writes a Huffman stream, or a byte of bit width followed by
// fixed-width fields.
func appendSymbols(out []byte, syms []uint32, huffman bool) []byte {
	if huffman {
		return append(out, HuffmanEncode(syms)...)
	}
	width := 1
	for _, s := range syms {
		width = max(width, bits.Len32(s))
	}
	out = append(out, byte(width))
	return appendFixed(out, syms, width)
}

// appendFixed packs each symbol in width bits, most significant first.
func appendFixed(out []byte, syms []uint32, width int) []byte {
	w := bitWriter{buf: out}
	for _, s := range syms {
		w.write(uint64(s), width)
	}
	return w.flush()
}

// readFixed unpacks n symbols of width bits from b; it returns the bytes used.
func readFixed(b []byte, n, width int) ([]uint32, int, error) {
	need := (n*width + 7) / 8
	if width < 1 || width > 32 || need > len(b) {
		return nil, 0, fmt.Errorf("%d fields of %d bits need %d bytes, %d left", n, width, need, len(b))
	}
	r := bitReader{buf: b}
	syms := make([]uint32, n)
	for i := range syms {
		var v uint32
		for k := 0; k < width; k++ {
			bit, _ := r.read()
			v = v<<1 | uint32(bit)
		}
		syms[i] = v
	}
	return syms, need, nil
}

// ErrCodec is wrapped by every error about a compressed model's bytes.
var ErrCodec = errors.New("invalid compressed model")

// Decode rebuilds a model of architecture a from Encode's bytes: float
// weights hold the stored values (integers dequantized as Scale·Q),
// m.Quant holds the integer forms and m.Sparse the CSR form of every conv
// or linear layer with at least SparseMin of its weights zero. The model
// says what it is; the backend that compiles its plan picks the kernels.
func Decode(a *nas.Arch, b []byte) (*nas.Model, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrCodec, fmt.Sprintf(format, args...))
	}
	if len(b) < 13 || string(b[:4]) != codecMagic {
		return nil, bad("not a compressed hwnas model (magic %q)", b[:min(4, len(b))])
	}
	if b[4] != CodecVersion {
		return nil, bad("format version %d, this hwnas reads %d", b[4], CodecVersion)
	}
	h, _ := hex.DecodeString(a.Hash())
	if string(b[5:13]) != string(h[:8]) {
		return nil, bad("saved for another architecture than %q", a.Name)
	}
	m, err := nas.NewModel(a, 0)
	if err != nil {
		return nil, err
	}
	pos := 13
	n, k := binary.Uvarint(b[pos:])
	ts := m.Tensors()
	if k <= 0 || n != uint64(len(ts)) {
		return nil, bad("%d tensors, architecture %q has %d", n, a.Name, len(ts))
	}
	pos += k
	for _, p := range ts {
		used, err := decodeTensor(m, p, b[pos:])
		if err != nil {
			return nil, bad("tensor %q: %v", p.Name, err)
		}
		pos += used
	}
	if pos != len(b) {
		return nil, bad("%d bytes after the last tensor", len(b)-pos)
	}
	for _, nd := range weightNodes(m) {
		if w := m.Param(nd.Layer.Name + ".w"); Sparsity(w.Data) >= SparseMin {
			m.Sparse[nd.Layer.Name] = CSR(w.Data, w.Shape[0])
		}
	}
	return m, nil
}

// SparseMin is the fraction of zero weights from which a conv or linear
// layer is sparse: Decode gives it its CSR form in Model.Sparse (int8
// layers too), which nas.Lower carries into the plan (accel.Op.Sparse) for
// the backend to run on sparse kernels where they pay on its device. Below
// half, CSR holds as many bytes as the dense weights.
const SparseMin = 0.5

func decodeTensor(m *nas.Model, p *nas.Param, b []byte) (int, error) {
	if len(b) < 1 {
		return 0, errors.New("truncated")
	}
	head := b[0]
	format, sparse, huffman := head&0x0f, head&flagSparse != 0, head&flagHuffman != 0
	pos := 1
	total := len(p.Data)
	readSyms := func(n, width int) ([]uint32, error) {
		if huffman {
			s, used, err := HuffmanDecode(b[pos:])
			if err != nil {
				return nil, err
			}
			if len(s) != n {
				return nil, fmt.Errorf("%d symbols, want %d", len(s), n)
			}
			pos += used
			return s, nil
		}
		s, used, err := readFixed(b[pos:], n, width)
		pos += used
		return s, err
	}
	var idx []int
	if sparse {
		nnz, k := binary.Uvarint(b[pos:])
		if k <= 0 || nnz > uint64(total) {
			return 0, fmt.Errorf("bad non-zero count")
		}
		pos += k
		width := 0
		if !huffman {
			if pos >= len(b) {
				return 0, errors.New("truncated")
			}
			width = int(b[pos])
			pos++
		}
		gaps, err := readSyms(int(nnz), width)
		if err != nil {
			return 0, err
		}
		last := -1
		for _, g := range gaps {
			last += int(g) + 1
			if last >= total {
				return 0, fmt.Errorf("position %d beyond %d values", last, total)
			}
			idx = append(idx, last)
		}
	} else {
		idx = make([]int, total)
		for i := range idx {
			idx[i] = i
		}
	}
	clear(p.Data)
	need := func(n int) error {
		if pos+n > len(b) {
			return errors.New("truncated")
		}
		return nil
	}
	switch format {
	case fmtF32:
		if err := need(4 * len(idx)); err != nil {
			return 0, err
		}
		for _, i := range idx {
			p.Data[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[pos:]))
			pos += 4
		}
	case fmtF16:
		if err := need(2 * len(idx)); err != nil {
			return 0, err
		}
		for _, i := range idx {
			p.Data[i] = Float16ToFloat32(binary.LittleEndian.Uint16(b[pos:]))
			pos += 2
		}
	case fmtInt:
		rows := p.Shape[0]
		if err := need(1 + 2*rows + 5); err != nil {
			return 0, err
		}
		qb := int(b[pos])
		pos++
		if checkBits(qb) != nil || qb > 8 {
			return 0, fmt.Errorf("%d-bit integers", qb)
		}
		q := &accel.QuantWeights{Bits: qb, Q: make([]int8, total), Scale: make([]float32, rows)}
		for r := range q.Scale {
			q.Scale[r] = Float16ToFloat32(binary.LittleEndian.Uint16(b[pos:]))
			pos += 2
		}
		q.InScale = math.Float32frombits(binary.LittleEndian.Uint32(b[pos:]))
		q.InZero = int32(b[pos+4])
		pos += 5
		syms, err := readSyms(len(idx), qb)
		if err != nil {
			return 0, err
		}
		for k, i := range idx {
			q.Q[i] = symbolInt(syms[k], qb)
		}
		copy(p.Data, q.Float())
		layer := p.Name[:len(p.Name)-len(kindOf(p.Name))-1]
		m.Quant[layer] = q
	case fmtShared:
		if err := need(2); err != nil {
			return 0, err
		}
		sb := int(b[pos])
		pos++
		nb, k := binary.Uvarint(b[pos:])
		if k <= 0 || sb < 1 || sb > 16 || nb > 1<<sb {
			return 0, fmt.Errorf("bad codebook (%d entries, %d bits)", nb, sb)
		}
		pos += k
		if err := need(4 * int(nb)); err != nil {
			return 0, err
		}
		book := make([]float32, nb)
		for i := range book {
			book[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[pos:]))
			pos += 4
		}
		index, err := readSyms(len(idx), sb)
		if err != nil {
			return 0, err
		}
		for k, i := range idx {
			if index[k] >= uint32(nb) {
				return 0, fmt.Errorf("index %d outside the %d-entry codebook", index[k], nb)
			}
			p.Data[i] = book[index[k]]
		}
	default:
		return 0, fmt.Errorf("unknown format %d", format)
	}
	return pos, nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
