package search

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"hwnas/nas"
)

func TestBuildCandidateEveryBlock(t *testing.T) {
	for _, block := range BlockTypes {
		for _, exp := range []int{1, 4} {
			st := func(w, stride, rep int) StageConfig {
				return StageConfig{Block: block, Width: w, Kernel: 3, Expansion: exp, Repeats: rep, Stride: stride, Prune: 0.25, Bits: 8, Rank: 0.5, Clusters: 16}
			}
			cfg := Config{Input: []int{1, 28, 28}, Classes: 10, Stages: []StageConfig{st(8, 2, 2), st(16, 2, 1), st(16, 1, 2)}}
			cfg.Stages[1].Bits, cfg.Stages[2].Bits = 4, 2
			c, err := BuildCandidate(cfg)
			if err != nil {
				t.Fatalf("%s e=%d: %v", block, exp, err)
			}
			g, err := nas.NewGraph(c.Arch)
			if err != nil {
				t.Fatalf("%s: %v", block, err)
			}
			if out := g.Tensors[len(g.Tensors)-1]; out.Size() != 10 {
				t.Fatalf("%s: output %v", block, out)
			}
			if g.Params() <= 0 || g.MACs() <= 0 {
				t.Fatalf("%s: params %d MACs %d", block, g.Params(), g.MACs())
			}
			// Every recipe names a conv/dwconv/linear layer of the arch;
			// depthwise layers are never pruned or factorised.
			types := map[string]string{}
			for _, l := range c.Arch.Layers {
				types[l.Name] = l.Type
			}
			for _, r := range c.Layers {
				switch types[r.Layer] {
				case nas.TypeDWConv:
					if r.Prune != 0 || r.Rank != 0 {
						t.Fatalf("%s: depthwise recipe %+v", block, r)
					}
				case nas.TypeConv, nas.TypeLinear:
				default:
					t.Fatalf("%s: recipe for %q of type %q", block, r.Layer, types[r.Layer])
				}
			}
			// Stage recipes follow the layer order (8, 4, 2 bits); the
			// first layer, depthwise layers and the classifier keep 8.
			if first, last := c.Layers[0], c.Layers[len(c.Layers)-1]; first.Bits != 8 || last.Bits != 8 || last.Layer != c.Arch.Layers[len(c.Arch.Layers)-1].Name {
				t.Fatalf("%s: first recipe %+v, last %+v", block, first, last)
			}
			bits := map[int]bool{}

			nodes := map[string]*nas.Node{}
			for _, n := range g.Nodes {
				nodes[n.Layer.Name] = n
			}
			for _, r := range c.Layers {
				bits[r.Bits] = true
				n := nodes[r.Layer]
				if n.Layer.Type == nas.TypeDWConv && (r.Bits < 8 || r.Prune != 0 || r.Rank != 0) {
					t.Fatalf("%s: depthwise recipe %+v", block, r)
				}
				if cv := n.Conv.Norm(); n.Layer.Type == nas.TypeConv && cv.K*cv.C/cv.Groups*cv.KH*cv.KW < minPruneWeights && r.Prune != 0 {
					t.Fatalf("%s: %d-weight layer pruned: %+v", block, cv.K*cv.C*cv.KH*cv.KW, r)
				}
			}
			if !bits[8] || !bits[4] || !bits[2] {
				t.Fatalf("%s: recipes use bits %v, want 8, 4 and 2", block, bits)
			}
			if block == BlockInvRes && exp == 1 && strings.Contains(string(c.Arch.JSON()), ".expand") {
				t.Fatalf("invres with e=1 has an expand layer")
			}
		}
	}
}

// TestBuildCandidateDefaultSpace: random points of the default space map
// to valid networks (none is invalid by construction there).
func TestBuildCandidateDefaultSpace(t *testing.T) {
	s := DefaultMNISTSpace()
	rng := rand.New(rand.NewPCG(1, 1))
	for i := 0; i < 300; i++ {
		cfg, err := s.Decode(uniform(rng, s.Sizes()))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := BuildCandidate(cfg); err != nil {
			t.Fatalf("point %d %+v: %v", i, cfg, err)
		}
	}
}

func TestBuildCandidateInvalid(t *testing.T) {
	st := StageConfig{Block: BlockShuffleV2, Width: 7, Kernel: 3, Expansion: 1, Repeats: 1, Stride: 2, Bits: 32, Rank: 1}
	_, err := BuildCandidate(Config{Input: []int{1, 28, 28}, Classes: 10, Stages: []StageConfig{st}})
	var inv *InvalidError
	if !errors.As(err, &inv) || !strings.Contains(err.Error(), "even") {
		t.Fatalf("error %v, want an InvalidError about the odd width", err)
	}
	// A zero-width conv (possible only in a hand-made Config): nas
	// rejects the graph.
	st = StageConfig{Block: BlockConv, Width: 0, Kernel: 3, Expansion: 1, Repeats: 1, Stride: 2, Bits: 32, Rank: 1}
	_, err = BuildCandidate(Config{Input: []int{1, 28, 28}, Classes: 10, Stages: []StageConfig{st}})
	if !errors.As(err, &inv) {
		t.Fatalf("error %v, want an InvalidError", err)
	}
}

// TestBuildCandidateHead: the flatten head feeds the classifier the whole
// last feature map (32 channels × 4×4 after three stride-2 stages), the
// GAP head one value per channel; the classifier's weight count shows it.
func TestBuildCandidateHead(t *testing.T) {
	st := func(w, k int) StageConfig {
		return StageConfig{Block: BlockConv, Width: w, Kernel: k, Expansion: 1, Repeats: 1, Stride: 2, Bits: 32, Rank: 1, Clusters: 16}
	}
	for _, tc := range []struct {
		head     string
		fcIn     int
		lastType string
	}{
		{HeadGAP, 32, nas.TypeGAP},
		{"", 32, nas.TypeGAP},
		{HeadFlatten, 32 * 4 * 4, nas.TypeFlatten},
	} {
		cfg := Config{Input: []int{1, 28, 28}, Classes: 10, Head: tc.head, Stages: []StageConfig{st(8, 5), st(16, 3), st(32, 3)}}
		c, err := BuildCandidate(cfg)
		if err != nil {
			t.Fatalf("head %q: %v", tc.head, err)
		}
		ls := c.Arch.Layers
		if ls[len(ls)-2].Type != tc.lastType || ls[len(ls)-1].Type != nas.TypeLinear {
			t.Fatalf("head %q: layers end with %s, %s", tc.head, ls[len(ls)-2].Type, ls[len(ls)-1].Type)
		}
		g, err := nas.NewGraph(c.Arch)
		if err != nil {
			t.Fatal(err)
		}
		// conv 8@5×5 (no bias, BN), 16@3×3, 32@3×3, BN γ/β, classifier.
		convs := 8*25 + 16*8*9 + 32*16*9
		bn := 2 * (8 + 16 + 32)
		if got, want := g.Params(), int64(convs+bn+tc.fcIn*10+10); got != want {
			t.Fatalf("head %q: %d parameters, want %d", tc.head, got, want)
		}
	}
	cfg := Config{Input: []int{1, 28, 28}, Classes: 10, Head: "maxpool", Stages: []StageConfig{st(8, 3)}}
	var inv *InvalidError
	if _, err := BuildCandidate(cfg); !errors.As(err, &inv) || !strings.Contains(err.Error(), "maxpool") {
		t.Fatalf("error %v, want an InvalidError naming the head", err)
	}
}
