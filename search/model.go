package search

import (
	"fmt"

	"hwnas/nas"
)

// LayerRecipe is the compression chosen for one weight layer: the stage's
// prune ratio, bits, rank fraction and clusters, with the fields that do
// not apply to the layer's type cleared (depthwise convolutions are never
// channel-pruned or factorised, the classifier is never pruned).
type LayerRecipe struct {
	Layer    string  `json:"layer"`
	Prune    float64 `json:"prune,omitempty"`
	Bits     int     `json:"bits,omitempty"`
	Rank     float64 `json:"rank,omitempty"`
	Clusters int     `json:"clusters,omitempty"`
}

// Candidate is a decoded point as a network: its architecture and the
// per-layer compression.
type Candidate struct {
	Config Config        `json:"config"`
	Arch   *nas.Arch     `json:"arch"`
	Layers []LayerRecipe `json:"layers"`
}

// InvalidError marks a point of the space that maps to no valid network;
// the coordinator counts these and gives the strategy reward 0.
type InvalidError struct{ Err error }

func (e *InvalidError) Error() string { return "invalid candidate: " + e.Err.Error() }
func (e *InvalidError) Unwrap() error { return e.Err }

// BuildCandidate maps a Config to a network: each stage is Repeats blocks
// of its type, the first with the stage's stride, followed by global
// average pooling and a linear classifier. Blocks (BN after every conv):
//
//	conv       k×k conv, ReLU
//	dwsep      k×k depthwise, ReLU; 1×1 conv, ReLU
//	invres     1×1 conv to e·in (if e > 1), ReLU6; k×k depthwise, ReLU6;
//	           1×1 conv, linear; + input when stride 1 and in = out
//	fire       (2×2 max-pool when strided) 1×1 squeeze to out/4, ReLU;
//	           1×1 and k×k expands of out/2 each, concatenated, ReLU
//	shufflev2  stride 1, in = out: split halves, right half through
//	           1×1, k×k depthwise, 1×1; concat; shuffle 2. Otherwise both
//	           branches (k×k depthwise + 1×1 | 1×1, depthwise, 1×1) to
//	           out/2 each; concat; shuffle 2
//
// A Config whose network is not valid (odd widths for shufflev2, a graph
// nas rejects) returns an *InvalidError.
func BuildCandidate(cfg Config) (*Candidate, error) {
	b := &archBuilder{a: &nas.Arch{Version: nas.ArchVersion, Name: "candidate",
		Input: append([]int(nil), cfg.Input...), Classes: cfg.Classes}}
	if len(cfg.Input) != 3 {
		return nil, &InvalidError{fmt.Errorf("input %v is not [C,H,W]", cfg.Input)}
	}
	ch := cfg.Input[0]
	for si, st := range cfg.Stages {
		b.stage = st
		for r := 0; r < st.Repeats; r++ {
			stride := 1
			if r == 0 {
				stride = st.Stride
			}
			b.prefix = fmt.Sprintf("s%db%d_", si+1, r+1)
			var err error
			ch, err = b.block(ch, st, stride)
			if err != nil {
				return nil, &InvalidError{fmt.Errorf("stage %d block %d (%s): %w", si+1, r+1, st.Block, err)}
			}
		}
	}
	b.a.Layers = append(b.a.Layers, nas.Layer{Name: "gap", Type: nas.TypeGAP},
		nas.Layer{Name: "fc", Type: nas.TypeLinear, Out: cfg.Classes})
	last := cfg.Stages[len(cfg.Stages)-1]
	b.recipes = append(b.recipes, LayerRecipe{Layer: "fc", Bits: last.Bits, Rank: 1, Clusters: last.Clusters})
	if _, err := nas.NewGraph(b.a); err != nil {
		return nil, &InvalidError{err}
	}
	return &Candidate{Config: cfg, Arch: b.a, Layers: b.recipes}, nil
}

type archBuilder struct {
	a       *nas.Arch
	prefix  string
	stage   StageConfig
	recipes []LayerRecipe
}

// add appends a layer reading the layers named in from (none: the
// previous layer) and returns its name, which gets the block prefix.
func (b *archBuilder) add(l nas.Layer, from ...string) string {
	l.Name = b.prefix + l.Name
	l.Inputs = from
	b.a.Layers = append(b.a.Layers, l)
	return l.Name
}

// last is the name of the most recent layer's output.
func (b *archBuilder) last() string {
	if len(b.a.Layers) == 0 {
		return nas.InputName
	}
	return b.a.Layers[len(b.a.Layers)-1].Name
}

var noBias = func() *bool { f := false; return &f }()

// conv adds conv (or depthwise when dw) + batch norm with act, reading
// from; it records the layer's recipe and returns the BN's name.
func (b *archBuilder) conv(name, from string, out, k, stride int, dw bool, act string) string {
	t := nas.TypeConv
	if dw {
		t = nas.TypeDWConv
		out = 0
	}
	b.add(nas.Layer{Name: name, Type: t, Out: out, Kernel: k, Stride: one(stride), Pad: k / 2, Bias: noBias}, from)
	r := LayerRecipe{Layer: b.prefix + name, Bits: b.stage.Bits, Clusters: b.stage.Clusters}
	if !dw {
		r.Prune, r.Rank = b.stage.Prune, b.stage.Rank
	}
	b.recipes = append(b.recipes, r)
	return b.add(nas.Layer{Name: name + "_bn", Type: nas.TypeBatchNorm, Act: act})
}

func one(v int) int {
	if v <= 0 {
		return 1
	}
	return v
}

// block adds one block reading the previous layer's output with in
// channels and returns its output channels.
func (b *archBuilder) block(in int, st StageConfig, stride int) (int, error) {
	k, out := st.Kernel, st.Width
	from := b.last()
	switch st.Block {
	case BlockConv:
		b.conv("conv", from, out, k, stride, false, "relu")
	case BlockDWSep:
		d := b.conv("dw", from, 0, k, stride, true, "relu")
		b.conv("pw", d, out, 1, 1, false, "relu")
	case BlockInvRes:
		x := from
		if st.Expansion > 1 {
			x = b.conv("expand", from, in*st.Expansion, 1, 1, false, "relu6")
		}
		x = b.conv("dw", x, 0, k, stride, true, "relu6")
		x = b.conv("project", x, out, 1, 1, false, "")
		if stride == 1 && in == out {
			b.add(nas.Layer{Name: "add", Type: nas.TypeAdd}, x, from)
		}
	case BlockFire:
		if out < 2 {
			return 0, fmt.Errorf("width %d is too narrow for a fire module", out)
		}
		x := from
		if stride > 1 {
			x = b.add(nas.Layer{Name: "pool", Type: nas.TypeMaxPool, Size: 2, Stride: stride}, from)
		}
		sq := b.conv("squeeze", x, max(1, out/4), 1, 1, false, "relu")
		e1 := b.conv("expand1", sq, out/2, 1, 1, false, "relu")
		e3 := b.conv("expand3", sq, out-out/2, k, 1, false, "relu")
		b.add(nas.Layer{Name: "concat", Type: nas.TypeConcat}, e1, e3)
	case BlockShuffleV2:
		if out%2 != 0 {
			return 0, fmt.Errorf("width %d is odd; shufflev2 needs an even width", out)
		}
		h := out / 2
		var left, right string
		if stride == 1 && in == out {
			sp := b.add(nas.Layer{Name: "split", Type: nas.TypeSplit}, from)
			left = sp + ":0"
			r := b.conv("pw1", sp+":1", h, 1, 1, false, "relu")
			r = b.conv("dw", r, 0, k, 1, true, "")
			right = b.conv("pw2", r, h, 1, 1, false, "relu")
		} else {
			l := b.conv("ldw", from, 0, k, stride, true, "")
			left = b.conv("lpw", l, h, 1, 1, false, "relu")
			r := b.conv("pw1", from, h, 1, 1, false, "relu")
			r = b.conv("dw", r, 0, k, stride, true, "")
			right = b.conv("pw2", r, h, 1, 1, false, "relu")
		}
		b.add(nas.Layer{Name: "concat", Type: nas.TypeConcat}, left, right)
		b.add(nas.Layer{Name: "shuffle", Type: nas.TypeShuffle, Groups: 2})
	default:
		return 0, fmt.Errorf("unknown block type %q", st.Block)
	}
	return out, nil
}
