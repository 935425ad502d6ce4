package nas

import (
	"fmt"
	"slices"
	"strings"

	"hwnas/accel"
)

// A layerType is one kind of layer, defined once in its own file
// (layer_conv.go, layer_linear.go, …) and registered in init with
// registerLayer. Everything hwnas does with a layer reads it: the graph
// (field checks, shape inference, defaults for the hash, parameter and MAC
// counts), the model (parameters and their initialisation, the forward and
// backward passes), Lower (the plan ops it becomes, with batch-norm folding
// and activation fusion), the ONNX exporter (EmitONNX, per plan op kind)
// and the compression passes (Node.Weighted, Node.ChannelRule). The table
// test (layer_test.go, nas/onnx's TestEveryLayerTypeRoundTrips) runs each
// registered type's sample through a finite-difference gradient check, a
// comparison of the lowered plan with the model and an ONNX round trip in
// onnxruntime.
type layerType struct {
	// names are the arch "type" values this kind reads. The first is the
	// kind (Node.Kind): relu, relu6 and hardswish are kind "act" with
	// that activation, dwconv is kind "conv".
	names []string
	// fields are the optional Layer fields (JSON names) it may set; any
	// other set field is an error naming it.
	fields []string
	// infer checks the layer against its input shapes, fills the node's
	// resolved attributes (Act, Conv, Pool) and appends its outputs.
	infer func(c *inferCtx) error
	// defaults writes the layer's defaults explicitly (Arch.Hash hashes
	// two spellings of one network alike); nil when it has none.
	defaults func(l *Layer)
	// params lists the node's tensors in order (nil: none); weighted
	// says that they include a weight tensor "w" that compression recipes
	// apply to (conv, linear).
	params   func(g *Graph, n *Node) []paramSpec
	weighted bool
	// macs is the multiply-accumulates of one sample (nil: none).
	macs func(g *Graph, n *Node) int64
	// forward computes the node's outputs; backward its inputs' and
	// parameters' gradients from its outputs' (see pass).
	forward, backward func(p *pass) error
	// lower appends the node's plan ops (or fuses it into the op that
	// produced its input).
	lower func(l *lowering, n *Node) error
	// op is the plan op kind lower emits; onnx writes one op of that kind.
	op   accel.OpKind
	onnx func(b ONNXBuilder, op *accel.Op, name string, in, out []string) error
	// channels says how the node follows when channels of an input are
	// removed (channel pruning).
	channels func(n *Node) ChannelRule
	// sample is a small block of layers using every name of this kind,
	// reading InputName shaped [4,6,6], for the table tests (LayerSample).
	sample []Layer
}

// paramSpec is one tensor of a node: its kind (the part of the name after
// the layer's, "w", "b", "gamma"), shape and initial values. Trainable
// tensors are Model.Params, the others Model.Buffers.
type paramSpec struct {
	kind      string
	shape     []int
	init      paramInit
	fanIn     int // He initialisation: standard deviation √(2/fanIn)
	trainable bool
}

type paramInit int

const (
	initZeros paramInit = iota
	initOnes
	initHe
)

// ChannelRule says how a layer follows when channels of one of its inputs
// are removed (package compress's RemoveChannels).
type ChannelRule int

const (
	// ChannelsRefuse: the layer cannot follow (a grouped convolution).
	ChannelsRefuse ChannelRule = iota
	// ChannelsAbsorb: the matching input channels (or every feature of
	// them, for a layer that reads its input flattened) leave the
	// layer's weights; its output is unchanged (conv, linear).
	ChannelsAbsorb
	// ChannelsPass: the same channels leave its output (batch norm,
	// activations, pools, global pooling).
	ChannelsPass
	// ChannelsDepthwise: a depthwise convolution loses the channels
	// (weights, groups) and passes the removal on.
	ChannelsDepthwise
	// ChannelsFlatten: every position of a removed channel leaves its
	// output features.
	ChannelsFlatten
	// ChannelsConcat: its output keeps the other inputs' channels at
	// shifted offsets.
	ChannelsConcat
	// ChannelsAdd: every input must lose the same channels.
	ChannelsAdd
	// ChannelsShuffle: every group must keep the same positions.
	ChannelsShuffle
	// ChannelsSplit: each part loses the channels that fall in it.
	ChannelsSplit
)

var (
	layerKinds  = map[string]*layerType{} // by arch type name
	layerOps    = map[accel.OpKind]*layerType{}
	layerByKind = map[string]*layerType{} // by Node.Kind
	layerOrder  []*layerType              // in registration order
)

// registerLayer adds t to the table. Every name and op kind is
// registered once; every function but defaults, params and macs is set.
func registerLayer(t *layerType) {
	if len(t.names) == 0 || t.infer == nil || t.forward == nil || t.backward == nil || t.lower == nil ||
		t.onnx == nil || t.channels == nil || t.op == "" || len(t.sample) == 0 {
		panic(fmt.Sprintf("nas: layer type %v is incomplete", t.names))
	}
	for _, n := range t.names {
		if layerKinds[n] != nil {
			panic("nas: layer type " + n + " registered twice")
		}
		layerKinds[n] = t
	}
	if layerOps[t.op] != nil {
		panic(fmt.Sprintf("nas: plan op %s emitted by two layer types", t.op))
	}
	layerOps[t.op], layerByKind[t.names[0]] = t, t
	layerOrder = append(layerOrder, t)
}

// LayerTypes returns every registered layer type name (arch "type"
// values), sorted.
func LayerTypes() []string {
	var names []string
	for n := range layerKinds {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// LayerSample returns a small architecture exercising layer type name: the
// sample block its definition registers (which uses every spelling of its
// kind: conv and dwconv, relu and act…) on a [4,6,6] input, then a flatten
// where needed and a linear classifier of 3 classes. Tests that must cover
// every layer type build on it.
func LayerSample(name string) (*Arch, error) {
	t := layerKinds[name]
	if t == nil {
		return nil, fmt.Errorf("unknown layer type %q (known: %s)", name, strings.Join(LayerTypes(), ", "))
	}
	a := &Arch{Version: ArchVersion, Name: "sample-" + t.names[0], Input: []int{4, 6, 6}, Classes: 3}
	for _, l := range t.sample {
		l.Inputs = slices.Clone(l.Inputs)
		l.Sizes = slices.Clone(l.Sizes)
		a.Layers = append(a.Layers, l)
	}
	g, err := newGraph(a, false)
	if err != nil {
		return nil, err
	}
	if len(g.Tensors[g.Output]) != 1 {
		a.Layers = append(a.Layers, Layer{Name: "sample.flatten", Type: TypeFlatten})
	}
	a.Layers = append(a.Layers, Layer{Name: "sample.classifier", Type: TypeLinear, Out: a.Classes})
	if _, err := NewGraph(a); err != nil {
		return nil, err
	}
	return a, nil
}

// Weighted reports whether the node has a weight tensor "w" (conv and
// linear layers): the layers compression recipes apply to.
func (n *Node) Weighted() bool { return n.typ.weighted }

// ChannelRule says how the node follows a removal of its input channels.
func (n *Node) ChannelRule() ChannelRule { return n.typ.channels(n) }

// params lists the node's tensors.
func (g *Graph) params(n *Node) []paramSpec {
	if n.typ.params == nil {
		return nil
	}
	return n.typ.params(g, n)
}

// inferCtx is what a layer type's infer sees: the graph so far, the node
// (inputs resolved), the layer and its input shapes.
type inferCtx struct {
	g    *Graph
	n    *Node
	l    *Layer
	in   []accel.Shape
	fail func(format string, args ...any) error
}

// inputs checks that the layer has k inputs.
func (c *inferCtx) inputs(k int) error {
	if len(c.in) != k {
		return c.fail("takes %d input(s), has %d", k, len(c.in))
	}
	return nil
}

// spatial checks that the first input is a [C,H,W] map.
func (c *inferCtx) spatial() error {
	if len(c.in[0]) != 3 {
		return c.fail("needs a [C,H,W] input, got %v", c.in[0])
	}
	return nil
}

// one is inputs(1) then, when spatial is true, spatial().
func (c *inferCtx) one(spatial bool) error {
	if err := c.inputs(1); err != nil {
		return err
	}
	if spatial {
		return c.spatial()
	}
	return nil
}

// out appends an output tensor of shape s.
func (c *inferCtx) out(s ...int) error {
	size := 1
	for _, d := range s {
		if d <= 0 {
			return c.fail("output shape %v is empty", accel.Shape(s))
		}
		size *= d
		if size > maxDim*16 {
			return c.fail("output shape %v is too large", accel.Shape(s))
		}
	}
	c.n.Out = append(c.n.Out, len(c.g.Tensors))
	c.g.Tensors = append(c.g.Tensors, accel.Shape(s))
	return nil
}

// pass is one node's view of a forward or backward pass over a batch.
type pass struct {
	m  *Model
	k  accel.Kernels
	ws *workspace
	i  int // node index
	nd *Node
}

func (p *pass) batch() int                 { return p.ws.n }
func (p *pass) train() bool                { return p.ws.train }
func (p *pass) x(j int) []float32          { return p.ws.acts[p.nd.In[j]] }
func (p *pass) y(j int) []float32          { return p.ws.acts[p.nd.Out[j]] }
func (p *pass) dy(j int) []float32         { return p.ws.grads[p.nd.Out[j]] }
func (p *pass) inShape(j int) accel.Shape  { return p.m.Graph.Tensors[p.nd.In[j]] }
func (p *pass) outShape(j int) accel.Shape { return p.m.Graph.Tensors[p.nd.Out[j]] }

// param returns the node's tensor of the given kind ("w"), or nil.
func (p *pass) param(kind string) *Param { return p.m.layers[p.i][kind] }

// weights returns the values the pass uses for the node's tensor of the
// given kind: its data, or its transformed copy (Model.WeightTransform);
// nil when the node has no such tensor.
func (p *pass) weights(kind string) []float32 { return p.m.weights(p.ws, p.param(kind)) }

// grad returns the gradient buffer of the node's tensor of the given
// kind, or nil.
func (p *pass) grad(kind string) []float32 {
	if q := p.param(kind); q != nil {
		return q.Grad
	}
	return nil
}

// dx returns where to write the gradient of input j and a function to call
// afterwards (see workspace.dxFor); nil for the network input.
func (p *pass) dx(j int) ([]float32, func()) { return p.ws.dxFor(p.m.Graph, p.nd.In[j]) }

// fusedAct is the activation a kernel may fuse into the node's output:
// the node's, except hard-swish in training, which activate applies
// separately so that its input is kept for backward.
func (p *pass) fusedAct() accel.Act {
	if p.ws.train && p.nd.Act == accel.ActHardSwish {
		return accel.ActNone
	}
	return p.nd.Act
}

// activate applies the node's activation to its first output in place
// (c channels of hw values per sample), keeping the input when hard-swish
// backward will need it. It does nothing without an activation.
func (p *pass) activate(c, hw int) error {
	a, y := p.nd.Act, p.y(0)
	if a == accel.ActNone {
		return nil
	}
	if p.ws.train && a == accel.ActHardSwish {
		if p.ws.pre[p.i] == nil {
			p.ws.pre[p.i] = make([]float32, len(y))
		}
		copy(p.ws.pre[p.i], y)
	}
	return p.k.BiasAct(p.batch(), c, hw, y, nil, a, y)
}

// finishAct applies the node's activation when the kernel did not fuse it
// (fusedAct differs): after a kernel called with fusedAct.
func (p *pass) finishAct(c, hw int) error {
	if p.fusedAct() == p.nd.Act {
		return nil
	}
	return p.activate(c, hw)
}

// deactivate turns the output gradient into the gradient before the
// node's activation, in place.
func (p *pass) deactivate() error {
	if p.nd.Act == accel.ActNone {
		return nil
	}
	return p.k.ActBackward(p.nd.Act, p.ws.pre[p.i], p.y(0), p.dy(0), p.dy(0))
}

// passGrad adds (copies) g into the gradient of input j.
func (p *pass) passGrad(j int, g []float32) {
	if dx, done := p.dx(j); dx != nil {
		copy(dx, g)
		done()
	}
}

// lowering is what a layer type's lower sees while Lower builds a plan.
type lowering struct {
	m        *Model
	g        *Graph
	plan     *accel.Plan
	pt       []int       // graph tensor → plan tensor
	producer map[int]int // plan tensor → op index
	normFold int         // node the input normalisation folds into, or −1
}

// ins returns the plan tensors of the node's inputs.
func (l *lowering) ins(n *Node) []int {
	ins := make([]int, len(n.In))
	for k, t := range n.In {
		ins[k] = l.pt[t]
	}
	return ins
}

// newTensor adds the plan tensor of graph tensor gt.
func (l *lowering) newTensor(gt int) int {
	l.plan.Tensors = append(l.plan.Tensors, append(accel.Shape(nil), l.g.Tensors[gt]...))
	l.pt[gt] = len(l.plan.Tensors) - 1
	return l.pt[gt]
}

// emit appends op.
func (l *lowering) emit(op accel.Op) {
	l.plan.Ops = append(l.plan.Ops, op)
	for _, t := range op.Out {
		l.producer[t] = len(l.plan.Ops) - 1
	}
}

// emitSimple appends an op of kind k reading the node's inputs and
// writing its one output, with its activation.
func (l *lowering) emitSimple(n *Node, k accel.OpKind) {
	l.emit(accel.Op{Name: n.Layer.Name, Kind: k, In: l.ins(n), Out: []int{l.newTensor(n.Out[0])}, Act: n.Act})
}

// fusable returns the op that produced graph tensor gt when it is one of
// kinds, has no activation and one output, and gt is read by one node
// only and is not the network output: the node reading it can be merged
// into that op.
func (l *lowering) fusable(gt int, kinds ...accel.OpKind) *accel.Op {
	if gt == 0 || gt == l.g.Output || len(l.g.Consumers[gt]) != 1 {
		return nil
	}
	i, ok := l.producer[l.pt[gt]]
	if !ok {
		return nil
	}
	op := &l.plan.Ops[i]
	if op.Act != accel.ActNone || len(op.Out) != 1 || !slices.Contains(kinds, op.Kind) {
		return nil
	}
	return op
}

// merged records that graph tensor gt is op's output (the node writing it
// was merged into op).
func (l *lowering) merged(gt int, op *accel.Op) { l.pt[gt] = op.Out[0] }

// EmitONNX writes op, a plan op, as ONNX nodes through b: the layer type
// whose plan op it is defines how. name is a unique stem for the nodes'
// names, in and out the ONNX values of the op's inputs and outputs.
func EmitONNX(b ONNXBuilder, op *accel.Op, name string, in, out []string) error {
	t := layerOps[op.Kind]
	if t == nil {
		return fmt.Errorf("op kind %q has no ONNX form (no layer type lowers to it)", op.Kind)
	}
	return t.onnx(b, op, name, in, out)
}
