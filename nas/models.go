package nas

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// DataShape is what a built-in architecture is built for: the data set's
// per-sample input shape [C,H,W], its class count, and the input
// normalisation (nil for none).
type DataShape struct {
	Input     []int
	Classes   int
	Normalize *Normalization
}

// MNISTShape is the shape the LeNets default to; the other built-ins
// default to CIFAR's.
var (
	MNISTShape = DataShape{Input: []int{1, 28, 28}, Classes: 10}
	CIFARShape = DataShape{Input: []int{3, 32, 32}, Classes: 10}
)

// builtin is one reference architecture: its default shape, a line of
// help, and how it is built for a shape (width is the multiplier of
// "name:width", 1 when not given).
type builtin struct {
	shape DataShape
	doc   string
	width bool // takes a width multiplier
	build func(s DataShape, width float64) (*Arch, error)
}

// builtins are the reference architectures. Each takes the data set's
// shape: the LeNets read any C×H×W (the first linear layer grows with the
// map left after the convolutions), VGG-16 pools only while the map is at
// least 2×2, ResNet-20 always has its three stages, and MobileNetV2 keeps
// as many of its five stride-2 steps as leave a map of ≥ 4×4.
var builtins = map[string]builtin{
	// LeNet-5, Caffe variant (as in Deep Compression): 431,080 parameters
	// on MNIST.
	"lenet5": {shape: MNISTShape, doc: "LeNet-5 (Caffe variant, Deep Compression's)", build: fromJSON(`{"version":1,"name":"lenet5","input":[1,28,28],"classes":10,"layers":[
		{"name":"conv1","type":"conv","out":20,"kernel":5},
		{"name":"pool1","type":"maxpool","size":2},
		{"name":"conv2","type":"conv","out":50,"kernel":5},
		{"name":"pool2","type":"maxpool","size":2},
		{"name":"fc1","type":"linear","out":500,"act":"relu"},
		{"name":"fc2","type":"linear","out":10}]}`)},
	// LeNet-300-100: 784-300-100-10 with ReLU, 266,610 parameters on MNIST.
	"lenet300": {shape: MNISTShape, doc: "LeNet-300-100", build: fromJSON(`{"version":1,"name":"lenet300","input":[1,28,28],"classes":10,"layers":[
		{"name":"fc1","type":"linear","out":300,"act":"relu"},
		{"name":"fc2","type":"linear","out":100,"act":"relu"},
		{"name":"fc3","type":"linear","out":10}]}`)},
	// The drift control of latency measurements (search.ProbeModel): a
	// small network of the default search space's kind — a 5×5 stride-2
	// stem, two depthwise-separable blocks, a 5×5 stride-2 convolution
	// and a linear head: 33,138 parameters, 0.56 M multiply-accumulates
	// on MNIST.
	"probe": {shape: MNISTShape, doc: "the drift control measured beside every trial: a small network of the default space's kind", build: fromJSON(`{"version":1,"name":"probe","input":[1,28,28],"classes":10,"layers":[
		{"name":"conv1","type":"conv","out":12,"kernel":5,"stride":2,"pad":2,"bias":false},
		{"name":"bn1","type":"batchnorm","act":"relu"},
		{"name":"dws1.dw","type":"dwconv","kernel":3,"stride":2,"pad":1,"bias":false},
		{"name":"dws1.dw.bn","type":"batchnorm","act":"relu"},
		{"name":"dws1.pw","type":"conv","out":32,"kernel":1,"bias":false},
		{"name":"dws1.pw.bn","type":"batchnorm","act":"relu"},
		{"name":"dws2.dw","type":"dwconv","kernel":3,"pad":1,"bias":false},
		{"name":"dws2.dw.bn","type":"batchnorm","act":"relu"},
		{"name":"dws2.pw","type":"conv","out":32,"kernel":1,"bias":false},
		{"name":"dws2.pw.bn","type":"batchnorm","act":"relu"},
		{"name":"conv2","type":"conv","out":32,"kernel":5,"stride":2,"pad":2,"bias":false},
		{"name":"bn2","type":"batchnorm","act":"relu"},
		{"name":"flatten","type":"flatten"},
		{"name":"fc","type":"linear","out":10}]}`)},
	"vgg16":       {shape: CIFARShape, doc: "VGG-16 for CIFAR with batch norm (Li et al. 2017, network slimming)", build: vgg16},
	"resnet20":    {shape: CIFARShape, doc: "ResNet-20 for CIFAR (He et al. 2016; 1×1 projection shortcuts)", build: resnet20},
	"mobilenetv2": {shape: CIFARShape, doc: "MobileNetV2; mobilenetv2:W sets the width multiplier W", width: true, build: mobilenetV2},
}

// BuiltinNames lists the built-in architectures, sorted.
func BuiltinNames() []string {
	n := make([]string, 0, len(builtins))
	for k := range builtins {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

// BuiltinHelp describes each built-in architecture, one line each.
func BuiltinHelp() string {
	var b strings.Builder
	for _, n := range BuiltinNames() {
		fmt.Fprintf(&b, "  %-12s %s\n", n, builtins[n].doc)
	}
	return b.String()
}

// BuiltinArch returns a built-in architecture at its default shape
// (1×28×28 for the LeNets, 3×32×32 for the others; 10 classes).
func BuiltinArch(name string) (*Arch, error) {
	return BuiltinArchFor(name, DataShape{})
}

// BuiltinArchFor returns a built-in architecture built for shape s (its
// default input and classes when s.Input is empty). The name may carry a
// width multiplier for the architectures that take one: "mobilenetv2:0.5".
func BuiltinArchFor(name string, s DataShape) (*Arch, error) {
	b, width, err := lookupBuiltin(name)
	if err != nil {
		return nil, err
	}
	if len(s.Input) == 0 {
		s.Input, s.Classes = b.shape.Input, b.shape.Classes
	}
	if len(s.Input) != 3 || s.Classes < 1 {
		return nil, fmt.Errorf("built-in %q needs a [C,H,W] input and classes, got %v and %d", name, s.Input, s.Classes)
	}
	a, err := b.build(s, width)
	if err != nil {
		return nil, fmt.Errorf("built-in %q for %v inputs: %w", name, s.Input, err)
	}
	a.Name = name
	if s.Normalize != nil {
		a.Normalize = NewNormalization(s.Normalize.Mean, s.Normalize.Std)
	}
	if _, err := NewGraph(a); err != nil {
		return nil, fmt.Errorf("built-in %q for %v inputs: %w", name, s.Input, err)
	}
	return a, nil
}

// lookupBuiltin splits "name[:width]" and finds the built-in.
func lookupBuiltin(name string) (builtin, float64, error) {
	base, ws, hasWidth := strings.Cut(name, ":")
	b, ok := builtins[base]
	if !ok {
		return builtin{}, 0, fmt.Errorf("unknown built-in architecture %q (built-in: %s)", name, strings.Join(BuiltinNames(), ", "))
	}
	width := 1.0
	if hasWidth {
		w, err := strconv.ParseFloat(ws, 64)
		if !b.width || err != nil || !(w > 0 && w <= 4) {
			return builtin{}, 0, fmt.Errorf("built-in %q: %q is not a width multiplier in (0, 4] (only mobilenetv2 takes one: mobilenetv2:0.5)", name, ws)
		}
		width = w
	}
	return b, width, nil
}

// fromJSON builds a small fixed architecture from its JSON, given the
// shape's input and classes (the last layer's outputs).
func fromJSON(src string) func(DataShape, float64) (*Arch, error) {
	return func(s DataShape, _ float64) (*Arch, error) {
		var a Arch
		if err := json.Unmarshal([]byte(src), &a); err != nil {
			return nil, err
		}
		a.Input, a.Classes = append([]int(nil), s.Input...), s.Classes
		a.Layers[len(a.Layers)-1].Out = s.Classes
		return &a, nil
	}
}

// vgg16 is the CIFAR VGG-16 of the pruning papers (Li et al., "Pruning
// filters for efficient ConvNets", 2017; Liu et al., network slimming,
// 2017): thirteen 3×3 conv + batch norm + ReLU layers conv1…conv13 of
// 64, 64, 128, 128, 256×3, 512×6 channels with 2×2 max pooling after
// conv2, 4, 7, 10 and 13 (skipped once the map is 1×1), then fc1 of 512
// features + batch norm + ReLU and fc2 to the classes: 15.0 M parameters
// and 313 M multiply-accumulates on 3×32×32.
func vgg16(s DataShape, _ float64) (*Arch, error) {
	b := NewBuilder("vgg16", s.Input, s.Classes)
	widths := []int{64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512}
	poolAfter := map[int]bool{2: true, 4: true, 7: true, 10: true, 13: true}
	pools := 0
	for i, w := range widths {
		b.convBN(fmt.Sprintf("conv%d", i+1), w, 3, 1, 1, "relu")
		if sh := b.Shape(b.Current()); poolAfter[i+1] && len(sh) == 3 && sh[1] >= 2 && sh[2] >= 2 {
			pools++
			b.Layer(Layer{Name: fmt.Sprintf("pool%d", pools), Type: TypeMaxPool, Size: 2})
		}
	}
	b.Layer(Layer{Name: "fc1", Type: TypeLinear, Out: 512, Bias: noBias()})
	b.Layer(Layer{Name: "fc1.bn", Type: TypeBatchNorm, Act: "relu"})
	b.Layer(Layer{Name: "fc2", Type: TypeLinear, Out: s.Classes})
	return b.Build()
}

// resnet20 is He et al.'s CIFAR ResNet with n = 3: a 3×3 conv of 16
// channels, three stages of three basic blocks (16, 32, 64 channels;
// the first block of stages 2 and 3 strides 2 and projects its shortcut
// with a 1×1 conv + batch norm), global average pooling and a linear
// classifier: 0.27 M parameters, 41 M multiply-accumulates on 3×32×32.
func resnet20(s DataShape, _ float64) (*Arch, error) {
	b := NewBuilder("resnet20", s.Input, s.Classes)
	b.convBN("conv1", 16, 3, 1, 1, "relu")
	for stage, w := range []int{16, 32, 64} {
		for blk := 0; blk < 3; blk++ {
			stride := 1
			if blk == 0 && stage > 0 {
				stride = 2
			}
			b.BasicBlock(w, stride)
		}
	}
	b.GAP()
	b.Layer(Layer{Name: "fc", Type: TypeLinear, Out: s.Classes})
	return b.Build()
}

// mobilenetV2 is Sandler et al.'s MobileNetV2 with width multiplier
// width: a 3×3 stem of 32·width channels, the seventeen inverted residual
// blocks of the paper's table (expansion 6 but the first, ReLU6), a 1×1
// conv to max(1280, 1280·width) features, global average pooling and a
// linear classifier; channel counts are rounded to multiples of 8 as in
// the reference code. Of the five stride-2 steps (stem, blocks of 24, 32,
// 64 and 160 channels) it keeps the last ⌊log₂(min(H,W)/4)⌋, so a 32×32
// image ends at 4×4 (the usual CIFAR variant) and a 224×224 one at 7×7.
func mobilenetV2(s DataShape, width float64) (*Arch, error) {
	b := NewBuilder("mobilenetv2", s.Input, s.Classes)
	ch := func(c float64) int {
		v := max(8, int(c*width+4)/8*8)
		if float64(v) < 0.9*c*width {
			v += 8
		}
		return v
	}
	side := min(s.Input[1], s.Input[2])
	steps := 0
	if side >= 8 {
		steps = min(5, int(math.Floor(math.Log2(float64(side)/4))))
	}
	// stride returns 2 for downsampling step k (0..4) when it is kept.
	stride := func(k int) int {
		if k >= 5-steps {
			return 2
		}
		return 1
	}
	b.convBN("stem", ch(32), 3, stride(0), 1, "relu6")
	settings := []struct{ t, c, n, step int }{
		{1, 16, 1, -1}, {6, 24, 2, 1}, {6, 32, 3, 2}, {6, 64, 4, 3}, {6, 96, 3, -1}, {6, 160, 3, 4}, {6, 320, 1, -1},
	}
	for _, st := range settings {
		for i := 0; i < st.n; i++ {
			str := 1
			if i == 0 && st.step >= 0 {
				str = stride(st.step)
			}
			b.InvertedResidual(ch(float64(st.c)), st.t, 3, str, "relu6")
		}
	}
	b.convBN("head", max(1280, ch(1280)), 1, 1, 1, "relu6")
	b.GAP()
	b.Layer(Layer{Name: "fc", Type: TypeLinear, Out: s.Classes})
	return b.Build()
}
