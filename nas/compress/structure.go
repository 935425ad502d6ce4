package compress

import (
	"fmt"
	"slices"
	"sort"

	"hwnas/nas"
)

// RemoveChannels physically removes output channels: for each named conv
// or linear layer, only the channels (features) listed in keep[layer]
// (ascending, distinct) stay. It returns a new model whose architecture is
// narrower, with every consumer rewritten consistently:
//
//   - batch norms, activations and pools pass the removal on;
//   - depthwise convolutions lose the same channels (groups shrink) and
//     pass it on;
//   - ordinary convolutions lose the matching input channels, linear
//     layers the matching input features (all H·W positions of a removed
//     channel after a flatten, or the channel itself after global pooling);
//   - concatenations keep their other inputs and shift the offsets;
//   - residual adds need the same channels removed from both inputs in the
//     same call (group-level pruning); channel shuffles need the same
//     positions kept in every group; splits shrink each part.
//
// Everything else is copied. Removing every channel of a layer, pruning
// the network's output, or a removal the consumers cannot follow is an
// error. m is not changed; its Quant and Sparse forms are not carried over.
func RemoveChannels(m *nas.Model, keep map[string][]int) (*nas.Model, error) {
	g := m.Graph
	a := m.Arch.Clone()
	layerIdx := map[string]int{}
	for i, l := range a.Layers {
		layerIdx[l.Name] = i
	}
	outKeep := map[string][]int{} // layer → kept output channels (rows of w, b, BN vectors)
	inKeep := map[string][]int{}  // layer → kept input channels/features (columns of w)
	tensorKeep := map[int][]int{} // graph tensor → kept channels (as they arrive)
	addSeen := map[int][]int{}    // add node → first input's keep (nil entries: not yet)

	var prune func(t int, keep []int, from string) error
	prune = func(t int, keep []int, from string) error {
		if t == g.Output {
			return fmt.Errorf("channel pruning of %q: it would remove outputs of the network (the logits)", from)
		}
		if prev, ok := tensorKeep[t]; ok {
			if !slices.Equal(prev, keep) {
				return fmt.Errorf("channel pruning of %q: tensor %d is pruned twice differently", from, t)
			}
			return nil
		}
		tensorKeep[t] = keep
		shape := g.Tensors[t]
		for _, ci := range g.Consumers[t] {
			nd := g.Nodes[ci]
			name := nd.Layer.Name
			l := &a.Layers[layerIdx[name]]
			switch nd.ChannelRule() {
			case nas.ChannelsDepthwise:
				outKeep[name] = keep
				if l.Type == nas.TypeDWConv {
					if l.Out != 0 {
						l.Out = len(keep)
					}
					if l.Groups != 0 {
						l.Groups = len(keep)
					}
				} else {
					l.Out, l.Groups = len(keep), len(keep)
				}
				if err := prune(nd.Out[0], keep, name); err != nil {
					return err
				}
			case nas.ChannelsAbsorb:
				// A layer that reads the map flattened (linear) loses
				// every position of a removed channel.
				if w := m.Param(name + ".w"); w != nil && w.Shape[1] != shape[0] {
					inKeep[name] = expandFeatures(keep, shape)
				} else {
					inKeep[name] = keep
				}
			case nas.ChannelsPass:
				outKeep[name] = keep // per-channel tensors (batch norm's) shrink
				if err := prune(nd.Out[0], keep, name); err != nil {
					return err
				}
			case nas.ChannelsFlatten:
				if err := prune(nd.Out[0], expandFeatures(keep, shape), name); err != nil {
					return err
				}
			case nas.ChannelsConcat:
				var out []int
				off := 0
				for _, in := range nd.In {
					c := g.Tensors[in][0]
					if in == t {
						for _, k := range keep {
							out = append(out, off+k)
						}
					} else if k2, ok := tensorKeep[in]; ok && in != t {
						for _, k := range k2 {
							out = append(out, off+k)
						}
					} else {
						for k := 0; k < c; k++ {
							out = append(out, off+k)
						}
					}
					off += c
				}
				// A later pruned input of the same concat re-derives the
				// output keep; allow the refinement.
				delete(tensorKeep, nd.Out[0])
				if err := prune(nd.Out[0], out, name); err != nil {
					return err
				}
			case nas.ChannelsAdd:
				if first, ok := addSeen[ci]; ok {
					if !slices.Equal(first, keep) {
						return fmt.Errorf("channel pruning: the inputs of add %q keep different channels; prune both producers with the same channels", name)
					}
					if err := prune(nd.Out[0], keep, name); err != nil {
						return err
					}
				} else {
					addSeen[ci] = keep
				}
			case nas.ChannelsShuffle:
				out, err := shuffleKeep(keep, shape[0], l.Groups)
				if err != nil {
					return fmt.Errorf("channel pruning of %q: shuffle %q: %w", from, name, err)
				}
				if err := prune(nd.Out[0], out, name); err != nil {
					return err
				}
			case nas.ChannelsSplit:
				off := 0
				l.Sizes = nil
				for _, ot := range nd.Out {
					c := g.Tensors[ot][0]
					var part []int
					for _, k := range keep {
						if k >= off && k < off+c {
							part = append(part, k-off)
						}
					}
					if len(part) == 0 {
						return fmt.Errorf("channel pruning of %q: it would empty a part of split %q", from, name)
					}
					l.Sizes = append(l.Sizes, len(part))
					if err := prune(ot, part, name); err != nil {
						return err
					}
					off += c
				}
			case nas.ChannelsRefuse:
				if nd.Kind == nas.TypeConv {
					return fmt.Errorf("channel pruning of %q: consumer %q is a grouped convolution (%d groups), which channel pruning does not rewrite", from, name, nd.Conv.Groups)
				}
				fallthrough
			default:
				return fmt.Errorf("channel pruning of %q: consumer %q (%s) is not supported", from, name, nd.Kind)
			}
		}
		return nil
	}

	names := make([]string, 0, len(keep))
	for n := range keep {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		k := keep[name]
		i, ok := layerIdx[name]
		if !ok {
			return nil, fmt.Errorf("channel pruning: no layer %q in %q", name, a.Name)
		}
		nd := g.Nodes[i]
		if !nd.Weighted() {
			return nil, fmt.Errorf("channel pruning: layer %q is a %s layer, not conv or linear", name, nd.Layer.Type)
		}
		if nd.ChannelRule() != nas.ChannelsAbsorb {
			return nil, fmt.Errorf("channel pruning: layer %q is a grouped or depthwise convolution; prune the layer that feeds it", name)
		}
		out := g.OutShape(nd)[0]
		if len(k) == 0 {
			return nil, fmt.Errorf("channel pruning: it would remove all %d channels of layer %q", out, name)
		}
		for j, c := range k {
			if c < 0 || c >= out || (j > 0 && c <= k[j-1]) {
				return nil, fmt.Errorf("channel pruning: keep list of layer %q must be ascending channels in [0,%d), has %d at %d", name, out, c, j)
			}
		}
		outKeep[name] = k
		a.Layers[i].Out = len(k)
		if err := prune(nd.Out[0], k, name); err != nil {
			return nil, err
		}
	}
	for ci, k := range addSeen {
		if _, done := tensorKeep[g.Nodes[ci].Out[0]]; !done {
			return nil, fmt.Errorf("channel pruning: add %q gets %d pruned channels on one input only; prune the producers of both inputs with the same channels", g.Nodes[ci].Layer.Name, len(k))
		}
	}
	nm, err := nas.NewModel(a, 0)
	if err != nil {
		return nil, fmt.Errorf("channel pruning: the narrowed architecture is invalid: %w", err)
	}
	for _, p := range nm.Tensors() {
		old := m.Param(p.Name)
		if old == nil {
			return nil, fmt.Errorf("channel pruning: tensor %q has no source", p.Name)
		}
		layer := p.Name[:len(p.Name)-len(kindOf(p.Name))-1]
		rows := outKeep[layer]
		var cols []int
		if kindOf(p.Name) == "w" {
			cols = inKeep[layer]
		}
		gatherTensor(old, p, rows, cols)
	}
	return nm, nil
}

// fixedWidth says why the output channels of nd cannot be removed on
// their own, following them through the layers that pass a removal on
// (ChannelRule): they are the network's outputs (their number is the data
// set's class count), or they reach a residual add (every input must lose
// the same channels), a channel shuffle (every group the same positions)
// or a grouped convolution; a depthwise or grouped convolution's own
// channels follow the layer that feeds it. It returns "" when RemoveChannels
// can narrow nd alone.
func fixedWidth(g *nas.Graph, nd *nas.Node) string {
	if nd.ChannelRule() != nas.ChannelsAbsorb {
		return "a grouped or depthwise convolution, whose channels follow the layer that feeds it"
	}
	var walk func(t int) string
	walk = func(t int) string {
		if t == g.Output {
			return "its channels are the network's outputs (the logits, as many as the data set has classes)"
		}
		for _, ci := range g.Consumers[t] {
			c := g.Nodes[ci]
			switch c.ChannelRule() {
			case nas.ChannelsAbsorb:
				continue
			case nas.ChannelsAdd:
				return fmt.Sprintf("it feeds residual add %q, whose inputs must lose the same channels", c.Layer.Name)
			case nas.ChannelsShuffle:
				return fmt.Sprintf("it feeds channel shuffle %q, whose groups must keep the same positions", c.Layer.Name)
			case nas.ChannelsRefuse:
				return fmt.Sprintf("it feeds %q (%s), which channel pruning does not rewrite", c.Layer.Name, c.Layer.Type)
			}
			for _, o := range c.Out {
				if why := walk(o); why != "" {
					return why
				}
			}
		}
		return ""
	}
	return walk(nd.Out[0])
}

// kindOf returns the part of a parameter name after the last dot.
func kindOf(name string) string {
	for i := len(name) - 1; i >= 0; i-- {
		if name[i] == '.' {
			return name[i+1:]
		}
	}
	return name
}

// gatherTensor fills dst from src keeping rows (first dimension) and
// columns (second dimension) by index; nil means all.
func gatherTensor(src, dst *nas.Param, rows, cols []int) {
	if len(src.Shape) == 1 {
		for i := range dst.Data {
			r := i
			if rows != nil {
				r = rows[i]
			}
			dst.Data[i] = src.Data[r]
		}
		return
	}
	srcCols, dstRows := src.Shape[1], dst.Shape[0]
	rest := 1
	for _, d := range src.Shape[2:] {
		rest *= d
	}
	dstCols := dst.Shape[1]
	for i := 0; i < dstRows; i++ {
		r := i
		if rows != nil {
			r = rows[i]
		}
		for j := 0; j < dstCols; j++ {
			c := j
			if cols != nil {
				c = cols[j]
			}
			copy(dst.Data[(i*dstCols+j)*rest:(i*dstCols+j+1)*rest], src.Data[(r*srcCols+c)*rest:(r*srcCols+c+1)*rest])
		}
	}
}

// expandFeatures maps kept channels of a [C,H,W] tensor to the kept
// features of its flattened form (every H·W position of a kept channel);
// for a vector shape the channels are the features.
func expandFeatures(keep []int, shape []int) []int {
	if len(shape) != 3 {
		return keep
	}
	hw := shape[1] * shape[2]
	out := make([]int, 0, len(keep)*hw)
	for _, c := range keep {
		for i := 0; i < hw; i++ {
			out = append(out, c*hw+i)
		}
	}
	return out
}

// shuffleKeep maps the kept input channels of a channel shuffle (c
// channels, groups g: input channel i·(c/g)+j goes to output j·g+i) to its
// kept outputs; every group must keep the same positions j.
func shuffleKeep(keep []int, c, groups int) ([]int, error) {
	per := c / groups
	pos := make([][]int, groups)
	for _, k := range keep {
		pos[k/per] = append(pos[k/per], k%per)
	}
	for i := 1; i < groups; i++ {
		if !slices.Equal(pos[i], pos[0]) {
			return nil, fmt.Errorf("groups keep different channel positions (%v and %v); prune the same positions in every group", pos[0], pos[i])
		}
	}
	var out []int
	for _, j := range pos[0] {
		for i := 0; i < groups; i++ {
			out = append(out, j*groups+i)
		}
	}
	return out, nil
}

// Factorize replaces a linear or ungrouped conv layer by two layers of
// rank r (truncated SVD, see SVD): a new layer named layer+"_lr" computing
// B·x (r outputs, no bias, the original kernel, stride, padding and
// dilation for a conv), followed by the original layer, now A (1×1 for a
// conv) with the original bias and activation. For a k×k conv the matrix
// factorised is W reshaped to K×(C·k·k). It returns the new model (the
// other tensors copied) and the rank's parameter count against the
// original's.
func Factorize(m *nas.Model, layer string, rank func(sv []float64) (int, error)) (*nas.Model, error) {
	g := m.Graph
	idx := -1
	for i, l := range m.Arch.Layers {
		if l.Name == layer {
			idx = i
		}
	}
	if idx < 0 {
		return nil, fmt.Errorf("low-rank: no layer %q in %q", layer, m.Arch.Name)
	}
	nd := g.Nodes[idx]
	if !nd.Weighted() {
		return nil, fmt.Errorf("low-rank: layer %q is a %s layer, not conv or linear", layer, nd.Layer.Type)
	}
	if nd.ChannelRule() != nas.ChannelsAbsorb {
		return nil, fmt.Errorf("low-rank: layer %q is a grouped or depthwise convolution", layer)
	}
	w := m.Param(layer + ".w")
	rows := w.Shape[0]
	cols := len(w.Data) / rows
	sv, factor, err := SVD(w.Data, rows, cols)
	if err != nil {
		return nil, fmt.Errorf("low-rank of %q: %w", layer, err)
	}
	r, err := rank(sv)
	if err != nil {
		return nil, fmt.Errorf("low-rank of %q: %w", layer, err)
	}
	f, err := factor(r)
	if err != nil {
		return nil, fmt.Errorf("low-rank of %q: %w", layer, err)
	}
	a := m.Arch.Clone()
	orig := a.Layers[idx]
	first := nas.Layer{Name: layer + "_lr", Type: orig.Type, Inputs: orig.Inputs, Out: r, Bias: new(bool)}
	second := orig
	second.Inputs = []string{first.Name}
	if nd.Kind == nas.TypeConv {
		first.Type = nas.TypeConv
		first.Kernel, first.Stride, first.Pad, first.Dilation = orig.Kernel, orig.Stride, orig.Pad, orig.Dilation
		second.Kernel, second.Stride, second.Pad, second.Dilation, second.Groups = 1, 0, 0, 0, 0
	}
	for _, l := range a.Layers {
		if l.Name == first.Name {
			return nil, fmt.Errorf("low-rank of %q: a layer %q exists already", layer, first.Name)
		}
	}
	a.Layers = slices.Insert(a.Layers, idx, first)
	a.Layers[idx+1] = second
	nm, err := nas.NewModel(a, 0)
	if err != nil {
		return nil, fmt.Errorf("low-rank of %q: %w", layer, err)
	}
	nm.CopyWeightsFrom(m)
	copy(nm.Param(first.Name+".w").Data, f.B)
	copy(nm.Param(layer+".w").Data, f.A)
	return nm, nil
}
