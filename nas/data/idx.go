package data

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// The IDX format (LeCun's MNIST files): a big-endian header of a 4-byte
// magic number 0x0000TTDD, where TT is the element type (0x08: unsigned
// byte) and DD the number of dimensions, then DD big-endian uint32 sizes,
// then the ∏ sizes elements in row-major order. hwnas reads the two kinds
// image-classification sets use.
const (
	// MagicImages is an unsigned-byte IDX file of three dimensions
	// (count, rows, columns).
	MagicImages = 0x00000803
	// MagicLabels is an unsigned-byte IDX file of one dimension (count).
	MagicLabels = 0x00000801
)

// Limits that reject absurd headers before anything is allocated. MNIST is
// 60,000·28·28 ≈ 47 MB; these leave room for sets hundreds of times larger.
const (
	// MaxIDXItems bounds the first dimension (number of images or labels).
	MaxIDXItems = 1 << 26
	// MaxIDXSide bounds an image's height and width.
	MaxIDXSide = 1 << 12
	// MaxIDXBytes bounds the total payload of one file.
	MaxIDXBytes = 1 << 34
)

// IDX is a parsed unsigned-byte IDX file.
type IDX struct {
	Magic uint32
	Dims  []int  // e.g. [60000 28 28] for images, [60000] for labels
	Data  []byte // ∏ Dims bytes, row-major
}

// gzipMagic starts every gzip stream (RFC 1952).
var gzipMagic = []byte{0x1f, 0x8b}

// ParseIDX reads one IDX file from r, raw or gzip-compressed (recognised by
// the gzip magic bytes), and checks that its magic is want (MagicImages or
// MagicLabels), that each dimension is within the limits above, and that the
// payload holds exactly ∏ Dims bytes: a short file and trailing bytes are
// both errors. Memory grows with the bytes actually read, never with what
// the header claims, so a lying header cannot make it allocate much.
func ParseIDX(r io.Reader, want uint32) (*IDX, error) {
	br := bufio.NewReader(r)
	if head, err := br.Peek(2); err == nil && bytes.Equal(head, gzipMagic) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("bad gzip stream: %w", err)
		}
		defer zr.Close()
		zr.Multistream(false)
		return parseRawIDX(zr, want)
	}
	return parseRawIDX(br, want)
}

func parseRawIDX(r io.Reader, want uint32) (*IDX, error) {
	var magic uint32
	if err := binary.Read(r, binary.BigEndian, &magic); err != nil {
		return nil, fmt.Errorf("truncated header (no magic number): %w", eofAsUnexpected(err))
	}
	if magic != want {
		return nil, fmt.Errorf("wrong magic number 0x%08x, want 0x%08x (%s)", magic, want, magicName(want))
	}
	ndim := int(magic & 0xff)
	raw := make([]uint32, ndim)
	if err := binary.Read(r, binary.BigEndian, raw); err != nil {
		return nil, fmt.Errorf("truncated header (%d dimensions expected): %w", ndim, eofAsUnexpected(err))
	}
	dims := make([]int, ndim)
	total := int64(1)
	for i, d := range raw {
		limit := uint32(MaxIDXSide)
		if i == 0 {
			limit = MaxIDXItems
		}
		if d == 0 || d > limit {
			return nil, fmt.Errorf("dimension %d is %d, want 1..%d", i, d, limit)
		}
		dims[i] = int(d)
		total *= int64(d)
	}
	if total > MaxIDXBytes {
		return nil, fmt.Errorf("dimensions %v hold %d bytes, more than the %d allowed", dims, total, int64(MaxIDXBytes))
	}
	// io.ReadAll grows its buffer with the data, so a header that claims
	// gigabytes over a short stream costs only what the stream holds.
	payload, err := io.ReadAll(io.LimitReader(r, total+1))
	if err != nil {
		return nil, fmt.Errorf("reading %d bytes of data: %w", total, err)
	}
	switch {
	case int64(len(payload)) < total:
		return nil, fmt.Errorf("truncated: dimensions %v need %d bytes of data, file has %d", dims, total, len(payload))
	case int64(len(payload)) > total:
		return nil, fmt.Errorf("trailing bytes after the %d bytes of data that dimensions %v describe", total, dims)
	}
	return &IDX{Magic: magic, Dims: dims, Data: payload}, nil
}

// ReadIDXFile opens path and parses it with ParseIDX; errors name the file.
func ReadIDXFile(path string, want uint32) (*IDX, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	x, err := ParseIDX(f, want)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return x, nil
}

func magicName(m uint32) string {
	switch m {
	case MagicImages:
		return "unsigned-byte images, 3 dimensions"
	case MagicLabels:
		return "unsigned-byte labels, 1 dimension"
	}
	return "unknown"
}

func eofAsUnexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
