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
	// BlockEnds names the last layer of each block, stage by stage (a
	// supernet maps layers to its slots by them).
	BlockEnds []string `json:"-"`
}

// InvalidError marks a point of the space that maps to no valid network;
// the coordinator counts these and gives the strategy reward 0.
type InvalidError struct{ Err error }

func (e *InvalidError) Error() string { return "invalid candidate: " + e.Err.Error() }
func (e *InvalidError) Unwrap() error { return e.Err }

// BuildCandidate maps a Config to a network with nas.Builder's blocks:
// each stage is Repeats blocks of its type, the first with the stage's
// stride, followed by the head (global average pooling, or flattening
// the last feature map) and a linear classifier.
//
//	conv       k×k conv + BN + ReLU
//	dwsep      Builder.DepthwiseSeparable (3×3 depthwise, 1×1), ReLU
//	invres     Builder.InvertedResidual with the stage's expansion and k, ReLU6
//	fire       (2×2 max-pool when strided) Builder.Fire: squeeze to
//	           max(1, out/4), expands of out/2 and out − out/2
//	shufflev2  Builder.ShuffleV2Unit
//
// The kernel decision applies to conv and invres (the other blocks are
// 3×3 by design). Every conv, depthwise conv and linear layer of a stage
// gets the stage's compression; depthwise layers are never channel-pruned
// or factorised and the classifier is never pruned. A Config whose network
// is not valid (an odd width for shufflev2, a stride-1 shufflev2 that
// changes width, a graph nas rejects) returns an *InvalidError.
func BuildCandidate(cfg Config) (*Candidate, error) {
	if len(cfg.Input) != 3 || len(cfg.Stages) == 0 {
		return nil, &InvalidError{fmt.Errorf("input %v is not [C,H,W] or there are no stages", cfg.Input)}
	}
	b := nas.NewBuilder("candidate", cfg.Input, cfg.Classes)
	ends := make([]string, len(cfg.Stages)) // last layer of each stage
	var blockEnds []string
	for si, st := range cfg.Stages {
		for r := 0; r < st.Repeats; r++ {
			stride := 1
			if r == 0 {
				stride = st.Stride
			}
			if err := addBlock(b, st, stride); err != nil {
				return nil, &InvalidError{fmt.Errorf("stage %d block %d (%s): %w", si+1, r+1, st.Block, err)}
			}
			blockEnds = append(blockEnds, b.Current())
		}
		ends[si] = b.Current()
	}
	switch cfg.Head {
	case HeadGAP, "":
		b.GAP()
	case HeadFlatten:
		b.Flatten()
	default:
		return nil, &InvalidError{fmt.Errorf("unknown head %q", cfg.Head)}
	}
	b.Linear(cfg.Classes, "")
	arch, err := b.Build()
	if err != nil {
		return nil, &InvalidError{err}
	}
	g, err := nas.NewGraph(arch)
	if err != nil {
		return nil, &InvalidError{err}
	}
	var recipes []LayerRecipe
	stage := 0
	for _, n := range g.Nodes {
		l := n.Layer
		st := cfg.Stages[min(stage, len(cfg.Stages)-1)]
		if n.Weighted() {
			recipes = append(recipes, layerRecipe(g, n, st))
		}
		if stage < len(ends) && l.Name == ends[stage] {
			stage++
		}
	}
	arch.Name = "candidate"
	if cfg.Normalize != nil {
		arch.Normalize = nas.NewNormalization(cfg.Normalize.Mean, cfg.Normalize.Std)
		if _, err := nas.NewGraph(arch); err != nil {
			return nil, &InvalidError{err}
		}
	}
	return &Candidate{Config: cfg, Arch: arch, Layers: recipes, BlockEnds: blockEnds}, nil
}

// Sizes below which a family is not applied to a layer: factorising or
// pruning a layer of a few dozen weights saves nothing and costs accuracy.
const (
	minRankChannels = 8   // low-rank needs ≥ 8 input and output channels
	minPruneWeights = 256 // magnitude pruning needs ≥ 256 weights
	minBitsSensible = 8   // first layer, depthwise layers, classifier: ≥ 8 bits
)

// layerRecipe applies the stage's choices to one conv, depthwise or
// linear layer, leaving out what does not pay on it: low-rank on layers
// narrower than minRankChannels and on depthwise and k×k-from-one-channel
// layers, pruning on layers under minPruneWeights weights, and fewer than
// 8 bits on the first layer, depthwise layers and the classifier (the
// usual mixed-precision rule: these hold few weights and lose the most).
func layerRecipe(g *nas.Graph, n *nas.Node, st StageConfig) LayerRecipe {
	r := LayerRecipe{Layer: n.Layer.Name, Bits: st.Bits, Clusters: st.Clusters, Prune: st.Prune, Rank: st.Rank}
	in := g.InShape(n, 0)
	out := g.OutShape(n)
	var cin, cout, weights int
	switch n.Layer.Type {
	case nas.TypeLinear:
		cin, cout = in.Size(), out.Size()
		weights = cin * cout
	default:
		c := n.Conv.Norm()
		cin, cout = c.C/c.Groups, c.K
		weights = cout * cin * c.KH * c.KW
	}
	first := len(n.In) > 0 && n.In[0] == 0
	special := first || n.Layer.Type == nas.TypeDWConv || n.Layer.Type == nas.TypeLinear
	if special && r.Bits < minBitsSensible {
		r.Bits = minBitsSensible
	}
	if n.Layer.Type == nas.TypeDWConv || n.Layer.Type == nas.TypeLinear && g.Output == n.Out[0] {
		r.Prune, r.Rank = 0, 0
	}
	if cin < minRankChannels || cout < minRankChannels {
		r.Rank = 0
	}
	if weights < minPruneWeights {
		r.Prune = 0
	}
	if r.Rank >= 1 {
		r.Rank = 0
	}
	return r
}

// addBlock appends one block of st's type to b.
func addBlock(b *nas.Builder, st StageConfig, stride int) error {
	out := st.Width
	switch st.Block {
	case BlockConv:
		b.ConvBN(out, st.Kernel, stride, 1, "relu")
	case BlockDWSep:
		b.DepthwiseSeparable(out, stride, "relu")
	case BlockInvRes:
		b.InvertedResidual(out, st.Expansion, st.Kernel, stride, "relu6")
	case BlockFire:
		if out < 2 {
			return fmt.Errorf("width %d is too narrow for a fire module", out)
		}
		if stride > 1 {
			b.MaxPool(2, stride)
		}
		b.Fire(max(1, out/4), out/2, out-out/2)
	case BlockShuffleV2:
		b.ShuffleV2Unit(out, stride)
	default:
		return fmt.Errorf("unknown block type %q", st.Block)
	}
	return b.Err()
}
