package search

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"

	"hwnas/nas"
	"hwnas/nas/compress"
)

// trialWeightsMagic starts the weights blob a search stores per trial:
//
//	"HWTW" magic, byte version 1
//	uvarint length, then that many bytes of JSON header: the compressed
//	        architecture (channel pruning and low-rank change it)
//	the compressed model in compress's format (compress.Encode)
//
// The compressed bytes a trial reports are those of the last part alone.
// Blobs written before kernels were chosen at compile time also list in
// the header the layers the search machine ran on its sparse kernels
// ("sparse") and the int8 layers it ran on its float kernels ("float"):
// both are ignored, as the model decodes with every int8 and sparse form
// it has and each device's backend decides how to run them.
const trialWeightsMagic = "HWTW"

type trialWeightsHeader struct {
	Arch *nas.Arch `json:"arch"`
}

// EncodeTrialWeights packs a compression result for the store.
func EncodeTrialWeights(r *compress.Result) ([]byte, error) {
	hj, err := json.Marshal(trialWeightsHeader{Arch: r.Model.Arch})
	if err != nil {
		return nil, err
	}
	out := append([]byte(trialWeightsMagic), 1)
	out = binary.AppendUvarint(out, uint64(len(hj)))
	out = append(out, hj...)
	return append(out, r.Encoded...), nil
}

// TrialModel rebuilds a finished trial's trained, compressed model from
// the weights blob the search stored (no retraining): the compressed
// architecture and the weights as stored, with their int8 and sparse
// forms (compress.Decode), ready for nas.Lower. A blob in the plain nas
// weights format is read into archJSON's architecture.
func TrialModel(archJSON, blob []byte) (*nas.Model, error) {
	if !bytes.HasPrefix(blob, []byte(trialWeightsMagic)) {
		a, err := nas.ParseArch(archJSON)
		if err != nil {
			return nil, fmt.Errorf("stored architecture: %w", err)
		}
		m, err := nas.NewModel(a, 0)
		if err != nil {
			return nil, err
		}
		return m, nas.DecodeWeightsInto(blob, m)
	}
	b := blob[len(trialWeightsMagic):]
	if len(b) < 1 || b[0] != 1 {
		return nil, errors.New("trial weights: unknown version")
	}
	n, k := binary.Uvarint(b[1:])
	if k <= 0 || uint64(len(b)-1-k) < n {
		return nil, errors.New("trial weights: truncated header")
	}
	var h trialWeightsHeader
	if err := json.Unmarshal(b[1+k:1+k+int(n)], &h); err != nil || h.Arch == nil {
		return nil, fmt.Errorf("trial weights: header: %v", err)
	}
	a, err := nas.ParseArch(h.Arch.JSON())
	if err != nil {
		return nil, fmt.Errorf("trial weights: architecture: %w", err)
	}
	return compress.Decode(a, b[1+k+int(n):])
}

// CompressRecipe turns per-layer choices into a compression recipe
// (Huffman coding on): Prune is unstructured magnitude pruning, Rank < 1
// low-rank factorisation, Bits < 32 quantization (int8 kernels), and
// Clusters > 0 k-means sharing with log2(Clusters)-bit indices when the
// layer is not quantized (sharing and quantization are alternatives in
// compress.Apply; quantization wins). distill, when not nil, makes every
// fine-tuning step distil from that teacher.
func CompressRecipe(layers []LayerRecipe, distill *compress.DistillSpec) *compress.Recipe {
	r := &compress.Recipe{Huffman: true, Distill: distill}
	for _, l := range layers {
		c := compress.LayerChoice{Prune: l.Prune}
		if l.Rank > 0 && l.Rank < 1 {
			c.Rank = l.Rank
		}
		if l.Bits > 0 && l.Bits < 32 {
			c.Bits = l.Bits
		} else if l.Clusters > 1 {
			c.Share = bits.Len(uint(l.Clusters - 1))
		}
		r.SetLayer(l.Layer, c)
	}
	return r
}
