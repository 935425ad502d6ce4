package data

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// The CIFAR binary format (Krizhevsky's "binary version" of CIFAR-10 and
// CIFAR-100): a file is a plain sequence of fixed-size records with no
// header. A CIFAR-10 record is 1 label byte (0..9) then 3,072 pixel bytes:
// the 1,024 red values of the 32×32 image in row-major order, then the
// green, then the blue (so the bytes are already C×H×W). A CIFAR-100 record
// has 2 label bytes, the coarse label (0..19) then the fine label (0..99),
// before the same 3,072 pixel bytes; hwnas trains on the fine labels.
const (
	CIFARSide   = 32
	CIFARPixels = 3 * CIFARSide * CIFARSide

	CIFAR10Classes       = 10
	CIFAR100Classes      = 100
	CIFAR100CoarseLabels = 20
)

// CIFARKind tells the two record layouts apart.
type CIFARKind int

const (
	CIFAR10  CIFARKind = 10
	CIFAR100 CIFARKind = 100
)

func (k CIFARKind) labelBytes() int {
	if k == CIFAR100 {
		return 2
	}
	return 1
}

// RecordSize is the length of one record in bytes: 3,073 or 3,074.
func (k CIFARKind) RecordSize() int { return k.labelBytes() + CIFARPixels }

func (k CIFARKind) String() string { return "cifar" + strconv.Itoa(int(k)) }

// MaxCIFARRecords bounds the records of one batch file (the real files hold
// 10,000 or 50,000), so a huge stray file is refused before it is read.
const MaxCIFARRecords = 1 << 22

// ParseCIFAR decodes one batch file's bytes. The length must be a positive
// whole number of records and every label in range; the error says which
// record is wrong and how. Pixels come back as N×3×32×32 bytes, labels as
// the N (fine) labels.
func ParseCIFAR(b []byte, kind CIFARKind) (pixels, labels []byte, err error) {
	if kind != CIFAR10 && kind != CIFAR100 {
		return nil, nil, fmt.Errorf("unknown CIFAR kind %d", kind)
	}
	rec := kind.RecordSize()
	switch {
	case len(b) == 0:
		return nil, nil, errors.New("empty file (no records)")
	case len(b)%rec != 0:
		return nil, nil, fmt.Errorf("truncated or not a %s batch: %d bytes are %d whole %d-byte records and %d bytes more",
			kind, len(b), len(b)/rec, rec, len(b)%rec)
	case len(b)/rec > MaxCIFARRecords:
		return nil, nil, fmt.Errorf("%d records are more than the %d allowed", len(b)/rec, MaxCIFARRecords)
	}
	n := len(b) / rec
	pixels = make([]byte, n*CIFARPixels)
	labels = make([]byte, n)
	for i := 0; i < n; i++ {
		r := b[i*rec : (i+1)*rec]
		if kind == CIFAR100 {
			if r[0] >= CIFAR100CoarseLabels {
				return nil, nil, fmt.Errorf("record %d (byte %d): coarse label %d is outside 0..%d", i, i*rec, r[0], CIFAR100CoarseLabels-1)
			}
			if r[1] >= CIFAR100Classes {
				return nil, nil, fmt.Errorf("record %d (byte %d): fine label %d is outside 0..%d", i, i*rec+1, r[1], CIFAR100Classes-1)
			}
			labels[i] = r[1]
		} else {
			if r[0] >= CIFAR10Classes {
				return nil, nil, fmt.Errorf("record %d (byte %d): label %d is outside 0..%d", i, i*rec, r[0], CIFAR10Classes-1)
			}
			labels[i] = r[0]
		}
		copy(pixels[i*CIFARPixels:], r[kind.labelBytes():])
	}
	return pixels, labels, nil
}

// ReadCIFARFile reads and parses one batch file; errors name it.
func ReadCIFARFile(path string, kind CIFARKind) (pixels, labels []byte, err error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, nil, err
	}
	if limit := int64(MaxCIFARRecords) * int64(kind.RecordSize()); st.Size() > limit {
		return nil, nil, fmt.Errorf("%s: %d bytes, more than the %d records of %d bytes allowed", path, st.Size(), MaxCIFARRecords, kind.RecordSize())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	if pixels, labels, err = ParseCIFAR(b, kind); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return pixels, labels, nil
}

// cifarLayout is what findCIFAR found in a folder.
type cifarLayout struct {
	kind  CIFARKind
	dir   string   // the folder holding the batch files
	train []string // training batch files in order
	test  string
	names string // label names file ("" when absent)
}

// The file names of the two distributions; the archives unpack into
// cifar-10-batches-bin/ and cifar-100-binary/, which are looked into too.
const (
	cifar10TrainGlob = "data_batch_*.bin"
	cifar10Test      = "test_batch.bin"
	cifar10Names     = "batches.meta.txt"
	cifar100Train    = "train.bin"
	cifar100Test     = "test.bin"
	cifar100Names    = "fine_label_names.txt"
)

// findCIFAR looks for CIFAR-10 or CIFAR-100 batch files in dir or in the
// folder its archive unpacks into. It returns nil when there are none, and
// an error when the set is incomplete (training batches without the test
// batch, say).
func findCIFAR(dir string) (*cifarLayout, error) {
	for _, d := range []string{dir, filepath.Join(dir, "cifar-10-batches-bin"), filepath.Join(dir, "cifar-100-binary")} {
		train, _ := filepath.Glob(filepath.Join(d, cifar10TrainGlob))
		if len(train) > 0 {
			sort.Slice(train, func(i, j int) bool { return batchNumber(train[i]) < batchNumber(train[j]) })
			l := &cifarLayout{kind: CIFAR10, dir: d, train: train, test: filepath.Join(d, cifar10Test)}
			if !isFile(l.test) {
				return nil, fmt.Errorf("%w: %s has CIFAR-10 training batches but no %s", ErrNoData, d, cifar10Test)
			}
			if p := filepath.Join(d, cifar10Names); isFile(p) {
				l.names = p
			}
			return l, nil
		}
		if isFile(filepath.Join(d, cifar100Train)) {
			l := &cifarLayout{kind: CIFAR100, dir: d, train: []string{filepath.Join(d, cifar100Train)}, test: filepath.Join(d, cifar100Test)}
			if !isFile(l.test) {
				return nil, fmt.Errorf("%w: %s has a CIFAR-100 %s but no %s", ErrNoData, d, cifar100Train, cifar100Test)
			}
			if p := filepath.Join(d, cifar100Names); isFile(p) {
				l.names = p
			}
			return l, nil
		}
	}
	return nil, nil
}

// batchNumber is N of data_batch_N.bin (batches sort as numbers, not text).
func batchNumber(path string) int {
	s := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(path), "data_batch_"), ".bin")
	n, err := strconv.Atoi(s)
	if err != nil {
		return 1 << 30
	}
	return n
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// loadCIFAR reads the training batches (in order) and the test batch into
// two sets of 3×32×32 images.
func loadCIFAR(l *cifarLayout) (full, test *Set, classNames []string, err error) {
	var pix, lab []byte
	for _, p := range l.train {
		px, lb, err := ReadCIFARFile(p, l.kind)
		if err != nil {
			return nil, nil, nil, err
		}
		pix, lab = append(pix, px...), append(lab, lb...)
	}
	classes := int(l.kind)
	full = setFromBytes(l.dir+"/train", len(lab), 3, CIFARSide, CIFARSide, classes, pix, lab)
	px, lb, err := ReadCIFARFile(l.test, l.kind)
	if err != nil {
		return nil, nil, nil, err
	}
	test = setFromBytes(l.test, len(lb), 3, CIFARSide, CIFARSide, classes, px, lb)
	if l.names != "" {
		if classNames, err = readNames(l.names, classes); err != nil {
			return nil, nil, nil, err
		}
	}
	return full, test, classNames, nil
}

// readNames reads a label names file: one name a line, blank lines left
// out; it must name exactly classes labels.
func readNames(path string, classes int) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var names []string
	sc := bufio.NewScanner(io.LimitReader(f, 1<<20))
	for sc.Scan() {
		if s := strings.TrimSpace(sc.Text()); s != "" {
			names = append(names, s)
		}
	}
	if err := sc.Err(); err != nil && !errors.Is(err, fs.ErrClosed) {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(names) != classes {
		return nil, fmt.Errorf("%s names %d labels, the data set has %d classes", path, len(names), classes)
	}
	return names, nil
}

// setFromBytes scales pixel bytes to [0,1] floats (b/255).
func setFromBytes(name string, n, c, h, w, classes int, pix, lab []byte) *Set {
	s := &Set{Name: name, N: n, C: c, H: h, W: w, Classes: classes, Images: make([]float32, len(pix)), Labels: make([]int32, n)}
	for i, b := range pix {
		s.Images[i] = byteScale[b]
	}
	for i, b := range lab {
		s.Labels[i] = int32(b)
	}
	return s
}

// byteScale[b] is b/255, the pixel scaling of every format.
var byteScale = func() (t [256]float32) {
	for b := range t {
		t[b] = float32(b) / 255
	}
	return t
}()
