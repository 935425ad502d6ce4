package nas

import "hwnas/accel"

// shuffle: the ShuffleNet channel shuffle with groups ≥ 2 (see shuffle).
// Plan op OpShuffle, ONNX Reshape [g, C/g, H, W], Transpose, Reshape.
func init() {
	registerLayer(&layerType{
		names:  []string{TypeShuffle},
		fields: []string{"groups"},
		infer: func(c *inferCtx) error {
			if err := c.one(true); err != nil {
				return err
			}
			g, in := c.l.Groups, c.in[0]
			if g < 2 {
				return c.fail("needs groups ≥ 2")
			}
			if in[0]%g != 0 {
				return c.fail("shape mismatch: %d channels are not divisible into %d groups", in[0], g)
			}
			return c.out(in...)
		},
		forward: func(p *pass) error {
			s := p.inShape(0)
			shuffle(p.x(0), p.y(0), p.batch(), s[0], s[1]*s[2], p.nd.Layer.Groups, false)
			return nil
		},
		backward: func(p *pass) error {
			if dx, done := p.dx(0); dx != nil {
				s := p.inShape(0)
				shuffle(p.dy(0), dx, p.batch(), s[0], s[1]*s[2], p.nd.Layer.Groups, true)
				done()
			}
			return nil
		},
		lower: func(l *lowering, n *Node) error {
			l.emit(accel.Op{Name: n.Layer.Name, Kind: accel.OpShuffle, In: l.ins(n), Out: []int{l.newTensor(n.Out[0])}, Groups: n.Layer.Groups})
			return nil
		},
		op: accel.OpShuffle,
		onnx: func(b ONNXBuilder, op *accel.Op, name string, in, out []string) error {
			// Channel shuffle with g groups: view C as g×(C/g), transpose to
			// (C/g)×g and flatten, so output channel j·g+i is input channel
			// i·(C/g)+j.
			s := b.Shape(op.In[0])
			g, c, h, w := op.Groups, s[0], s[1], s[2]
			grouped, swapped := name+"_grouped", name+"_swapped"
			b.Node("Reshape", name+"_split_groups", []string{in[0], b.ShapeOf(accel.Shape{g, c / g, h, w})}, []string{grouped})
			b.Node("Transpose", name+"_transpose", []string{grouped}, []string{swapped}, IntsAttr("perm", 0, 2, 1, 3, 4))
			b.Node("Reshape", name+"_merge_groups", []string{swapped, b.ShapeOf(b.Shape(op.Out[0]))}, out[:1])
			return nil
		},
		channels: func(*Node) ChannelRule { return ChannelsShuffle },
		sample:   []Layer{{Name: "sh", Type: TypeShuffle, Groups: 2}},
	})
}

// shuffle is the ShuffleNet channel shuffle: with C channels in g groups
// of C/g, input channel i·(C/g)+j goes to output channel j·g+i (reshape to
// g×(C/g), transpose, flatten). inverse undoes it (for the backward pass).
func shuffle(x, y []float32, n, c, hw, g int, inverse bool) {
	per := c / g
	for s := 0; s < n; s++ {
		base := s * c * hw
		for i := 0; i < g; i++ {
			for j := 0; j < per; j++ {
				src, dst := i*per+j, j*g+i
				if inverse {
					src, dst = dst, src
				}
				copy(y[base+dst*hw:base+(dst+1)*hw], x[base+src*hw:base+(src+1)*hw])
			}
		}
	}
}
