package nas

import (
	"math/rand/v2"
	"slices"
	"testing"

	"hwnas/accel"
)

// TestLayerTable runs every registered layer type's sample (LayerSample)
// through the checks a new layer type must pass: a finite-difference
// gradient check of every parameter (training mode, the reference
// kernels), the lowered plan on accel's host interpreter against the
// model's evaluation forward, and parameter and MAC counts that agree with
// the model's tensors. The ONNX round trip of the same samples is
// nas/onnx's TestEveryLayerTypeRoundTrips.
func TestLayerTable(t *testing.T) {
	names := LayerTypes()
	if len(names) < 16 {
		t.Fatalf("only %d layer types registered: %v", len(names), names)
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			a, err := LayerSample(name)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.ContainsFunc(a.Layers, func(l Layer) bool { return l.Type == name }) {
				t.Fatalf("the sample of %s does not use it: %+v", name, a.Layers)
			}
			gradCheck(t, a, 3)

			m := testModel(t, a, 5)
			lowerMatchesForward(t, m, rand.New(rand.NewPCG(5, 5)), 2)

			if got, want := m.Graph.Params(), m.NumParams(); got != want {
				t.Errorf("graph counts %d parameters, the model has %d", got, want)
			}
			for _, nd := range m.Graph.Nodes {
				if nd.Weighted() != (m.Param(nd.Layer.Name+".w") != nil) {
					t.Errorf("layer %s: Weighted %v, has a weight tensor %v", nd.Layer.Name, nd.Weighted(), m.Param(nd.Layer.Name+".w") != nil)
				}
				if nd.Weighted() && m.Graph.NodeMACs(nd) <= 0 {
					t.Errorf("layer %s: %d MACs", nd.Layer.Name, m.Graph.NodeMACs(nd))
				}
			}
		})
	}
}

// TestEveryOpKindHasALayerType: every plan op kind a lowering emits is
// emitted by exactly one layer type, which the ONNX exporter asks.
func TestEveryOpKindHasALayerType(t *testing.T) {
	for _, k := range []accel.OpKind{accel.OpConv, accel.OpLinear, accel.OpBatchNorm, accel.OpAct, accel.OpMaxPool,
		accel.OpAvgPool, accel.OpGlobalAvgPool, accel.OpAdd, accel.OpConcat, accel.OpShuffle, accel.OpSplit, accel.OpFlatten} {
		if layerOps[k] == nil {
			t.Errorf("plan op %s: no layer type lowers to it", k)
		}
	}
	if _, err := LayerSample("dense"); err == nil {
		t.Error("LayerSample of an unknown type succeeded")
	}
}
