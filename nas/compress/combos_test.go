package compress

import (
	"context"
	"math/rand"
	"strings"
	"testing"

	"hwnas/nas"
	"hwnas/nas/data"
)

// synthSet returns n random 3×8×8 images with 3 classes, labelled by which
// third of the channels is brightest (learnable, so fine-tuning moves the
// weights as it does on real data).
func synthSet(n int, seed int64) *data.Set {
	r := rand.New(rand.NewSource(seed))
	s := &data.Set{Name: "synth", N: n, C: 3, H: 8, W: 8, Classes: 3, Images: make([]float32, n*3*64), Labels: make([]int32, n)}
	for i := 0; i < n; i++ {
		lab := r.Intn(3)
		s.Labels[i] = int32(lab)
		for c := 0; c < 3; c++ {
			for k := 0; k < 64; k++ {
				v := r.Float32() * 0.5
				if c == lab {
					v += 0.5
				}
				s.Images[i*192+c*64+k] = v
			}
		}
	}
	return s
}

// TestApplyEncodeEveryCombination runs Apply (which ends in Encode and
// Decode) for every combination of unstructured pruning, low-rank,
// sharing and quantization on a small conv/depthwise/linear model: the
// pipeline must never produce a model its own Encode refuses, the byte
// count must be the encoding's length, and the bytes must decode to the
// result's weights exactly.
func TestApplyEncodeEveryCombination(t *testing.T) {
	train, val := synthSet(256, 1), synthSet(64, 2)
	base := modelFromJSON(t, chainArch, 4)
	prunes := []string{"", "prune=0.7"}
	ranks := []string{"", "conv1.lowrank=0.5,conv2.lowrank=0.5,fc1.lowrank=0.5"}
	values := []string{"", "share=1bit", "share=2bit", "share=4bit", "quant=int8", "quant=int4", "quant=int2", "quant=binary", "quant=fp16"}
	for _, huffman := range []bool{false, true} {
		for _, p := range prunes {
			for _, lr := range ranks {
				for _, v := range values {
					var items []string
					for _, s := range []string{p, lr, v} {
						if s != "" {
							items = append(items, s)
						}
					}
					if huffman {
						items = append(items, "huffman")
					}
					if len(items) == 0 {
						continue
					}
					spec := join(items)
					t.Run(spec, func(t *testing.T) {
						r, err := ParseRecipe(spec)
						if err != nil {
							t.Fatal(err)
						}
						res, err := Apply(context.Background(), base, r, train, val,
							Config{PruneRounds: 2, Threads: 1, CalibSamples: 64, Train: nas.TrainConfig{BatchSize: 32, Seed: 5}})
						if err != nil {
							t.Fatalf("Apply: %v", err)
						}
						if res.Bytes != len(res.Encoded) {
							t.Errorf("Bytes %d, encoded %d", res.Bytes, len(res.Encoded))
						}
						d, err := Decode(res.Arch, res.Encoded)
						if err != nil {
							t.Fatalf("Decode: %v", err)
						}
						for _, q := range res.Model.Tensors() {
							dp := d.Param(q.Name)
							for i := range q.Data {
								if q.Data[i] != dp.Data[i] {
									t.Fatalf("%s[%d] = %g decoded, %g in the result", q.Name, i, dp.Data[i], q.Data[i])
								}
							}
						}
						again, err := Encode(d, res.Options)
						if err != nil {
							t.Fatalf("re-encoding the decoded result: %v", err)
						}
						if string(again) != string(res.Encoded) {
							t.Errorf("re-encoding the decoded result gives other bytes (%d, first %d)", len(again), res.Bytes)
						}
						// The result carries what its bytes say: every int8
						// form, and the CSR form of every layer at least half
						// zero, whatever runs faster here.
						for _, l := range res.Layers {
							w := d.Param(l.Layer + ".w")
							if (res.Model.Quant[l.Layer] != nil) != (d.Quant[l.Layer] != nil) || (d.Quant[l.Layer] != nil) != (l.Format != "fp32" && l.Format != "fp16" && !strings.HasPrefix(l.Format, "shared")) {
								t.Errorf("layer %s (%s): int8 form in the result %v, decoded %v", l.Layer, l.Format, res.Model.Quant[l.Layer] != nil, d.Quant[l.Layer] != nil)
							}
							if sparse := Sparsity(w.Data) >= SparseMin; (res.Model.Sparse[l.Layer] != nil) != sparse || (d.Sparse[l.Layer] != nil) != sparse {
								t.Errorf("layer %s at sparsity %.2f: sparse form in the result %v, decoded %v", l.Layer, Sparsity(w.Data), res.Model.Sparse[l.Layer] != nil, d.Sparse[l.Layer] != nil)
							}
						}
					})
				}
			}
		}
	}
}

func join(items []string) string {
	s := items[0]
	for _, it := range items[1:] {
		s += "," + it
	}
	return s
}

// TestEncodeSharedPrunedFullCodebook encodes a pruned layer whose non-zero
// weights use all 2^b codebook entries: the zero is not a codebook value
// (Deep Compression's layout), so the tensor is stored sparse and decodes
// exactly; a tensor with more non-zero values than the codebook is refused.
func TestEncodeSharedPrunedFullCodebook(t *testing.T) {
	for _, bits := range []int{1, 2, 4} {
		for _, huffman := range []bool{false, true} {
			m := modelFromJSON(t, chainArch, 3)
			w := m.Param("fc1.w")
			for i := range w.Data {
				w.Data[i] = 0
				if i%3 != 0 {
					w.Data[i] = float32(1+i%(1<<bits)) / 8 // 2^bits distinct non-zeros
				}
			}
			opt := EncodeOptions{Formats: map[string]TensorFormat{"fc1.w": {Share: bits}}, Huffman: huffman}
			b, err := Encode(m, opt)
			if err != nil {
				t.Fatalf("%d bits, huffman %v: %v", bits, huffman, err)
			}
			d, err := Decode(m.Arch, b)
			if err != nil {
				t.Fatal(err)
			}
			for i, v := range w.Data {
				if d.Param("fc1.w").Data[i] != v {
					t.Fatalf("%d bits: fc1.w[%d] = %g decoded, want %g", bits, i, d.Param("fc1.w").Data[i], v)
				}
			}
			w.Data[1] = 0.01 // one value more than the codebook holds
			if _, err := Encode(m, opt); err == nil || !strings.Contains(err.Error(), "do not fit") {
				t.Errorf("%d bits with %d non-zero values: %v", bits, 1<<bits+1, err)
			}
		}
	}
}
