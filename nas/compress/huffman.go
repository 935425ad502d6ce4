package compress

import (
	"container/heap"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
)

// maxCodeLen bounds Huffman code lengths. A stream of fewer than 2^32
// symbols cannot produce a tree deeper than 46 (Fibonacci frequencies), so
// this limit is only reached by corrupt input.
const maxCodeLen = 56

// HuffmanEncode writes syms as a self-describing canonical Huffman stream:
//
//	uvarint len(syms)
//	uvarint m (distinct symbols), then m pairs (uvarint symbol delta, byte code length),
//	symbols in increasing order
//	the codes of syms, most significant bit first, zero-padded to a byte.
//
// Codes are canonical: symbols sorted by (length, value) get consecutive
// codes, so the lengths alone define the code. A stream with one distinct
// symbol needs no bits per symbol (length 0); an empty stream is one byte.
func HuffmanEncode(syms []uint32) []byte {
	out := binary.AppendUvarint(nil, uint64(len(syms)))
	if len(syms) == 0 {
		return out
	}
	freq := map[uint32]int{}
	for _, s := range syms {
		freq[s]++
	}
	lengths := huffmanLengths(freq)
	symbols := make([]uint32, 0, len(lengths))
	for s := range lengths {
		symbols = append(symbols, s)
	}
	sort.Slice(symbols, func(i, j int) bool { return symbols[i] < symbols[j] })
	out = binary.AppendUvarint(out, uint64(len(symbols)))
	prev := uint32(0)
	for _, s := range symbols {
		out = binary.AppendUvarint(out, uint64(s-prev))
		out = append(out, byte(lengths[s]))
		prev = s
	}
	codes := canonicalCodes(lengths)
	var w bitWriter
	w.buf = out
	for _, s := range syms {
		c := codes[s]
		w.write(c.bits, c.len)
	}
	return w.flush()
}

// HuffmanDecode reads one stream written by HuffmanEncode from the start of
// b and returns the symbols and the number of bytes the stream occupied.
func HuffmanDecode(b []byte) ([]uint32, int, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 {
		return nil, 0, errors.New("huffman: truncated symbol count")
	}
	pos := k
	if n == 0 {
		return []uint32{}, pos, nil
	}
	m, k := binary.Uvarint(b[pos:])
	if k <= 0 || m == 0 || m > n {
		return nil, 0, fmt.Errorf("huffman: bad alphabet size %d for %d symbols", m, n)
	}
	pos += k
	lengths := make(map[uint32]int, m)
	prev := uint64(0)
	for i := uint64(0); i < m; i++ {
		d, k := binary.Uvarint(b[pos:])
		if k <= 0 || pos+k >= len(b) {
			return nil, 0, errors.New("huffman: truncated code table")
		}
		pos += k
		s := prev + d
		if s > 0xffffffff || (i > 0 && d == 0) {
			return nil, 0, fmt.Errorf("huffman: bad symbol %d in code table", s)
		}
		l := int(b[pos])
		pos++
		if l > maxCodeLen || (l == 0) != (m == 1) {
			return nil, 0, fmt.Errorf("huffman: bad code length %d for symbol %d", l, s)
		}
		lengths[uint32(s)] = l
		prev = s
	}
	if n > uint64(len(b)-pos)*8+1 && m > 1 {
		return nil, 0, fmt.Errorf("huffman: %d symbols cannot fit in %d bytes", n, len(b)-pos)
	}
	syms := make([]uint32, n)
	if m == 1 {
		for s := range lengths {
			for i := range syms {
				syms[i] = s
			}
		}
		return syms, pos, nil
	}
	// Canonical decoding: for each length, the first code and the index of
	// its first symbol in the (length, value) order.
	order := canonicalOrder(lengths)
	var count [maxCodeLen + 1]int
	for _, s := range order {
		count[lengths[s]]++
	}
	var first, firstIdx [maxCodeLen + 2]uint64
	code, idx := uint64(0), uint64(0)
	for l := 1; l <= maxCodeLen; l++ {
		first[l], firstIdx[l] = code, idx
		code = (code + uint64(count[l])) << 1
		idx += uint64(count[l])
	}
	r := bitReader{buf: b, pos: pos}
	for i := range syms {
		c := uint64(0)
		for l := 1; ; l++ {
			if l > maxCodeLen {
				return nil, 0, errors.New("huffman: invalid code in stream")
			}
			bit, ok := r.read()
			if !ok {
				return nil, 0, fmt.Errorf("huffman: stream ends after %d of %d symbols", i, n)
			}
			c = c<<1 | uint64(bit)
			if count[l] > 0 && c-first[l] < uint64(count[l]) && c >= first[l] {
				syms[i] = order[firstIdx[l]+c-first[l]]
				break
			}
		}
	}
	return syms, r.end(), nil
}

// HuffmanBits returns the number of payload bits HuffmanEncode spends on
// syms (without the header): Σ freq(s)·len(s).
func HuffmanBits(syms []uint32) int {
	freq := map[uint32]int{}
	for _, s := range syms {
		freq[s]++
	}
	total := 0
	for s, l := range huffmanLengths(freq) {
		total += freq[s] * l
	}
	return total
}

type hnode struct {
	freq  int
	sym   uint32 // tie-break for determinism: smallest symbol in the subtree
	left  *hnode
	right *hnode
}

type hheap []*hnode

func (h hheap) Len() int { return len(h) }
func (h hheap) Less(i, j int) bool {
	if h[i].freq != h[j].freq {
		return h[i].freq < h[j].freq
	}
	return h[i].sym < h[j].sym
}
func (h hheap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *hheap) Push(x any)   { *h = append(*h, x.(*hnode)) }
func (h *hheap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// huffmanLengths builds a Huffman tree over freq and returns each symbol's
// code length (0 when there is a single symbol).
func huffmanLengths(freq map[uint32]int) map[uint32]int {
	lengths := make(map[uint32]int, len(freq))
	if len(freq) == 1 {
		for s := range freq {
			lengths[s] = 0
		}
		return lengths
	}
	h := make(hheap, 0, len(freq))
	for s, f := range freq {
		h = append(h, &hnode{freq: f, sym: s})
	}
	heap.Init(&h)
	for h.Len() > 1 {
		a := heap.Pop(&h).(*hnode)
		b := heap.Pop(&h).(*hnode)
		heap.Push(&h, &hnode{freq: a.freq + b.freq, sym: min(a.sym, b.sym), left: a, right: b})
	}
	var walk func(n *hnode, d int)
	walk = func(n *hnode, d int) {
		if n.left == nil {
			lengths[n.sym] = d
			return
		}
		walk(n.left, d+1)
		walk(n.right, d+1)
	}
	walk(h[0], 0)
	return lengths
}

// canonicalOrder sorts symbols by (code length, value).
func canonicalOrder(lengths map[uint32]int) []uint32 {
	order := make([]uint32, 0, len(lengths))
	for s := range lengths {
		order = append(order, s)
	}
	sort.Slice(order, func(i, j int) bool {
		a, b := order[i], order[j]
		if lengths[a] != lengths[b] {
			return lengths[a] < lengths[b]
		}
		return a < b
	})
	return order
}

type hcode struct {
	bits uint64
	len  int
}

// canonicalCodes assigns consecutive codes in canonical order.
func canonicalCodes(lengths map[uint32]int) map[uint32]hcode {
	codes := make(map[uint32]hcode, len(lengths))
	code, prevLen := uint64(0), 0
	for i, s := range canonicalOrder(lengths) {
		l := lengths[s]
		if i > 0 {
			code++
		}
		code <<= uint(l - prevLen)
		prevLen = l
		codes[s] = hcode{bits: code, len: l}
	}
	return codes
}

type bitWriter struct {
	buf  []byte
	acc  uint64
	nacc int
}

func (w *bitWriter) write(bits uint64, n int) {
	for n > 0 {
		take := min(n, 8)
		n -= take
		w.acc = w.acc<<uint(take) | (bits>>uint(n))&(1<<uint(take)-1)
		w.nacc += take
		for w.nacc >= 8 {
			w.nacc -= 8
			w.buf = append(w.buf, byte(w.acc>>uint(w.nacc)))
		}
	}
}

func (w *bitWriter) flush() []byte {
	if w.nacc > 0 {
		w.buf = append(w.buf, byte(w.acc<<uint(8-w.nacc)))
		w.nacc = 0
	}
	return w.buf
}

type bitReader struct {
	buf  []byte
	pos  int // next byte
	bit  int // bits consumed of buf[pos]
	used bool
}

func (r *bitReader) read() (uint8, bool) {
	if r.pos >= len(r.buf) {
		return 0, false
	}
	b := r.buf[r.pos] >> uint(7-r.bit) & 1
	r.used = true
	r.bit++
	if r.bit == 8 {
		r.bit = 0
		r.pos++
	}
	return b, true
}

// end is the offset just past the last byte any bit was read from.
func (r *bitReader) end() int {
	if r.bit > 0 {
		return r.pos + 1
	}
	return r.pos
}
