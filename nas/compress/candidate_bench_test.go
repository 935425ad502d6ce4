package compress_test

import (
	"context"
	"math/rand"
	"testing"

	"hwnas/accel"
	_ "hwnas/cpu" // the "cpu" backend
	"hwnas/nas"
	"hwnas/nas/compress"
	"hwnas/nas/data"
	"hwnas/search"
)

// BenchmarkCandidateInt8 times search candidates (search.BuildCandidate:
// the compact blocks at 8–32 channels on 1×28×28 inputs) at batch 1 on
// one thread, compressed with no recipe ("fp32") and with quant=int8 on
// every layer ("int8", the plan as compress.Apply leaves it: convs where
// int8 does not pay run in float). ns/op is one forward pass; the int8
// form should not be slower than the fp32 one.
func BenchmarkCandidateInt8(b *testing.B) {
	r := rand.New(rand.NewSource(1))
	set := &data.Set{Name: "noise", N: 128, C: 1, H: 28, W: 28, Classes: 10, Images: make([]float32, 128*784), Labels: make([]int32, 128)}
	for i := range set.Images {
		set.Images[i] = r.Float32()
	}
	for i := range set.Labels {
		set.Labels[i] = int32(i % 10)
	}
	k1, closeK, err := nas.DefaultKernels(1)
	if err != nil {
		b.Fatal(err)
	}
	defer closeK()
	st := func(block string, w, e int) search.StageConfig {
		return search.StageConfig{Block: block, Width: w, Kernel: 3, Expansion: e, Repeats: 1, Stride: 2}
	}
	for _, c := range []struct {
		name   string
		stages []search.StageConfig
	}{
		{"dwsep-8-16-32", []search.StageConfig{st("dwsep", 8, 1), st("dwsep", 16, 1), st("dwsep", 32, 1)}},
		{"invres-16-24", []search.StageConfig{st("conv", 16, 1), st("invres", 24, 3)}},
		{"fire-16-32", []search.StageConfig{st("conv", 16, 1), st("fire", 32, 1)}},
		{"shufflev2-16-32", []search.StageConfig{st("conv", 16, 1), st("shufflev2", 32, 1)}},
		{"conv-16-32", []search.StageConfig{st("conv", 16, 1), st("conv", 32, 1)}},
	} {
		cd, err := search.BuildCandidate(search.Config{Input: []int{1, 28, 28}, Classes: 10, Stages: c.stages})
		if err != nil {
			b.Fatalf("%s: %v", c.name, err)
		}
		m, err := nas.NewModel(cd.Arch, 1)
		if err != nil {
			b.Fatal(err)
		}
		for _, bits := range []int{0, 8} {
			layers := make([]search.LayerRecipe, len(cd.Layers))
			for i, l := range cd.Layers {
				layers[i] = search.LayerRecipe{Layer: l.Layer, Bits: bits}
			}
			res, err := compress.Apply(context.Background(), m, search.CompressRecipe(layers, nil), set, set,
				compress.Config{NoFineTune: true, Threads: 1, CalibSamples: 128})
			if err != nil {
				b.Fatalf("%s: %v", c.name, err)
			}
			plan, err := nas.Lower(res.Model)
			if err != nil {
				b.Fatal(err)
			}
			prog, err := accel.NewHostProgram(k1, plan, 1)
			if err != nil {
				b.Fatal(err)
			}
			y := make([]float32, prog.OutputSize())
			name := map[int]string{0: "fp32", 8: "int8"}[bits]
			b.Run(c.name+"/"+name, func(b *testing.B) {
				for b.Loop() {
					if err := prog.Run(set.Images[:784], y); err != nil {
						b.Fatal(err)
					}
				}
				int8Ops := 0
				for _, op := range plan.Ops {
					if op.Quant != nil {
						int8Ops++
					}
				}
				b.ReportMetric(float64(int8Ops), "int8-ops")
			})
			prog.Close()
		}
	}
}
