package nas

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"hwnas/accel"
)

// Graph is an architecture with shapes inferred. Tensor 0 is the input
// image; every node's outputs are further tensors, numbered in layer order.
// Shapes are per sample: [C,H,W] for feature maps, [F] for vectors.
type Graph struct {
	Arch    *Arch
	Nodes   []*Node
	Tensors []accel.Shape
	// Consumers[t] lists the nodes (indices into Nodes) that read tensor t.
	Consumers [][]int
	Output    int // tensor id of the logits
}

// Node is one layer with its tensors, resolved attributes and shapes.
type Node struct {
	Index int
	Layer *Layer
	Kind  string    // the layer's kind: its type, with relu/relu6/hardswish mapped to "act" and dwconv to "conv"
	Act   accel.Act // fused or standalone activation
	In    []int     // input tensor ids
	Out   []int     // output tensor ids (several for a split)

	Conv accel.ConvParams // conv: N = 1, input C/H/W filled in
	Pool accel.PoolParams // maxpool/avgpool: N = 1

	typ *layerType // the definition of its kind (layer.go)
}

// InShape returns the shape of the node's i-th input.
func (g *Graph) InShape(n *Node, i int) accel.Shape { return g.Tensors[n.In[i]] }

// OutShape returns the shape of the node's first output.
func (g *Graph) OutShape(n *Node) accel.Shape { return g.Tensors[n.Out[0]] }

// LayerError is a validation error that names the layer.
type LayerError struct {
	Arch   string
	Layer  string
	Index  int
	Reason string
}

func (e *LayerError) Error() string {
	return fmt.Sprintf("arch %q: layer %d %q: %s", e.Arch, e.Index, e.Layer, e.Reason)
}

// maxDim bounds every dimension and element count so that hostile
// architectures cannot overflow sizes or exhaust memory.
const maxDim = 1 << 24

// maxWeights bounds the weights of one conv or linear layer (256 MiB of
// float32).
const maxWeights = 1 << 26

// NewGraph validates a and infers every tensor's shape. It rejects
// duplicate or empty names, unknown types and fields that do not apply,
// inputs that name unknown or later layers (so the graph has no cycles),
// shape mismatches, outputs never used, and a network output that is not
// a vector of a.Classes logits. Errors are *LayerError where a layer is to
// blame.
func NewGraph(a *Arch) (*Graph, error) { return newGraph(a, true) }

// newGraph infers shapes; complete adds the checks that only a finished
// network passes (every output read, logits at the end).
func newGraph(a *Arch, complete bool) (*Graph, error) {
	if a == nil {
		return nil, fmt.Errorf("arch: nil architecture")
	}
	if len(a.Input) != 1 && len(a.Input) != 3 {
		return nil, fmt.Errorf("arch %q: input shape %v must be [C,H,W] or [F]", a.Name, a.Input)
	}
	total := 1
	for _, d := range a.Input {
		if d <= 0 || d > maxDim {
			return nil, fmt.Errorf("arch %q: input shape %v has a dimension out of range", a.Name, a.Input)
		}
		total *= d
		if total > maxDim*16 {
			return nil, fmt.Errorf("arch %q: input shape %v is too large", a.Name, a.Input)
		}
	}
	if a.Classes < 1 || a.Classes > maxDim {
		return nil, fmt.Errorf("arch %q: classes %d must be positive", a.Name, a.Classes)
	}
	if a.Normalize != nil {
		if err := a.Normalize.check(a); err != nil {
			return nil, err
		}
	}
	if len(a.Layers) == 0 && complete {
		return nil, fmt.Errorf("arch %q: no layers", a.Name)
	}
	g := &Graph{Arch: a, Tensors: []accel.Shape{append(accel.Shape(nil), a.Input...)}}
	names := map[string]int{InputName: 0} // tensor name → id
	layerByName := map[string]int{InputName: -1}
	for i := range a.Layers {
		l := &a.Layers[i]
		fail := func(format string, args ...any) error {
			return &LayerError{Arch: a.Name, Layer: l.Name, Index: i, Reason: fmt.Sprintf(format, args...)}
		}
		if l.Name == "" {
			return nil, fail("has no name")
		}
		if strings.Contains(l.Name, ":") {
			return nil, fail("name must not contain ':'")
		}
		if j, dup := layerByName[l.Name]; dup {
			if j < 0 {
				return nil, fail("%q is reserved for the network input", InputName)
			}
			return nil, fail("duplicate name (also layer %d)", j)
		}
		layerByName[l.Name] = i
		n := &Node{Index: i, Layer: l, Kind: l.Type}
		// Resolve inputs.
		inputs := l.Inputs
		if len(inputs) == 0 {
			if i == 0 {
				inputs = []string{InputName}
			} else {
				inputs = []string{a.Layers[i-1].Name}
			}
		}
		for _, in := range inputs {
			t, ok := names[in]
			if !ok {
				if j, isLayer := layerByName[in]; isLayer && j >= 0 && a.Layers[j].Type == TypeSplit {
					return nil, fail("input %q is a split with several outputs: name one as %q", in, in+":0")
				}
				if in == l.Name {
					return nil, fail("reads its own output (cycle)")
				}
				for j := i + 1; j < len(a.Layers); j++ {
					if base, _, _ := strings.Cut(in, ":"); a.Layers[j].Name == base {
						return nil, fail("input %q is a later layer (forward reference or cycle): layers must be listed in topological order", in)
					}
				}
				return nil, fail("unknown input %q", in)
			}
			n.In = append(n.In, t)
		}
		if err := g.infer(n, l, fail); err != nil {
			return nil, err
		}
		for k, t := range n.Out {
			if len(n.Out) == 1 && l.Type != TypeSplit {
				names[l.Name] = t
			} else {
				names[l.Name+":"+strconv.Itoa(k)] = t
			}
		}
		g.Nodes = append(g.Nodes, n)
	}
	g.Output = len(g.Tensors) - 1
	g.Consumers = make([][]int, len(g.Tensors))
	for _, n := range g.Nodes {
		for _, t := range n.In {
			g.Consumers[t] = append(g.Consumers[t], n.Index)
		}
	}
	if !complete {
		return g, nil
	}
	for t := 1; t < len(g.Tensors); t++ {
		if t != g.Output && len(g.Consumers[t]) == 0 {
			n := g.producer(t)
			return nil, &LayerError{Arch: a.Name, Layer: n.Layer.Name, Index: n.Index, Reason: "output is never used (only the last layer's output may be left unread)"}
		}
	}
	last := g.Nodes[len(g.Nodes)-1]
	if out := g.Tensors[g.Output]; len(out) != 1 || out[0] != a.Classes || len(last.Out) != 1 {
		return nil, &LayerError{Arch: a.Name, Layer: last.Layer.Name, Index: last.Index,
			Reason: fmt.Sprintf("network output %v must be a vector of %d class logits", out, a.Classes)}
	}
	return g, nil
}

// producer returns the node that writes tensor t (t > 0).
func (g *Graph) producer(t int) *Node {
	for _, n := range g.Nodes {
		for _, o := range n.Out {
			if o == t {
				return n
			}
		}
	}
	return nil
}

// Producer returns the node that writes tensor t, or nil for the input.
func (g *Graph) Producer(t int) *Node {
	if t <= 0 {
		return nil
	}
	return g.producer(t)
}

// infer checks the layer's fields against its type (the fields its layer
// type allows, their ranges, the activation) and lets the layer type check
// its inputs and append its output tensors.
func (g *Graph) infer(n *Node, l *Layer, fail func(string, ...any) error) error {
	t := layerKinds[l.Type]
	if t == nil {
		return fail("unknown type %q (known: %s)", l.Type, strings.Join(LayerTypes(), ", "))
	}
	n.typ, n.Kind = t, t.names[0]
	for _, c := range []struct {
		set  bool
		name string
	}{
		{l.Out != 0, "out"}, {l.Kernel != 0, "kernel"}, {l.Stride != 0, "stride"},
		{l.Pad != 0, "pad"}, {l.Dilation != 0, "dilation"}, {l.Groups != 0, "groups"},
		{l.Act != "", "act"}, {l.Bias != nil, "bias"}, {l.Size != 0, "size"},
		{l.Sizes != nil, "sizes"},
	} {
		if c.set && !slices.Contains(t.fields, c.name) {
			return fail("field %q does not apply to a %s layer", c.name, l.Type)
		}
	}
	for _, v := range []struct {
		v    int
		name string
	}{{l.Out, "out"}, {l.Kernel, "kernel"}, {l.Stride, "stride"}, {l.Dilation, "dilation"}, {l.Groups, "groups"}, {l.Size, "size"}} {
		if v.v < 0 || v.v > maxDim {
			return fail("%s %d is out of range", v.name, v.v)
		}
	}
	if l.Pad < 0 || l.Pad > 1<<12 {
		return fail("pad %d is out of range", l.Pad)
	}
	if l.Act != "" {
		a, err := accel.ParseAct(l.Act)
		if err != nil {
			return fail("%v", err)
		}
		n.Act = a
	}
	in := make([]accel.Shape, len(n.In))
	for k, t := range n.In {
		in[k] = g.Tensors[t]
	}
	return t.infer(&inferCtx{g: g, n: n, l: l, in: in, fail: fail})
}

// LayerCost is the parameter and multiply-accumulate count of one layer.
type LayerCost struct {
	Name   string `json:"name"`
	Type   string `json:"type"`
	Out    string `json:"out"` // output shape
	Params int64  `json:"params"`
	MACs   int64  `json:"macs"`
}

// NodeParams returns the trainable parameter count of a node (its layer
// type's trainable tensors): conv K·(C/G)·KH·KW (+K bias), linear In·Out
// (+Out bias), batch norm 2·C (γ, β; the running statistics are buffers).
func (g *Graph) NodeParams(n *Node) int64 {
	var p int64
	for _, s := range g.params(n) {
		if s.trainable {
			size := int64(1)
			for _, d := range s.shape {
				size *= int64(d)
			}
			p += size
		}
	}
	return p
}

// NodeMACs returns the multiply-accumulates of one sample through a node:
// conv K·OH·OW·(C/G)·KH·KW, linear In·Out; other layers count zero.
func (g *Graph) NodeMACs(n *Node) int64 {
	if n.typ.macs == nil {
		return 0
	}
	return n.typ.macs(g, n)
}

// Costs lists every layer's parameters and MACs per sample.
func (g *Graph) Costs() []LayerCost {
	c := make([]LayerCost, len(g.Nodes))
	for i, n := range g.Nodes {
		outs := make([]string, len(n.Out))
		for k, t := range n.Out {
			outs[k] = g.Tensors[t].String()
		}
		c[i] = LayerCost{Name: n.Layer.Name, Type: n.Layer.Type, Out: strings.Join(outs, ","), Params: g.NodeParams(n), MACs: g.NodeMACs(n)}
	}
	return c
}

// Params is the total trainable parameter count.
func (g *Graph) Params() int64 {
	var s int64
	for _, n := range g.Nodes {
		s += g.NodeParams(n)
	}
	return s
}

// MACs is the total multiply-accumulates of one sample's forward pass.
func (g *Graph) MACs() int64 {
	var s int64
	for _, n := range g.Nodes {
		s += g.NodeMACs(n)
	}
	return s
}
