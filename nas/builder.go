package nas

import (
	"fmt"

	"hwnas/accel"
)

// Builder assembles an architecture layer by layer and block by block.
// Every method appends to the current tensor (the last output, or the one
// chosen with SetCurrent) and returns the name of its output, so branches
// can be built. The first error sticks: later calls do nothing and Build
// returns it, as bufio.Scanner does.
//
//	b := NewBuilder("mbv2", []int{1, 28, 28}, 10)
//	b.ConvBN(16, 3, 1, 1, "relu6")
//	b.InvertedResidual(24, 6, 3, 2, "relu6")
//	b.GAP()
//	b.Linear(10, "")
//	arch, err := b.Build()
type Builder struct {
	arch   *Arch
	cur    string
	err    error
	counts map[string]int
}

// NewBuilder starts an architecture with the given per-sample input shape
// and number of classes.
func NewBuilder(name string, input []int, classes int) *Builder {
	return &Builder{arch: &Arch{Version: ArchVersion, Name: name, Input: append([]int(nil), input...), Classes: classes},
		cur: InputName, counts: map[string]int{}}
}

// Current returns the name of the tensor the next layer reads.
func (b *Builder) Current() string { return b.cur }

// SetCurrent makes the next layer read the tensor called name.
func (b *Builder) SetCurrent(name string) { b.cur = name }

// Err returns the first error so far.
func (b *Builder) Err() error { return b.err }

// Shape returns the shape of the tensor called name (nil after an error).
func (b *Builder) Shape(name string) accel.Shape {
	if b.err != nil {
		return nil
	}
	g, err := newGraph(b.arch, false)
	if err != nil {
		b.err = err
		return nil
	}
	if name == InputName {
		return g.Tensors[0]
	}
	for _, n := range g.Nodes {
		for k, t := range n.Out {
			if n.Layer.Name == name || fmt.Sprintf("%s:%d", n.Layer.Name, k) == name {
				return g.Tensors[t]
			}
		}
	}
	b.err = fmt.Errorf("builder %q: no tensor %q", b.arch.Name, name)
	return nil
}

// channels is the channel (or feature) count of the current tensor.
func (b *Builder) channels() int {
	s := b.Shape(b.cur)
	if len(s) == 0 {
		return 0
	}
	return s[0]
}

// name returns prefix followed by the next number for it: "conv1", "conv2"…
func (b *Builder) name(prefix string) string {
	b.counts[prefix]++
	return fmt.Sprintf("%s%d", prefix, b.counts[prefix])
}

// Layer appends l (reading the current tensor unless l.Inputs is set,
// named after its type unless l.Name is set), checks it, makes its output
// current and returns its name.
func (b *Builder) Layer(l Layer) string {
	if b.err != nil {
		return ""
	}
	if l.Name == "" {
		l.Name = b.name(l.Type)
	}
	if len(l.Inputs) == 0 {
		l.Inputs = []string{b.cur}
	}
	b.arch.Layers = append(b.arch.Layers, l)
	if _, err := newGraph(b.arch, false); err != nil {
		b.err = err
		return ""
	}
	b.cur = l.Name
	return l.Name
}

func noBias() *bool { f := false; return &f }

// Conv appends a k×k convolution with out channels, stride and "same"
// padding k/2, with bias and activation act ("" for none).
func (b *Builder) Conv(out, k, stride int, act string) string {
	return b.Layer(Layer{Type: TypeConv, Out: out, Kernel: k, Stride: stride, Pad: k / 2, Act: act})
}

// ConvBN appends a k×k convolution without bias (groups ≥ 1), then batch
// norm with activation act; it returns the batch norm's name.
func (b *Builder) ConvBN(out, k, stride, groups int, act string) string {
	return b.convBN("", out, k, stride, groups, act)
}

func (b *Builder) convBN(prefix string, out, k, stride, groups int, act string) string {
	c := Layer{Type: TypeConv, Out: out, Kernel: k, Stride: stride, Pad: k / 2, Groups: groups, Bias: noBias()}
	bn := Layer{Type: TypeBatchNorm, Act: act}
	if groups == 1 {
		c.Groups = 0
	}
	if prefix != "" {
		c.Name, bn.Name = prefix, prefix+".bn"
	}
	b.Layer(c)
	return b.Layer(bn)
}

// dwBN appends a depthwise k×k convolution (stride, same padding, no bias)
// and batch norm with act.
func (b *Builder) dwBN(prefix string, k, stride int, act string) string {
	b.Layer(Layer{Name: prefix, Type: TypeDWConv, Kernel: k, Stride: stride, Pad: k / 2, Bias: noBias()})
	return b.Layer(Layer{Name: prefix + ".bn", Type: TypeBatchNorm, Act: act})
}

// Linear appends a fully connected layer (reading any shape flat).
func (b *Builder) Linear(out int, act string) string {
	return b.Layer(Layer{Type: TypeLinear, Out: out, Act: act})
}

// MaxPool appends max pooling (size×size window, stride; 0 means size).
func (b *Builder) MaxPool(size, stride int) string {
	return b.Layer(Layer{Type: TypeMaxPool, Size: size, Stride: stride})
}

// AvgPool appends average pooling.
func (b *Builder) AvgPool(size, stride int) string {
	return b.Layer(Layer{Type: TypeAvgPool, Size: size, Stride: stride})
}

// GAP appends global average pooling, [C,H,W] → [C].
func (b *Builder) GAP() string { return b.Layer(Layer{Type: TypeGAP}) }

// Flatten appends [C,H,W] → [C·H·W].
func (b *Builder) Flatten() string { return b.Layer(Layer{Type: TypeFlatten}) }

// Fire appends a SqueezeNet fire module: squeeze 1×1 conv to s channels
// (ReLU), then expand 1×1 to e1 and 3×3 to e3 channels (ReLU) from the
// squeezed tensor, concatenated: e1+e3 output channels.
func (b *Builder) Fire(s, e1, e3 int) string {
	p := b.name("fire")
	b.Layer(Layer{Name: p + ".squeeze", Type: TypeConv, Out: s, Kernel: 1, Act: "relu"})
	b.Layer(Layer{Name: p + ".expand1", Type: TypeConv, Out: e1, Kernel: 1, Act: "relu", Inputs: []string{p + ".squeeze"}})
	b.Layer(Layer{Name: p + ".expand3", Type: TypeConv, Out: e3, Kernel: 3, Pad: 1, Act: "relu", Inputs: []string{p + ".squeeze"}})
	return b.Layer(Layer{Name: p, Type: TypeConcat, Inputs: []string{p + ".expand1", p + ".expand3"}})
}

// DepthwiseSeparable appends a MobileNet block: depthwise 3×3 (stride) +
// batch norm + act, then pointwise 1×1 to out channels + batch norm + act.
func (b *Builder) DepthwiseSeparable(out, stride int, act string) string {
	p := b.name("dws")
	b.dwBN(p+".dw", 3, stride, act)
	return b.convBN(p+".pw", out, 1, 1, 1, act)
}

// InvertedResidual appends a MobileNetV2 block: 1×1 expansion to
// expand·C channels + BN + act (left out when expand is 1), depthwise k×k
// with stride + BN + act, linear 1×1 projection to out channels + BN, and
// the residual add of the block's input when stride is 1 and out = C.
func (b *Builder) InvertedResidual(out, expand, k, stride int, act string) string {
	in := b.cur
	c := b.channels()
	if b.err == nil && expand < 1 {
		b.err = fmt.Errorf("builder %q: inverted residual expansion %d must be ≥ 1", b.arch.Name, expand)
	}
	p := b.name("ir")
	if expand != 1 {
		b.convBN(p+".expand", c*expand, 1, 1, 1, act)
	}
	b.dwBN(p+".dw", k, stride, act)
	proj := b.convBN(p+".project", out, 1, 1, 1, "")
	if stride == 1 && out == c {
		return b.Layer(Layer{Name: p, Type: TypeAdd, Inputs: []string{in, proj}})
	}
	return proj
}

// BasicBlock appends a ResNet basic block: 3×3 conv (stride) + BN + ReLU,
// 3×3 conv + BN, added to the shortcut, then ReLU. The shortcut is the
// block's input, or a 1×1 conv (stride) + BN when the stride or the
// channel count changes (He et al.'s option B).
func (b *Builder) BasicBlock(out, stride int) string {
	in := b.cur
	c := b.channels()
	p := b.name("res")
	b.convBN(p+".conv1", out, 3, stride, 1, "relu")
	last := b.convBN(p+".conv2", out, 3, 1, 1, "")
	short := in
	if stride != 1 || out != c {
		b.SetCurrent(in)
		short = b.convBN(p+".shortcut", out, 1, stride, 1, "")
	}
	return b.Layer(Layer{Name: p, Type: TypeAdd, Inputs: []string{short, last}, Act: "relu"})
}

// ShuffleUnit appends a ShuffleNet (v1) unit with g groups: 1×1 group
// conv to out/4 channels + BN + ReLU, channel shuffle, depthwise 3×3 with
// stride + BN, 1×1 group conv + BN. With stride 1 (out must equal the
// input channels) the input is added and ReLU applied; with stride 2 the
// branch produces out − C channels and is concatenated with a 3×3
// average-pooled shortcut, then ReLU.
func (b *Builder) ShuffleUnit(out, groups, stride int) string {
	in := b.cur
	c := b.channels()
	p := b.name("shuffle")
	branch := out
	if stride != 1 {
		branch = out - c
	}
	if b.err == nil && (branch <= 0 || (stride == 1 && out != c)) {
		b.err = fmt.Errorf("builder %q: shuffle unit %s: %d output channels do not fit %d input channels at stride %d", b.arch.Name, p, out, c, stride)
		return ""
	}
	mid := max(groups, out/4/groups*groups)
	b.convBN(p+".gconv1", mid, 1, 1, groups, "relu")
	b.Layer(Layer{Name: p + ".shuffle", Type: TypeShuffle, Groups: groups})
	b.dwBN(p+".dw", 3, stride, "")
	last := b.convBN(p+".gconv2", branch, 1, 1, groups, "")
	if stride == 1 {
		return b.Layer(Layer{Name: p, Type: TypeAdd, Inputs: []string{in, last}, Act: "relu"})
	}
	b.Layer(Layer{Name: p + ".shortcut", Type: TypeAvgPool, Size: 3, Stride: stride, Pad: 1, Inputs: []string{in}})
	b.Layer(Layer{Name: p + ".concat", Type: TypeConcat, Inputs: []string{p + ".shortcut", last}})
	return b.Layer(Layer{Name: p, Type: TypeReLU})
}

// ShuffleV2Unit appends a ShuffleNetV2 unit. With stride 1 (out must equal
// the input channels) the input is split in two halves; the second goes
// through 1×1 conv + BN + ReLU, depthwise 3×3 + BN, 1×1 conv + BN + ReLU and
// is concatenated with the first. With stride 2 both branches read the
// whole input: depthwise 3×3/2 + BN, 1×1 + BN + ReLU; and the three-layer
// branch with a strided depthwise conv; each gives out/2 channels. A
// channel shuffle with 2 groups ends the unit.
func (b *Builder) ShuffleV2Unit(out, stride int) string {
	in := b.cur
	c := b.channels()
	p := b.name("shufflev2")
	if b.err == nil && (out%2 != 0 || (stride == 1 && out != c)) {
		b.err = fmt.Errorf("builder %q: shufflev2 unit %s: %d output channels must be even (and equal the %d input channels at stride 1)", b.arch.Name, p, out, c)
		return ""
	}
	half := out / 2
	left := p + ".split:0"
	if stride == 1 {
		b.Layer(Layer{Name: p + ".split", Type: TypeSplit})
		b.SetCurrent(p + ".split:1")
	} else {
		b.dwBN(p+".left.dw", 3, stride, "")
		left = b.convBN(p+".left.pw", half, 1, 1, 1, "relu")
		b.SetCurrent(in)
	}
	b.convBN(p+".pw1", half, 1, 1, 1, "relu")
	b.dwBN(p+".dw", 3, stride, "")
	right := b.convBN(p+".pw2", half, 1, 1, 1, "relu")
	b.Layer(Layer{Name: p + ".concat", Type: TypeConcat, Inputs: []string{left, right}})
	return b.Layer(Layer{Name: p, Type: TypeShuffle, Groups: 2})
}

// Build validates the finished architecture (see NewGraph) and returns it.
func (b *Builder) Build() (*Arch, error) {
	if b.err != nil {
		return nil, b.err
	}
	if _, err := NewGraph(b.arch); err != nil {
		return nil, err
	}
	return b.arch.Clone(), nil
}
