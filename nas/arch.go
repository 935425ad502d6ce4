package nas

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
)

// ArchVersion is the architecture format version this package reads and
// writes.
const ArchVersion = 1

// Arch is a network architecture in the versioned JSON format:
//
//	{"version":1,"name":"lenet5","input":[1,28,28],"classes":10,
//	 "normalize":{"mean":[0.2860],"std":[0.3530]},
//	 "layers":[{"name":"conv1","type":"conv","out":20,"kernel":5}, ...]}
//
// Layers are listed in topological order; each reads the tensors named by
// Inputs (default: the previous layer's output, or the image for the first
// layer). The last layer's output is the network's output and must be a
// vector of Classes logits.
type Arch struct {
	Version int    `json:"version"`
	Name    string `json:"name"`
	Input   []int  `json:"input"`   // per-sample input shape [C,H,W] or [F]
	Classes int    `json:"classes"` // number of output logits
	// Normalize, when set, is applied to the input before the first
	// layer, so the network takes raw pixels in [0, 1] (as data sets are
	// loaded and as an exported model is fed) and learns on normalised
	// ones.
	Normalize *Normalization `json:"normalize,omitempty"`
	Layers    []Layer        `json:"layers"`
}

// Normalization is a per-channel input normalisation,
// x' = (x − Mean[c]) / Std[c], with the statistics of the training split
// (data.Info.Mean, Std). There is one value per input channel (C of
// [C,H,W]; one for a flat [F] input).
type Normalization struct {
	Mean []float32 `json:"mean"`
	Std  []float32 `json:"std"`
}

// NewNormalization returns the normalisation with the given statistics
// (copied).
func NewNormalization(mean, std []float32) *Normalization {
	return &Normalization{Mean: append([]float32(nil), mean...), Std: append([]float32(nil), std...)}
}

// ScaleShift returns the normalisation as y = x·scale[c] + shift[c]:
// scale = 1/Std, shift = −Mean/Std.
func (n *Normalization) ScaleShift() (scale, shift []float32) {
	scale, shift = make([]float32, len(n.Std)), make([]float32, len(n.Std))
	for c := range n.Std {
		scale[c] = float32(1 / float64(n.Std[c]))
		shift[c] = float32(-float64(n.Mean[c]) / float64(n.Std[c]))
	}
	return scale, shift
}

// Apply normalises x in place: samples of len(n.Mean)·plane values, each
// channel's plane contiguous (NCHW).
func (n *Normalization) Apply(x []float32, plane int) {
	scale, shift := n.ScaleShift()
	c := len(scale)
	for i := range x {
		k := (i / plane) % c
		x[i] = x[i]*scale[k] + shift[k]
	}
}

// check validates the normalisation against the input shape.
func (n *Normalization) check(a *Arch) error {
	c := 1
	if len(a.Input) == 3 {
		c = a.Input[0]
	}
	if len(n.Mean) != c || len(n.Std) != c {
		return fmt.Errorf("arch %q: normalize has %d means and %d standard deviations for %d input channel(s)", a.Name, len(n.Mean), len(n.Std), c)
	}
	for k := range n.Mean {
		m, s := float64(n.Mean[k]), float64(n.Std[k])
		if math.IsNaN(m) || math.IsInf(m, 0) || !(s > 1e-12) || math.IsInf(s, 0) {
			return fmt.Errorf("arch %q: normalize channel %d: mean %v and std %v must be finite, std positive", a.Name, k, n.Mean[k], n.Std[k])
		}
	}
	return nil
}

// Layer is one node of an architecture. Only the fields its Type uses may
// be set; zero values mean the defaults noted.
//
// Types and their fields:
//
//	conv       out, kernel, stride (1), pad (0), dilation (1), groups (1), bias (true), act
//	dwconv     depthwise conv: groups = out = input channels; kernel, stride, pad, dilation, bias, act
//	linear     out, bias (true), act; any input shape is read as a flat vector
//	batchnorm  act; per channel of [C,H,W] or per feature of [F]
//	relu, relu6, hardswish, act (with act)
//	maxpool, avgpool  size (2), stride (size), pad (0)
//	gap        global average pool [C,H,W] → [C]
//	add        two inputs of the same shape, act
//	concat     two or more [C,H,W] inputs of the same H, W, joined on channels
//	shuffle    groups: channel shuffle (ShuffleNet)
//	split      sizes (default two equal halves): outputs "name:0", "name:1", …
//	flatten    [C,H,W] → [C·H·W]
type Layer struct {
	Name     string   `json:"name"`
	Type     string   `json:"type"`
	Inputs   []string `json:"inputs,omitempty"`
	Out      int      `json:"out,omitempty"`
	Kernel   int      `json:"kernel,omitempty"`
	Stride   int      `json:"stride,omitempty"`
	Pad      int      `json:"pad,omitempty"`
	Dilation int      `json:"dilation,omitempty"`
	Groups   int      `json:"groups,omitempty"`
	Act      string   `json:"act,omitempty"`
	Bias     *bool    `json:"bias,omitempty"`
	Size     int      `json:"size,omitempty"`
	Sizes    []int    `json:"sizes,omitempty"`
}

// HasBias reports whether a conv or linear layer has a bias (default true).
func (l *Layer) HasBias() bool { return l.Bias == nil || *l.Bias }

// Layer types: each is defined in its own file (layer_conv.go, …; see
// layerType) and registered there.
const (
	TypeConv      = "conv"
	TypeDWConv    = "dwconv"
	TypeLinear    = "linear"
	TypeBatchNorm = "batchnorm"
	TypeReLU      = "relu"
	TypeReLU6     = "relu6"
	TypeHardSwish = "hardswish"
	TypeAct       = "act"
	TypeMaxPool   = "maxpool"
	TypeAvgPool   = "avgpool"
	TypeGAP       = "gap"
	TypeAdd       = "add"
	TypeConcat    = "concat"
	TypeShuffle   = "shuffle"
	TypeSplit     = "split"
	TypeFlatten   = "flatten"
)

// InputName is the name layers use to read the network's input image.
const InputName = "input"

// ParseArch decodes and validates an architecture. Malformed JSON is
// reported with its line and column; unknown fields and unsupported
// versions are rejected; invalid graphs are reported with the layer and
// the reason (see NewGraph).
func ParseArch(b []byte) (*Arch, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var a Arch
	if err := dec.Decode(&a); err != nil {
		return nil, jsonError(b, dec, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		line, col := position(b, int(dec.InputOffset()))
		return nil, fmt.Errorf("arch JSON: unexpected data after the object at line %d, column %d", line, col)
	}
	if a.Version != ArchVersion {
		return nil, fmt.Errorf("arch %q: unsupported version %d (this hwnas reads version %d)", a.Name, a.Version, ArchVersion)
	}
	if _, err := NewGraph(&a); err != nil {
		return nil, err
	}
	return &a, nil
}

// jsonError turns a decoding error into one that names the line and column.
func jsonError(b []byte, dec *json.Decoder, err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		line, col := position(b, int(se.Offset)-1) // Offset is just past the bad byte
		return fmt.Errorf("arch JSON: line %d, column %d: %v", line, col, se)
	case errors.As(err, &te):
		line, col := position(b, int(te.Offset))
		field := te.Field
		if field == "" {
			field = "value"
		}
		return fmt.Errorf("arch JSON: line %d, column %d: %s must be %s, not %s", line, col, field, te.Type, te.Value)
	case errors.Is(err, io.EOF):
		return errors.New("arch JSON: empty input")
	case errors.Is(err, io.ErrUnexpectedEOF):
		line, col := position(b, len(b))
		return fmt.Errorf("arch JSON: line %d, column %d: unexpected end of input", line, col)
	}
	line, col := position(b, int(dec.InputOffset()))
	return fmt.Errorf("arch JSON: line %d, column %d: %v", line, col, err)
}

// position converts a byte offset into a 1-based line and column.
func position(b []byte, off int) (line, col int) {
	if off > len(b) {
		off = len(b)
	}
	if off < 0 {
		off = 0
	}
	line = 1 + bytes.Count(b[:off], []byte("\n"))
	col = off - bytes.LastIndexByte(b[:off], '\n')
	return line, col
}

// LoadArch reads and validates an architecture file.
func LoadArch(path string) (*Arch, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("arch: %w", err)
	}
	a, err := ParseArch(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return a, nil
}

// ResolveArch returns the built-in architecture called nameOrPath at its
// default shape, or loads the file at that path. A name that is neither
// gets an error listing the built-ins.
func ResolveArch(nameOrPath string) (*Arch, error) {
	if _, _, err := lookupBuiltin(nameOrPath); err == nil {
		return BuiltinArch(nameOrPath)
	}
	return resolveFile(nameOrPath)
}

// ResolveArchFor returns the built-in architecture called nameOrPath
// built for shape s (see BuiltinArchFor), or loads the file at that path
// as it is (its own input shape and normalisation).
func ResolveArchFor(nameOrPath string, s DataShape) (*Arch, error) {
	if _, _, err := lookupBuiltin(nameOrPath); err == nil {
		return BuiltinArchFor(nameOrPath, s)
	}
	return resolveFile(nameOrPath)
}

// IsBuiltin reports whether nameOrPath names a built-in architecture.
func IsBuiltin(nameOrPath string) bool {
	_, _, err := lookupBuiltin(nameOrPath)
	return err == nil
}

func resolveFile(nameOrPath string) (*Arch, error) {
	if _, err := os.Stat(nameOrPath); err != nil {
		if base, _, ok := strings.Cut(nameOrPath, ":"); ok && builtins[base].build != nil {
			_, _, werr := lookupBuiltin(nameOrPath)
			return nil, werr
		}
		if strings.ContainsAny(nameOrPath, "/.") {
			return nil, fmt.Errorf("arch %q: %w (built-in architectures: %s)", nameOrPath, err, strings.Join(BuiltinNames(), ", "))
		}
		return nil, fmt.Errorf("unknown architecture %q: not a built-in (%s) and no such file", nameOrPath, strings.Join(BuiltinNames(), ", "))
	}
	return LoadArch(nameOrPath)
}

// JSON returns the architecture as indented JSON that ParseArch reads back.
func (a *Arch) JSON() []byte {
	b, err := json.MarshalIndent(a, "", "  ")
	if err != nil { // cannot happen: the struct has only plain fields
		return nil
	}
	return append(b, '\n')
}

// Clone returns a deep copy of a.
func (a *Arch) Clone() *Arch {
	c := *a
	c.Input = append([]int(nil), a.Input...)
	if a.Normalize != nil {
		c.Normalize = NewNormalization(a.Normalize.Mean, a.Normalize.Std)
	}
	c.Layers = make([]Layer, len(a.Layers))
	for i, l := range a.Layers {
		l.Inputs = append([]string(nil), l.Inputs...)
		l.Sizes = append([]int(nil), l.Sizes...)
		if l.Bias != nil {
			b := *l.Bias
			l.Bias = &b
		}
		c.Layers[i] = l
	}
	return &c
}

// Hash is a stable hex SHA-256 of the architecture's structure: the
// normalized layers (defaults filled in), input shape and classes. The
// name is left out, so a renamed copy of an architecture keeps its hash
// (and can load the same weights).
func (a *Arch) Hash() string {
	n := a.normalized()
	n.Name = ""
	b, _ := json.Marshal(n)
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// normalized returns a copy with every default made explicit, so that two
// spellings of the same network hash alike.
func (a *Arch) normalized() *Arch {
	c := a.Clone()
	prev := InputName
	for i := range c.Layers {
		l := &c.Layers[i]
		if len(l.Inputs) == 0 {
			l.Inputs = []string{prev}
		}
		prev = l.Name
		if t := layerKinds[l.Type]; t != nil && t.defaults != nil {
			t.defaults(l)
		}
		if l.Act == "none" {
			l.Act = ""
		}
	}
	return c
}

func one(v int) int {
	if v == 0 {
		return 1
	}
	return v
}
