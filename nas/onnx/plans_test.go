//go:build cgo

package onnx

import (
	"context"
	"fmt"
	"math"
	"math/rand"
	"strings"
	"testing"

	"hwnas/accel"
	"hwnas/nas"
	"hwnas/nas/compress"
)

// planBuilder assembles accel.Plans with He-initialised random weights for
// the export tests: every op kind the exporter writes, in the shapes the
// compact blocks of the model zoo use.
type planBuilder struct {
	p   accel.Plan
	rng *rand.Rand
}

func newPlan(name string, seed int64, in accel.Shape) *planBuilder {
	b := &planBuilder{p: accel.Plan{Name: name}, rng: rand.New(rand.NewSource(seed))}
	b.p.Input = b.tensor(in)
	return b
}

func (b *planBuilder) tensor(s accel.Shape) int {
	b.p.Tensors = append(b.p.Tensors, append(accel.Shape(nil), s...))
	return len(b.p.Tensors) - 1
}

func (b *planBuilder) shape(t int) accel.Shape { return b.p.Tensors[t] }

// randn returns n values drawn from N(0, std²).
func (b *planBuilder) randn(n int, std float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(b.rng.NormFloat64() * std)
	}
	return v
}

func (b *planBuilder) add(op accel.Op) { b.p.Ops = append(b.p.Ops, op) }

// conv adds a k×k (kh×kw when kw > 0) convolution with bias.
func (b *planBuilder) conv(name string, x, out, kh, kw, stride, pad, groups int, act accel.Act) int {
	s := b.shape(x)
	if kw == 0 {
		kw = kh
	}
	c := accel.ConvParams{C: s[0], H: s[1], W: s[2], K: out, KH: kh, KW: kw, StrideH: stride, StrideW: stride, PadH: pad, PadW: pad, Groups: groups}
	_, nw, _ := c.Sizes()
	fanIn := float64(nw / out)
	y := b.tensor(accel.Shape{out, c.OutH(), c.OutW()})
	b.add(accel.Op{Name: name, Kind: accel.OpConv, In: []int{x}, Out: []int{y}, Conv: c, Act: act,
		W: b.randn(nw, math.Sqrt(2/fanIn)), B: b.randn(out, 0.1)})
	return y
}

func (b *planBuilder) linear(name string, x, out int, act accel.Act, bias bool) int {
	in := b.shape(x).Size()
	y := b.tensor(accel.Shape{out})
	op := accel.Op{Name: name, Kind: accel.OpLinear, In: []int{x}, Out: []int{y}, Act: act, W: b.randn(in*out, math.Sqrt(2/float64(in)))}
	if bias {
		op.B = b.randn(out, 0.1)
	}
	b.add(op)
	return y
}

func (b *planBuilder) pool(kind accel.OpKind, x, k, stride, pad int) int {
	s := b.shape(x)
	q := accel.PoolParams{C: s[0], H: s[1], W: s[2], KH: k, KW: k, StrideH: stride, StrideW: stride, PadH: pad, PadW: pad}
	y := b.tensor(accel.Shape{s[0], q.OutH(), q.OutW()})
	b.add(accel.Op{Name: string(kind), Kind: kind, In: []int{x}, Out: []int{y}, Pool: q})
	return y
}

func (b *planBuilder) gap(x int) int {
	y := b.tensor(accel.Shape{b.shape(x)[0]})
	b.add(accel.Op{Name: "gap", Kind: accel.OpGlobalAvgPool, In: []int{x}, Out: []int{y}})
	return y
}

func (b *planBuilder) batchNorm(x int, act accel.Act) int {
	c := b.shape(x)[0]
	y := b.tensor(b.shape(x))
	scale := b.randn(c, 0.2)
	for i := range scale {
		scale[i] += 1
	}
	b.add(accel.Op{Name: "bn", Kind: accel.OpBatchNorm, In: []int{x}, Out: []int{y}, Act: act, Scale: scale, Shift: b.randn(c, 0.1)})
	return y
}

func (b *planBuilder) act(x int, a accel.Act) int {
	y := b.tensor(b.shape(x))
	b.add(accel.Op{Name: a.String(), Kind: accel.OpAct, In: []int{x}, Out: []int{y}, Act: a})
	return y
}

func (b *planBuilder) sum(x, z int, act accel.Act) int {
	y := b.tensor(b.shape(x))
	b.add(accel.Op{Name: "add", Kind: accel.OpAdd, In: []int{x, z}, Out: []int{y}, Act: act})
	return y
}

func (b *planBuilder) concat(xs ...int) int {
	s := append(accel.Shape(nil), b.shape(xs[0])...)
	s[0] = 0
	for _, x := range xs {
		s[0] += b.shape(x)[0]
	}
	y := b.tensor(s)
	b.add(accel.Op{Name: "concat", Kind: accel.OpConcat, In: xs, Out: []int{y}})
	return y
}

func (b *planBuilder) split(x int, sizes ...int) []int {
	s := b.shape(x)
	var ys []int
	for _, c := range sizes {
		ys = append(ys, b.tensor(accel.Shape{c, s[1], s[2]}))
	}
	b.add(accel.Op{Name: "split", Kind: accel.OpSplit, In: []int{x}, Out: ys})
	return ys
}

func (b *planBuilder) shuffle(x, groups int) int {
	y := b.tensor(b.shape(x))
	b.add(accel.Op{Name: "shuffle", Kind: accel.OpShuffle, In: []int{x}, Out: []int{y}, Groups: groups})
	return y
}

func (b *planBuilder) flatten(x int) int {
	y := b.tensor(accel.Shape{b.shape(x).Size()})
	b.add(accel.Op{Name: "flatten", Kind: accel.OpFlatten, In: []int{x}, Out: []int{y}})
	return y
}

func (b *planBuilder) done(out int) *accel.Plan {
	b.p.Output = out
	if err := b.p.Validate(); err != nil {
		panic(fmt.Sprintf("test plan %s: %v", b.p.Name, err))
	}
	p := b.p
	return &p
}

var mnistShape = accel.Shape{1, 28, 28}

// lenet5Plan is LeNet-5 as in Deep Compression (conv20-5, pool, conv50-5,
// pool, fc500, fc10); width scales the channel and hidden counts (0.25 is
// the 75%-channel-pruned model).
func lenet5Plan(seed int64, width float64) *accel.Plan {
	w := func(n int) int { return max(1, int(math.Round(float64(n)*width))) }
	b := newPlan(fmt.Sprintf("lenet5-w%g", width), seed, mnistShape)
	x := b.conv("conv1", b.p.Input, w(20), 5, 0, 1, 0, 1, accel.ActNone)
	x = b.pool(accel.OpMaxPool, x, 2, 2, 0)
	x = b.conv("conv2", x, w(50), 5, 0, 1, 0, 1, accel.ActNone)
	x = b.pool(accel.OpMaxPool, x, 2, 2, 0)
	x = b.flatten(x)
	x = b.linear("fc1", x, w(500), accel.ActReLU, true)
	return b.done(b.linear("fc2", x, 10, accel.ActNone, true))
}

// lenet300Plan is LeNet-300-100; the input is flattened by the Linear op
// itself (the exporter inserts the Flatten).
func lenet300Plan(seed int64) *accel.Plan {
	b := newPlan("lenet-300-100", seed, mnistShape)
	x := b.linear("fc1", b.p.Input, 300, accel.ActReLU, true)
	x = b.linear("fc2", x, 100, accel.ActReLU, true)
	return b.done(b.linear("fc3", x, 10, accel.ActNone, true))
}

// blockPlan wraps one compact block between a stride-2 stem convolution
// and a global-average-pool classifier.
func blockPlan(name string, seed int64, block func(b *planBuilder, x int) int) *accel.Plan {
	b := newPlan(name, seed, mnistShape)
	x := b.conv("stem", b.p.Input, 16, 3, 0, 2, 1, 1, accel.ActReLU) // 16×14×14
	x = block(b, x)
	return b.done(b.linear("classifier", b.gap(x), 10, accel.ActNone, true))
}

// compactPlans are hand-built plans shaped like the compact blocks, written
// to cover every op kind and form a plan may hold, including those
// nas.Lower rarely emits: unfolded batch norm, standalone activations,
// average pooling with padding, hard-swish, ReLU6, grouped and depthwise
// convolution, residual Add, Concat, Split and channel shuffle.
func compactPlans() []*accel.Plan {
	return []*accel.Plan{
		blockPlan("fire", 11, func(b *planBuilder, x int) int {
			s := b.conv("squeeze", x, 8, 1, 0, 1, 0, 1, accel.ActReLU)
			e1 := b.conv("expand1x1", s, 12, 1, 0, 1, 0, 1, accel.ActReLU)
			e3 := b.conv("expand3x3", s, 12, 3, 0, 1, 1, 1, accel.ActReLU)
			return b.pool(accel.OpMaxPool, b.concat(e1, e3), 3, 2, 1)
		}),
		blockPlan("depthwise-separable", 12, func(b *planBuilder, x int) int {
			d := b.conv("dw", x, 16, 3, 0, 1, 1, 16, accel.ActNone)
			d = b.batchNorm(d, accel.ActReLU6)
			p := b.conv("pw", d, 24, 1, 0, 1, 0, 1, accel.ActNone)
			p = b.act(b.batchNorm(p, accel.ActNone), accel.ActReLU6)
			return b.pool(accel.OpAvgPool, p, 3, 1, 1)
		}),
		blockPlan("inverted-residual", 13, func(b *planBuilder, x int) int {
			e := b.conv("expand", x, 64, 1, 0, 1, 0, 1, accel.ActHardSwish)
			d := b.conv("dw", e, 64, 3, 0, 1, 1, 64, accel.ActReLU6)
			p := b.conv("project", d, 16, 1, 0, 1, 0, 1, accel.ActNone)
			return b.sum(p, x, accel.ActNone)
		}),
		blockPlan("shuffle-unit", 14, func(b *planBuilder, x int) int {
			g := b.conv("gconv1", x, 16, 1, 0, 1, 0, 4, accel.ActReLU)
			g = b.shuffle(g, 4)
			g = b.conv("dw", g, 16, 3, 0, 1, 1, 16, accel.ActNone)
			g = b.conv("gconv2", g, 16, 1, 0, 1, 0, 4, accel.ActNone)
			return b.sum(g, x, accel.ActReLU)
		}),
		blockPlan("shufflev2-unit", 15, func(b *planBuilder, x int) int {
			halves := b.split(x, 8, 8)
			r := b.conv("pw1", halves[1], 8, 1, 0, 1, 0, 1, accel.ActReLU)
			r = b.conv("dw", r, 8, 3, 0, 1, 1, 8, accel.ActNone)
			r = b.conv("pw2", r, 8, 1, 0, 1, 0, 1, accel.ActReLU)
			return b.shuffle(b.concat(halves[0], r), 2)
		}),
	}
}

// lowered builds a model of arch with seeded He weights, random biases and
// random batch-norm statistics (so that folding changes the weights), and
// lowers it with nas.Lower, as hwnas runs and exports trained models.
func lowered(t testing.TB, a *nas.Arch, seed uint64) *accel.Plan {
	t.Helper()
	m, err := nas.NewModel(a, seed)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewSource(int64(seed)))
	for _, p := range append(append([]*nas.Param(nil), m.Params...), m.Buffers...) {
		kind := p.Name[strings.LastIndex(p.Name, ".")+1:]
		for i := range p.Data {
			switch kind {
			case "b", "beta", "mean":
				p.Data[i] = float32(r.NormFloat64() * 0.1)
			case "gamma":
				p.Data[i] = float32(1 + r.NormFloat64()*0.2)
			case "var":
				p.Data[i] = float32(0.5 + r.Float64())
			}
		}
	}
	p, err := nas.Lower(m)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// builtinPlan lowers a built-in architecture.
func builtinPlan(t testing.TB, name string, seed uint64) *accel.Plan {
	t.Helper()
	a, err := nas.BuiltinArch(name)
	if err != nil {
		t.Fatal(err)
	}
	return lowered(t, a, seed)
}

// blockModels are nas.Builder's compact blocks (SqueezeNet fire, MobileNet
// depthwise-separable, MobileNetV2 inverted residual, ShuffleNet and
// ShuffleNetV2 units at strides 1 and 2) between a stride-2 conv+BN stem
// and a global-average-pool classifier, lowered with nas.Lower.
func blockModels(t testing.TB) []*accel.Plan {
	t.Helper()
	blocks := []struct {
		name  string
		build func(b *nas.Builder)
	}{
		{"fire", func(b *nas.Builder) { b.Fire(8, 12, 12) }},
		{"depthwise-separable", func(b *nas.Builder) { b.DepthwiseSeparable(24, 1, "relu6") }},
		{"inverted-residual", func(b *nas.Builder) { b.InvertedResidual(16, 4, 3, 1, "hardswish") }},
		{"inverted-residual-s2", func(b *nas.Builder) { b.InvertedResidual(24, 6, 3, 2, "relu6") }},
		{"shuffle-unit", func(b *nas.Builder) { b.ShuffleUnit(16, 4, 1) }},
		{"shuffle-unit-s2", func(b *nas.Builder) { b.ShuffleUnit(32, 4, 2) }},
		{"shufflev2-unit", func(b *nas.Builder) { b.ShuffleV2Unit(16, 1) }},
		{"shufflev2-unit-s2", func(b *nas.Builder) { b.ShuffleV2Unit(32, 2) }},
	}
	var plans []*accel.Plan
	for i, bl := range blocks {
		b := nas.NewBuilder("nas-"+bl.name, []int{1, 28, 28}, 10)
		b.ConvBN(16, 3, 2, 1, "relu")
		bl.build(b)
		b.GAP()
		b.Linear(10, "")
		a, err := b.Build()
		if err != nil {
			t.Fatalf("%s: %v", bl.name, err)
		}
		plans = append(plans, lowered(t, a, uint64(20+i)))
	}
	return plans
}

// prunedLeNet5 is the built-in LeNet-5 with 75% of the channels of conv1,
// conv2 and fc1 removed by filter L1 norm (compress.RemoveChannels, the
// structured pruning of the compression pipeline), lowered.
func prunedLeNet5(t testing.TB, seed uint64) *accel.Plan {
	t.Helper()
	a, err := nas.BuiltinArch("lenet5")
	if err != nil {
		t.Fatal(err)
	}
	m, err := nas.NewModel(a, seed)
	if err != nil {
		t.Fatal(err)
	}
	keep := map[string][]int{}
	for layer, k := range map[string]int{"conv1": 20, "conv2": 50, "fc1": 500} {
		scores, err := compress.FilterL1(m.Param(layer+".w").Data, k)
		if err != nil {
			t.Fatal(err)
		}
		if keep[layer], err = compress.KeepChannels(scores, 0.75, 1); err != nil {
			t.Fatal(err)
		}
	}
	pm, err := compress.RemoveChannels(m, keep)
	if err != nil {
		t.Fatal(err)
	}
	pm.Arch.Name = "lenet5-pruned75"
	p, err := nas.Lower(pm)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// lowRankLeNet300 is the built-in LeNet-300-100 with fc1 and fc2 factorised
// at a tenth of their full rank (compress.Factorize), lowered.
func lowRankLeNet300(t testing.TB, seed uint64) *accel.Plan {
	t.Helper()
	a, err := nas.BuiltinArch("lenet300")
	if err != nil {
		t.Fatal(err)
	}
	m, err := nas.NewModel(a, seed)
	if err != nil {
		t.Fatal(err)
	}
	for _, layer := range []string{"fc1", "fc2"} {
		if m, err = compress.Factorize(m, layer, func(sv []float64) (int, error) { return compress.RankForFraction(len(sv), 0.1) }); err != nil {
			t.Fatal(err)
		}
	}
	m.Arch.Name = "lenet300-lowrank"
	p, err := nas.Lower(m)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// trainedModel trains a built-in architecture for one epoch on the first n
// MNIST training images (one kernel thread): a model with the confident
// logits of a trained one, for the int8 agreement checks.
func trainedModel(t testing.TB, name string, n int) *nas.Model {
	t.Helper()
	a, err := nas.BuiltinArch(name)
	if err != nil {
		t.Fatal(err)
	}
	return trainedArch(t, a, n)
}

// trainedArch is trainedModel for any architecture.
func trainedArch(t testing.TB, a *nas.Arch, n int) *nas.Model {
	t.Helper()
	name := a.Name
	m, err := nas.NewModel(a, 1)
	if err != nil {
		t.Fatal(err)
	}
	k, done, err := nas.DefaultKernels(1)
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	m.Kernels = k
	train := calibration(t, n)
	res, err := nas.Train(context.Background(), m, train, mnist(t, sized(500, 100)), nas.TrainConfig{Epochs: 1, BatchSize: 32, Seed: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s trained on %d images: %+v", name, n, res.Epochs)
	m.Kernels = nil
	return m
}

// trainedPlan lowers trainedModel.
func trainedPlan(t testing.TB, name string, n int) *accel.Plan {
	t.Helper()
	p, err := nas.Lower(trainedModel(t, name, n))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// inPlacePlan updates tensors in place (an activation, a residual add and
// batch norm writing the tensor they read, the last on the output), as
// host programs allow; ONNX values are assigned once, so the exporter must
// rename every write.
func inPlacePlan() *accel.Plan {
	b := newPlan("in-place", 16, mnistShape)
	x := b.conv("conv", b.p.Input, 8, 3, 0, 2, 1, 1, accel.ActNone) // 8×14×14
	b.add(accel.Op{Name: "relu", Kind: accel.OpAct, In: []int{x}, Out: []int{x}, Act: accel.ActReLU})
	y := b.conv("conv2", x, 8, 3, 0, 1, 1, 1, accel.ActNone)
	b.add(accel.Op{Name: "residual", Kind: accel.OpAdd, In: []int{y, x}, Out: []int{y}, Act: accel.ActReLU6})
	out := b.linear("fc", b.gap(y), 10, accel.ActNone, true)
	b.add(accel.Op{Name: "bn", Kind: accel.OpBatchNorm, In: []int{out}, Out: []int{out}, Act: accel.ActHardSwish,
		Scale: b.randn(10, 1), Shift: b.randn(10, 0.1)})
	return b.done(out)
}
