package search

import (
	"fmt"
	"slices"
	"strings"

	"hwnas/accel"
	"hwnas/nas"
)

// Supernet is the weight-sharing network of a space (ENAS, Once-for-All):
// every candidate of the space is a sub-network whose weights are slices
// of the supernet's (nas.SharedWeights).
//
// Slots. Block r of stage s has one slot per block type the stage offers;
// the head has one slot per head choice (and, for a flattening head, per
// size of the last feature map). A slot holds the tensors of its
// block type built at the stage's largest width, kernel and expansion,
// reading the previous stage's largest width. A candidate's block takes
// the first channels, the kernel centre and, through the depth decision,
// the first blocks of each stage (the stage's later blocks are skipped).
// Width, kernel, expansion and depth share weights; block types do not:
// a conv block and a depthwise-separable block at the same place hold
// different layers (different tensor shapes and roles), so each keeps its
// own weights, and a candidate trains only the slot of the type it
// chose (ProxylessNAS's choice blocks). The two heads differ likewise (a
// linear layer on C pooled features or on C·H·W flattened ones).
//
// Within the fire and ShuffleNetV2 blocks, whose output concatenates two
// branches (and shuffles them), first-k slicing still shares each tensor,
// but a narrower block's channel i after the concatenation is not the
// wider block's channel i: such sub-networks share weights without being
// sub-graphs of the widest network. The default spaces do not offer them.
//
// Batch-norm statistics are never shared: Evaluate recalibrates them for
// each sub-network on training images.
type Supernet struct {
	Space   *Space
	Weights *nas.SharedWeights
	Kernels accel.Kernels // nil: nas's default
	subs    map[string]*Subnet
	uses    uint64
}

// Subnet is one candidate bound to the supernet: a standalone model whose
// trainable tensors are loaded from (Load) and train into the supernet's
// slices.
type Subnet struct {
	Candidate *Candidate
	Model     *nas.Model
	bind      *nas.Binding
	used      uint64 // the supernet's Sub count when it was last returned
}

// maxSubnets bounds the built sub-networks a supernet keeps for reuse,
// the least recently used going first. Each keeps its model's training
// and evaluation buffers (tens of MB for an MNIST-sized network): 256 of
// them held 5 GB in a 4-minute MNIST run, and building one again costs
// about as much as one training step.
const maxSubnets = 32

// NewSupernet builds the supernet of space with weights initialised from
// seed as nas.NewModel initialises the largest network of each block type
// and head.
func NewSupernet(space *Space, seed uint64) (*Supernet, error) {
	if err := space.Validate(); err != nil {
		return nil, err
	}
	sn := &Supernet{Space: space, Weights: nas.NewSharedWeights(), subs: map[string]*Subnet{}}
	var types []string
	for _, st := range space.Stages {
		for _, b := range st.Block {
			if !slices.Contains(types, b) {
				types = append(types, b)
			}
		}
	}
	heads := space.Head
	if len(heads) == 0 {
		heads = []string{HeadGAP}
	}
	for _, t := range types {
		for _, h := range heads {
			cfg := Config{Input: space.Input, Classes: space.Classes, Normalize: space.Normalize, Head: h}
			for _, st := range space.Stages {
				b := st.Block[0]
				if slices.Contains(st.Block, t) {
					b = t
				}
				cfg.Stages = append(cfg.Stages, StageConfig{Block: b, Width: slices.Max(st.Width), Kernel: slices.Max(st.Kernel),
					Expansion: slices.Max(st.Expansion), Repeats: slices.Max(st.Repeats), Stride: st.Stride, Bits: 32, Rank: 1})
			}
			cand, err := BuildCandidate(cfg)
			if err != nil {
				return nil, fmt.Errorf("supernet: the largest %s network with the %s head: %w", t, h, err)
			}
			m, err := nas.NewModel(cand.Arch, seed)
			if err != nil {
				return nil, fmt.Errorf("supernet: %w", err)
			}
			if err := sn.Weights.Adopt(m, slotsOf(cand)); err != nil {
				return nil, err
			}
		}
	}
	return sn, nil
}

// slotsOf maps each layer of a candidate to its slot: "s2.b1.conv.<layer
// within the block>" for the first block of stage 2 when it is a conv
// block, "head.flatten.<layer>" after the last block. A layer's name
// within its block is what follows the block's prefix ("dws3.pw.bn" →
// "pw.bn"), or for a block of plain layers its type ("conv5" → "conv").
func slotsOf(c *Candidate) func(layer string) string {
	var blocks []string
	for si, st := range c.Config.Stages {
		for r := 0; r < st.Repeats; r++ {
			blocks = append(blocks, fmt.Sprintf("s%d.b%d.%s", si+1, r+1, st.Block))
		}
	}
	head := c.Config.Head
	if head == "" {
		head = HeadGAP
	}
	if head == HeadFlatten {
		// A flattening head's features depend on the last map's size,
		// which a fire block's pooling can make smaller than a strided
		// convolution's (7 → 3 against 7 → 4): one slot per size.
		if g, err := nas.NewGraph(c.Arch); err == nil && len(c.BlockEnds) > 0 {
			for _, n := range g.Nodes {
				if n.Layer.Name == c.BlockEnds[len(c.BlockEnds)-1] {
					if s := g.OutShape(n); len(s) == 3 {
						head = fmt.Sprintf("%s%dx%d", head, s[1], s[2])
					}
				}
			}
		}
	}
	slot := map[string]string{}
	bi := 0
	for _, l := range c.Arch.Layers {
		local := strings.TrimRight(l.Name, "0123456789")
		if _, after, ok := strings.Cut(l.Name, "."); ok {
			local = after
		}
		if bi < len(blocks) && bi < len(c.BlockEnds) {
			slot[l.Name] = blocks[bi] + "." + local
			if l.Name == c.BlockEnds[bi] {
				bi++
			}
			continue
		}
		slot[l.Name] = "head." + head + "." + local
	}
	return func(layer string) string { return slot[layer] }
}

// Sub returns the candidate of cfg bound to the supernet (built once and
// kept for reuse). Its model's tensors hold whatever was last loaded: call
// Load before using them.
func (sn *Supernet) Sub(cfg Config) (*Subnet, error) {
	cand, err := BuildCandidate(cfg)
	if err != nil {
		return nil, err
	}
	key := string(cand.Arch.JSON())
	sn.uses++
	if s := sn.subs[key]; s != nil {
		s.Candidate = cand // the same network; the compression may differ
		s.used = sn.uses
		return s, nil
	}
	m, err := nas.NewModel(cand.Arch, 0)
	if err != nil {
		return nil, &InvalidError{err}
	}
	m.Kernels = sn.Kernels
	b, err := sn.Weights.Bind(m, slotsOf(cand))
	if err != nil {
		return nil, err
	}
	if len(sn.subs) >= maxSubnets {
		oldest := ""
		for k, s := range sn.subs {
			if oldest == "" || s.used < sn.subs[oldest].used {
				oldest = k
			}
		}
		delete(sn.subs, oldest)
	}
	s := &Subnet{Candidate: cand, Model: m, bind: b, used: sn.uses}
	sn.subs[key] = s
	return s, nil
}

// Load copies the supernet's current slices into the sub-network.
func (s *Subnet) Load() { s.bind.Load() }

// TrainStep loads the sub-network, computes its gradients on one batch
// and adds them into the supernet's slices; the caller steps the shared
// weights (SharedWeights.Step) after one or more sub-networks.
func (s *Subnet) TrainStep(x []float32, labels []int32, n int) (loss float64, correct int, err error) {
	s.bind.Load()
	loss, correct, err = s.Model.Gradients(x, labels, n)
	if err != nil {
		return 0, 0, err
	}
	s.bind.AddGrads()
	return loss, correct, nil
}
