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
	Kind  string    // the layer type, with relu/relu6/hardswish mapped to "act" and dwconv to "conv"
	Act   accel.Act // fused or standalone activation
	In    []int     // input tensor ids
	Out   []int     // output tensor ids (several for a split)

	Conv accel.ConvParams // conv: N = 1, input C/H/W filled in
	Pool accel.PoolParams // maxpool/avgpool: N = 1
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

// infer checks the layer's fields against its type and input shapes and
// appends its output tensors.
func (g *Graph) infer(n *Node, l *Layer, fail func(string, ...any) error) error {
	in := g.Tensors[n.In[0]]
	// Fields each type may use.
	type fields struct{ out, kernel, stride, pad, dil, groups, act, bias, size, sizes bool }
	allowed := map[string]fields{
		TypeConv:      {out: true, kernel: true, stride: true, pad: true, dil: true, groups: true, act: true, bias: true},
		TypeDWConv:    {out: true, kernel: true, stride: true, pad: true, dil: true, groups: true, act: true, bias: true},
		TypeLinear:    {out: true, act: true, bias: true},
		TypeBatchNorm: {act: true},
		TypeReLU:      {}, TypeReLU6: {}, TypeHardSwish: {},
		TypeAct:     {act: true},
		TypeMaxPool: {size: true, stride: true, pad: true},
		TypeAvgPool: {size: true, stride: true, pad: true},
		TypeGAP:     {},
		TypeAdd:     {act: true},
		TypeConcat:  {},
		TypeShuffle: {groups: true},
		TypeSplit:   {sizes: true},
		TypeFlatten: {},
	}
	f, ok := allowed[l.Type]
	if !ok {
		return fail("unknown type %q (known: %s)", l.Type, strings.Join(layerTypes, ", "))
	}
	for _, c := range []struct {
		set, ok bool
		name    string
	}{
		{l.Out != 0, f.out, "out"}, {l.Kernel != 0, f.kernel, "kernel"}, {l.Stride != 0, f.stride, "stride"},
		{l.Pad != 0, f.pad, "pad"}, {l.Dilation != 0, f.dil, "dilation"}, {l.Groups != 0, f.groups, "groups"},
		{l.Act != "", f.act, "act"}, {l.Bias != nil, f.bias, "bias"}, {l.Size != 0, f.size, "size"},
		{l.Sizes != nil, f.sizes, "sizes"},
	} {
		if c.set && !c.ok {
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
	nIn := len(n.In)
	wantInputs := func(k int) error {
		if nIn != k {
			return fail("takes %d input(s), has %d", k, nIn)
		}
		return nil
	}
	spatial := func() error {
		if len(in) != 3 {
			return fail("needs a [C,H,W] input, got %v", in)
		}
		return nil
	}
	out := func(s ...int) error {
		size := 1
		for _, d := range s {
			if d <= 0 {
				return fail("output shape %v is empty", accel.Shape(s))
			}
			size *= d
			if size > maxDim*16 {
				return fail("output shape %v is too large", accel.Shape(s))
			}
		}
		n.Out = append(n.Out, len(g.Tensors))
		g.Tensors = append(g.Tensors, accel.Shape(s))
		return nil
	}
	switch l.Type {
	case TypeConv, TypeDWConv:
		n.Kind = TypeConv
		if err := wantInputs(1); err != nil {
			return err
		}
		if err := spatial(); err != nil {
			return err
		}
		groups, k := one(l.Groups), l.Out
		if l.Type == TypeDWConv {
			if l.Groups != 0 && l.Groups != in[0] {
				return fail("dwconv groups %d must equal the %d input channels", l.Groups, in[0])
			}
			groups = in[0]
			if k == 0 {
				k = in[0]
			}
		}
		if k == 0 {
			return fail("needs out (output channels)")
		}
		if l.Kernel == 0 {
			return fail("needs kernel")
		}
		p := accel.ConvParams{N: 1, C: in[0], H: in[1], W: in[2], K: k, KH: l.Kernel, KW: l.Kernel,
			StrideH: one(l.Stride), StrideW: one(l.Stride), PadH: l.Pad, PadW: l.Pad,
			DilH: one(l.Dilation), DilW: one(l.Dilation), Groups: groups}
		if err := p.Validate(); err != nil {
			return fail("shape mismatch for input %v: %v", in, strings.TrimPrefix(err.Error(), "conv: "))
		}
		if w := float64(k) * float64(in[0]/groups) * float64(l.Kernel) * float64(l.Kernel); w > maxWeights {
			return fail("%.0f weights are too many (at most %d per layer)", w, maxWeights)
		}
		n.Conv = p
		return out(k, p.OutH(), p.OutW())
	case TypeLinear:
		if err := wantInputs(1); err != nil {
			return err
		}
		if l.Out == 0 {
			return fail("needs out (output features)")
		}
		if w := float64(in.Size()) * float64(l.Out); w > maxWeights {
			return fail("%d×%d weights are too many (at most %d per layer)", l.Out, in.Size(), maxWeights)
		}
		return out(l.Out)
	case TypeBatchNorm:
		if err := wantInputs(1); err != nil {
			return err
		}
		return out(in...)
	case TypeReLU, TypeReLU6, TypeHardSwish, TypeAct:
		n.Kind = TypeAct
		if l.Type != TypeAct {
			n.Act, _ = accel.ParseAct(l.Type)
		} else if n.Act == accel.ActNone {
			return fail("needs act (relu, relu6 or hardswish)")
		}
		if err := wantInputs(1); err != nil {
			return err
		}
		return out(in...)
	case TypeMaxPool, TypeAvgPool:
		if err := wantInputs(1); err != nil {
			return err
		}
		if err := spatial(); err != nil {
			return err
		}
		size := l.Size
		if size == 0 {
			size = 2
		}
		stride := l.Stride
		if stride == 0 {
			stride = size
		}
		p := accel.PoolParams{N: 1, C: in[0], H: in[1], W: in[2], KH: size, KW: size, StrideH: stride, StrideW: stride, PadH: l.Pad, PadW: l.Pad}
		if err := p.Validate(); err != nil {
			return fail("shape mismatch for input %v: %v", in, strings.TrimPrefix(err.Error(), "pool: "))
		}
		n.Pool = p
		return out(in[0], p.OutH(), p.OutW())
	case TypeGAP:
		if err := wantInputs(1); err != nil {
			return err
		}
		if err := spatial(); err != nil {
			return err
		}
		return out(in[0])
	case TypeFlatten:
		if err := wantInputs(1); err != nil {
			return err
		}
		return out(in.Size())
	case TypeAdd:
		if err := wantInputs(2); err != nil {
			return err
		}
		if b := g.Tensors[n.In[1]]; !slices.Equal(in, b) {
			return fail("shape mismatch: adds %v and %v", in, b)
		}
		return out(in...)
	case TypeConcat:
		if nIn < 2 {
			return fail("needs at least two inputs, has %d", nIn)
		}
		c := 0
		for k, t := range n.In {
			s := g.Tensors[t]
			if len(s) != 3 || s[1] != in[1] || s[2] != in[2] || len(in) != 3 {
				return fail("shape mismatch: input %d %v does not match input 0 %v (concat joins [C,H,W] maps of equal H and W)", k, s, in)
			}
			c += s[0]
		}
		return out(c, in[1], in[2])
	case TypeShuffle:
		if err := wantInputs(1); err != nil {
			return err
		}
		if err := spatial(); err != nil {
			return err
		}
		if l.Groups < 2 {
			return fail("needs groups ≥ 2")
		}
		if in[0]%l.Groups != 0 {
			return fail("shape mismatch: %d channels are not divisible into %d groups", in[0], l.Groups)
		}
		return out(in...)
	case TypeSplit:
		if err := wantInputs(1); err != nil {
			return err
		}
		if err := spatial(); err != nil {
			return err
		}
		sizes := l.Sizes
		if len(sizes) == 0 {
			if in[0]%2 != 0 {
				return fail("cannot split %d channels into two equal halves: give sizes", in[0])
			}
			sizes = []int{in[0] / 2, in[0] / 2}
		}
		if len(sizes) < 2 || len(sizes) > 64 {
			return fail("sizes must have 2 to 64 entries")
		}
		sum := 0
		for _, s := range sizes {
			if s <= 0 || s > maxDim {
				return fail("sizes %v must be positive", sizes)
			}
			sum += s
		}
		if sum != in[0] {
			return fail("shape mismatch: sizes %v add up to %d, input has %d channels", sizes, sum, in[0])
		}
		for _, s := range sizes {
			if err := out(s, in[1], in[2]); err != nil {
				return err
			}
		}
		return nil
	}
	return fail("unknown type %q", l.Type)
}

// LayerCost is the parameter and multiply-accumulate count of one layer.
type LayerCost struct {
	Name   string `json:"name"`
	Type   string `json:"type"`
	Out    string `json:"out"` // output shape
	Params int64  `json:"params"`
	MACs   int64  `json:"macs"`
}

// NodeParams returns the trainable parameter count of a node: conv
// K·(C/G)·KH·KW (+K bias), linear In·Out (+Out bias), batch norm 2·C (γ,
// β; the running statistics are not counted).
func (g *Graph) NodeParams(n *Node) int64 {
	switch n.Kind {
	case TypeConv:
		_, w, _ := n.Conv.Sizes()
		p := int64(w)
		if n.Layer.HasBias() {
			p += int64(n.Conv.K)
		}
		return p
	case TypeLinear:
		in, out := int64(g.InShape(n, 0).Size()), int64(g.OutShape(n)[0])
		p := in * out
		if n.Layer.HasBias() {
			p += out
		}
		return p
	case TypeBatchNorm:
		return 2 * int64(g.InShape(n, 0)[0])
	}
	return 0
}

// NodeMACs returns the multiply-accumulates of one sample through a node:
// conv K·OH·OW·(C/G)·KH·KW, linear In·Out; other layers count zero.
func (g *Graph) NodeMACs(n *Node) int64 {
	switch n.Kind {
	case TypeConv:
		return n.Conv.MACs()
	case TypeLinear:
		return int64(g.InShape(n, 0).Size()) * int64(g.OutShape(n)[0])
	}
	return 0
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
