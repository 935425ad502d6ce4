package nas_test

import (
	"fmt"

	"hwnas/nas"
)

// A small MobileNetV2-style network for MNIST built from compact blocks.
func ExampleBuilder() {
	b := nas.NewBuilder("tiny-mbv2", []int{1, 28, 28}, 10)
	b.ConvBN(16, 3, 2, 1, "relu6")           // 16×14×14
	b.InvertedResidual(16, 4, 3, 1, "relu6") // residual add: same shape
	b.InvertedResidual(24, 4, 3, 2, "relu6") // 24×7×7
	b.GAP()
	b.Linear(10, "")
	a, err := b.Build()
	if err != nil {
		fmt.Println(err)
		return
	}
	g, _ := nas.NewGraph(a)
	fmt.Println(len(a.Layers), "layers,", g.Params(), "parameters,", g.MACs(), "MACs")
	// Output: 17 layers, 6778 parameters, 846960 MACs
}
