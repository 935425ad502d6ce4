package search

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"hwnas/nas"
)

// Block types a stage may use; they name the compact blocks of the nas
// package (DESIGN.md, family 5).
const (
	BlockConv      = "conv"      // plain conv + BN + ReLU
	BlockDWSep     = "dwsep"     // MobileNet depthwise-separable
	BlockInvRes    = "invres"    // MobileNetV2 inverted residual (expansion, linear bottleneck)
	BlockFire      = "fire"      // SqueezeNet fire module
	BlockShuffleV2 = "shufflev2" // ShuffleNetV2 unit (channel split + shuffle)
)

// BlockTypes lists the known block types in a fixed order.
var BlockTypes = []string{BlockConv, BlockDWSep, BlockInvRes, BlockFire, BlockShuffleV2}

// StageSpace holds the choices of one stage. A stage is Repeats blocks of
// one Block type at one Width; its first block has stride Stride (1 or 2,
// fixed, not searched). The compression fields choose the recipe for every
// conv and linear layer of the stage: Prune is the fraction of weights
// removed by magnitude (unstructured; the width decision already covers
// channel counts), Bits the weight bit width (32 = no quantization), Rank
// the low-rank fraction (1 = no factorisation), Clusters the k-means
// codebook size (0 = none; used when Bits is 32).
type StageSpace struct {
	Block     []string  `json:"block"`
	Width     []int     `json:"width"`
	Kernel    []int     `json:"kernel"`
	Expansion []int     `json:"expansion"`
	Repeats   []int     `json:"repeats"`
	Stride    int       `json:"stride"`
	Prune     []float64 `json:"prune"`
	Bits      []int     `json:"bits"`
	Rank      []float64 `json:"rank"`
	Clusters  []int     `json:"clusters"`
}

// Heads a space may offer between the last stage and the classifier.
const (
	HeadGAP     = "gap"     // global average pooling: C features
	HeadFlatten = "flatten" // the whole last feature map: C·H·W features
)

// Space is the search space: the stages in order, the classifier head and
// the global distillation switch. Input is the per-sample input shape
// [C,H,W] and Classes the number of outputs. Head lists the head choices;
// empty means global average pooling only and adds no decision (the form
// of spaces and studies written before heads were searched).
type Space struct {
	Version int   `json:"version"`
	Input   []int `json:"input"`
	Classes int   `json:"classes"`
	// Normalize is the input normalisation every candidate applies (the
	// data set's per-channel statistics); nil: raw pixels.
	Normalize *nas.Normalization `json:"normalize,omitempty"`
	Stages    []StageSpace       `json:"stages"`
	Head      []string           `json:"head,omitempty"`
	Distill   []bool             `json:"distill"`
}

// Decision is one categorical decision: its name and the printed form of
// each choice.
type Decision struct {
	Name    string   `json:"name"`
	Choices []string `json:"choices"`
}

// Decisions is one point of a space: for each decision of Space.Decisions,
// the index of the chosen value.
type Decisions []int

// key identifies the decisions in a map.
func (d Decisions) key() string { return fmt.Sprint([]int(d)) }

// StageConfig is the chosen values of one stage.
type StageConfig struct {
	Block     string  `json:"block"`
	Width     int     `json:"width"`
	Kernel    int     `json:"kernel"`
	Expansion int     `json:"expansion"`
	Repeats   int     `json:"repeats"`
	Stride    int     `json:"stride"`
	Prune     float64 `json:"prune"`
	Bits      int     `json:"bits"`
	Rank      float64 `json:"rank"`
	Clusters  int     `json:"clusters"`
}

// Config is a decoded point of the space. Head is HeadGAP or
// HeadFlatten ("" means HeadGAP).
type Config struct {
	Input     []int              `json:"input"`
	Classes   int                `json:"classes"`
	Normalize *nas.Normalization `json:"normalize,omitempty"`
	Stages    []StageConfig      `json:"stages"`
	Head      string             `json:"head,omitempty"`
	Distill   bool               `json:"distill"`
}

// stageFields is the order in which a stage's decisions are flattened.
var stageFields = []string{"block", "width", "kernel", "expansion", "repeats", "prune", "bits", "rank", "clusters"}

// DefaultMNISTSpace is the built-in space for 1×28×28 inputs and 10
// classes, aimed at models of a few thousand weights that run in about
// 10 µs at batch 1 on one CPU core: three stride-2 stages (28→14→7→4) so
// the later, wider layers run on small maps; plain convolutions or
// depthwise-separable blocks (the multi-op blocks — inverted residual,
// fire, ShuffleNetV2 — cost more in per-op overhead than they save at this
// size and are left to custom spaces); a global-average-pooling or
// flattening head (flattening keeps the 4×4 layout, worth about half a
// point of accuracy on MNIST); and a per-stage compression mix of
// magnitude pruning and k-means weight sharing (16 or 32 clusters,
// Huffman-coded), which is what brings such a model under 10 KB. Integer
// bit widths are not offered: at this size the int8 kernels are still
// slower than fp32 (a space file can add them).
// Distillation from the study's LeNet-5 teacher, trained for the proxy
// budget only, is weaker than the candidates themselves and is not offered.
// About 8·10⁶ points.
func DefaultMNISTSpace() *Space { return DefaultSpace([]int{1, 28, 28}, 10) }

// defaultWidths are the width choices of the default space's stages for
// one input channel; colour inputs get twice as many channels.
var defaultWidths = [][]int{{8, 12, 16}, {16, 24, 32}, {24, 32, 48}, {32, 48, 64}, {48, 64, 96}, {64, 96, 128}}

// DefaultSpace is the built-in space scaled to a C×H×W input with the
// given classes: one stride-2 stage per halving of the smaller side until
// it is at most 4 (28 → 14 → 7 → 4 and 32 → 16 → 8 → 4: three stages; 64:
// four; at most six), widths growing stage by stage from 8–16 channels
// (16–32 for colour inputs, which carry more to separate), and the
// choices and compression mix of DefaultMNISTSpace, which it is for
// 1×28×28 and 10 classes.
func DefaultSpace(input []int, classes int) *Space {
	comp := func(s StageSpace) StageSpace {
		s.Block = []string{BlockConv, BlockDWSep}
		s.Kernel = []int{3, 5}
		s.Expansion = []int{1}
		s.Stride = 2
		s.Prune = []float64{0, 0.5}
		s.Bits = []int{32}
		s.Rank = []float64{1}
		s.Clusters = []int{0, 16, 32}
		return s
	}
	stages := 0
	if len(input) == 3 {
		for side := min(input[1], input[2]); side > 4 && stages < len(defaultWidths); side = (side + 1) / 2 {
			stages++
		}
	}
	stages = max(stages, 1)
	scale := 1
	if len(input) == 3 && input[0] > 1 {
		scale = 2
	}
	sp := &Space{Version: 1, Input: append([]int(nil), input...), Classes: classes,
		Head: []string{HeadGAP, HeadFlatten}, Distill: []bool{false}}
	for i := 0; i < stages; i++ {
		w := make([]int, len(defaultWidths[i]))
		for k, v := range defaultWidths[i] {
			w[k] = v * scale
		}
		repeats := []int{1, 2}
		if i == 0 {
			repeats = []int{1}
		}
		sp.Stages = append(sp.Stages, comp(StageSpace{Width: w, Repeats: repeats}))
	}
	return sp
}

// Decisions lists the flattened decisions: "s1.block", "s1.width", …,
// "s2.block", …, "head" (when the space has head choices), "distill".
func (s *Space) Decisions() []Decision {
	var out []Decision
	for i, st := range s.Stages {
		for _, f := range stageFields {
			out = append(out, Decision{Name: fmt.Sprintf("s%d.%s", i+1, f), Choices: st.choices(f)})
		}
	}
	if len(s.Head) > 0 {
		out = append(out, Decision{Name: "head", Choices: append([]string(nil), s.Head...)})
	}
	ds := make([]string, len(s.Distill))
	for i, b := range s.Distill {
		ds[i] = strconv.FormatBool(b)
	}
	return append(out, Decision{Name: "distill", Choices: ds})
}

// Sizes returns the number of choices of each decision, the only view of
// the space a Strategy needs.
func (s *Space) Sizes() []int {
	d := s.Decisions()
	n := make([]int, len(d))
	for i := range d {
		n[i] = len(d[i].Choices)
	}
	return n
}

// Cardinality is the number of points in the space (saturating at 2⁶²).
func (s *Space) Cardinality() int64 {
	n := int64(1)
	for _, k := range s.Sizes() {
		if n > (1<<62)/int64(k) {
			return 1 << 62
		}
		n *= int64(k)
	}
	return n
}

func (st *StageSpace) choices(field string) []string {
	ints := func(v []int) []string {
		out := make([]string, len(v))
		for i, x := range v {
			out[i] = strconv.Itoa(x)
		}
		return out
	}
	floats := func(v []float64) []string {
		out := make([]string, len(v))
		for i, x := range v {
			out[i] = strconv.FormatFloat(x, 'g', -1, 64)
		}
		return out
	}
	switch field {
	case "block":
		return append([]string(nil), st.Block...)
	case "width":
		return ints(st.Width)
	case "kernel":
		return ints(st.Kernel)
	case "expansion":
		return ints(st.Expansion)
	case "repeats":
		return ints(st.Repeats)
	case "prune":
		return floats(st.Prune)
	case "bits":
		return ints(st.Bits)
	case "rank":
		return floats(st.Rank)
	case "clusters":
		return ints(st.Clusters)
	}
	return nil
}

// Decode turns an index vector into the chosen values. It fails when d has
// the wrong length or an index is out of range.
func (s *Space) Decode(d Decisions) (Config, error) {
	sizes := s.Sizes()
	if len(d) != len(sizes) {
		return Config{}, fmt.Errorf("decisions: %d values for a space of %d decisions", len(d), len(sizes))
	}
	for i, v := range d {
		if v < 0 || v >= sizes[i] {
			return Config{}, fmt.Errorf("decisions: value %d of decision %d is out of range [0,%d)", v, i, sizes[i])
		}
	}
	c := Config{Input: append([]int(nil), s.Input...), Classes: s.Classes, Normalize: s.Normalize}
	k := 0
	next := func() int { k++; return d[k-1] }
	for _, st := range s.Stages {
		c.Stages = append(c.Stages, StageConfig{
			Block:     st.Block[next()],
			Width:     st.Width[next()],
			Kernel:    st.Kernel[next()],
			Expansion: st.Expansion[next()],
			Repeats:   st.Repeats[next()],
			Stride:    st.Stride,
			Prune:     st.Prune[next()],
			Bits:      st.Bits[next()],
			Rank:      st.Rank[next()],
			Clusters:  st.Clusters[next()],
		})
	}
	c.Head = HeadGAP
	if len(s.Head) > 0 {
		c.Head = s.Head[next()]
	}
	c.Distill = s.Distill[next()]
	return c, nil
}

// Named returns the decisions as name → printed value, the form stored
// with a trial.
func (s *Space) Named(d Decisions) (map[string]string, error) {
	if _, err := s.Decode(d); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for i, dec := range s.Decisions() {
		out[dec.Name] = dec.Choices[d[i]]
	}
	return out, nil
}

// Validate checks that the space can be searched: a [C,H,W] input, at
// least two classes and one stage, no empty choice list, known block types
// and heads, and values in range (widths, kernels odd, prune in [0,1), bits in
// {32,16,8,4,2,1}, rank in (0,1], clusters 0 or ≥ 2).
func (s *Space) Validate() error {
	if s.Version != 1 {
		return fmt.Errorf("space: version %d is not supported (want 1)", s.Version)
	}
	if len(s.Input) != 3 {
		return fmt.Errorf("space: input must be [C,H,W], got %v", s.Input)
	}
	for _, v := range s.Input {
		if v <= 0 {
			return fmt.Errorf("space: input %v has a non-positive dimension", s.Input)
		}
	}
	if s.Classes < 2 {
		return fmt.Errorf("space: classes must be at least 2, got %d", s.Classes)
	}
	if s.Normalize != nil {
		probe := &nas.Arch{Version: nas.ArchVersion, Name: "space", Input: s.Input, Classes: s.Classes, Normalize: s.Normalize,
			Layers: []nas.Layer{{Name: "fc", Type: nas.TypeLinear, Out: s.Classes}}}
		if _, err := nas.NewGraph(probe); err != nil {
			return fmt.Errorf("space: %v", err)
		}
	}
	if len(s.Stages) == 0 {
		return errors.New("space: no stages")
	}
	if len(s.Distill) == 0 {
		return errors.New("space: distill has no choices (use [false] to turn it off)")
	}
	for _, h := range s.Head {
		if h != HeadGAP && h != HeadFlatten {
			return fmt.Errorf("space: unknown head %q (known: %s, %s)", h, HeadGAP, HeadFlatten)
		}
	}
	for i := range s.Stages {
		if err := s.Stages[i].validate(); err != nil {
			return fmt.Errorf("space: stage %d: %w", i+1, err)
		}
	}
	return nil
}

func (st *StageSpace) validate() error {
	for _, f := range stageFields {
		if len(st.choices(f)) == 0 {
			return fmt.Errorf("%s has no choices", f)
		}
	}
	for _, b := range st.Block {
		known := false
		for _, k := range BlockTypes {
			known = known || b == k
		}
		if !known {
			return fmt.Errorf("unknown block type %q (known: %s)", b, strings.Join(BlockTypes, ", "))
		}
	}
	checkInts := func(name string, v []int, ok func(int) bool, want string) error {
		for _, x := range v {
			if !ok(x) {
				return fmt.Errorf("%s %d is invalid (want %s)", name, x, want)
			}
		}
		return nil
	}
	checkFloats := func(name string, v []float64, ok func(float64) bool, want string) error {
		for _, x := range v {
			if !ok(x) {
				return fmt.Errorf("%s %g is invalid (want %s)", name, x, want)
			}
		}
		return nil
	}
	for _, err := range []error{
		checkInts("width", st.Width, func(x int) bool { return x >= 1 && x <= 4096 }, "1..4096"),
		checkInts("kernel", st.Kernel, func(x int) bool { return x >= 1 && x <= 11 && x%2 == 1 }, "odd, 1..11"),
		checkInts("expansion", st.Expansion, func(x int) bool { return x >= 1 && x <= 16 }, "1..16"),
		checkInts("repeats", st.Repeats, func(x int) bool { return x >= 1 && x <= 16 }, "1..16"),
		checkInts("bits", st.Bits, func(x int) bool { return x == 32 || x == 16 || x == 8 || x == 7 || x == 4 || x == 2 || x == 1 }, "32, 16, 8, 7, 4, 2 or 1"),
		checkInts("clusters", st.Clusters, func(x int) bool { return x == 0 || (x >= 2 && x <= 256) }, "0 (off) or 2..256"),
		checkFloats("prune", st.Prune, func(x float64) bool { return x >= 0 && x < 1 }, "in [0,1)"),
		checkFloats("rank", st.Rank, func(x float64) bool { return x > 0 && x <= 1 }, "in (0,1]"),
	} {
		if err != nil {
			return err
		}
	}
	if st.Stride != 1 && st.Stride != 2 {
		return fmt.Errorf("stride %d is invalid (want 1 or 2)", st.Stride)
	}
	return nil
}

// ParseSpace decodes and validates a space from JSON. Syntax and type
// errors name the line and column; unknown fields are refused.
func ParseSpace(data []byte) (*Space, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var s Space
	if err := dec.Decode(&s); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return nil, fmt.Errorf("space: %s: %v", position(data, se.Offset-1), err)
		case errors.As(err, &te):
			return nil, fmt.Errorf("space: %s: field %q: %s is not a %s", position(data, te.Offset), te.Field, te.Value, te.Type)
		case errors.Is(err, io.EOF):
			return nil, errors.New("space: empty file")
		case errors.Is(err, io.ErrUnexpectedEOF):
			return nil, fmt.Errorf("space: %s: unexpected end of file", position(data, int64(len(data))))
		}
		return nil, fmt.Errorf("space: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("space: %s: extra data after the JSON object", position(data, dec.InputOffset()))
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return &s, nil
}

// LoadSpace reads and validates a space file.
func LoadSpace(path string) (*Space, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("space file: %w", err)
	}
	s, err := ParseSpace(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// position converts a byte offset into "line L, column C" (1-based).
func position(data []byte, off int64) string {
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	line, col := 1, 1
	for _, b := range data[:off] {
		if b == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	return fmt.Sprintf("line %d, column %d", line, col)
}

// dataShape is what the space's candidates take: the reference model is
// built for it.
func (s *Space) dataShape() nas.DataShape {
	return nas.DataShape{Input: s.Input, Classes: s.Classes, Normalize: s.Normalize}
}
