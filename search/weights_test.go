package search

import (
	"context"
	"encoding/binary"
	"math"
	"strings"
	"testing"

	"hwnas/nas"
	"hwnas/nas/compress"
	"hwnas/nas/data"
)

// TestTrialModelRejectsBadBlobs: truncated or corrupt weights blobs are
// errors, never panics; a plain nas weights file still loads.
func TestTrialModelRejectsBadBlobs(t *testing.T) {
	a, err := nas.BuiltinArch("lenet300")
	if err != nil {
		t.Fatal(err)
	}
	m, err := nas.NewModel(a, 1)
	if err != nil {
		t.Fatal(err)
	}
	plain := nas.EncodeWeights(m)
	got, err := TrialModel(a.JSON(), plain)
	if err != nil || got.NumParams() != m.NumParams() {
		t.Fatalf("plain weights: %v", err)
	}
	for _, tc := range []struct {
		name string
		blob string
		want string
	}{
		{"magic only", "HWTW", "version"},
		{"version 2", "HWTW\x02", "version"},
		{"no header length", "HWTW\x01", "truncated"},
		{"short header", "HWTW\x01\x10{}", "truncated"},
		{"bad header", "HWTW\x01\x02{]", "header"},
		{"no arch", "HWTW\x01\x02{}", "header"},
	} {
		if _, err := TrialModel(a.JSON(), []byte(tc.blob)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
	// A valid header followed by a payload that is not a compressed model.
	hdr := []byte(`{"arch":` + string(a.JSON()) + `}`)
	blob := binary.AppendUvarint([]byte("HWTW\x01"), uint64(len(hdr)))
	blob = append(append(blob, hdr...), "junk"...)
	if _, err := TrialModel(a.JSON(), blob); err == nil || !strings.Contains(err.Error(), "compressed") {
		t.Errorf("junk payload: %v", err)
	}
	if _, err := TrialModel(a.JSON(), plain[:len(plain)/2]); err == nil {
		t.Error("truncated plain weights accepted")
	}
}

// TestTrialModelKeepsFloatChoice: the quantized conv layers that
// compress.Apply moved to the float kernels (Result.Float) come back from
// the stored blob without their int8 form, so an exported or re-measured
// trial runs exactly as it was measured.
func TestTrialModelKeepsFloatChoice(t *testing.T) {
	const archJSON = `{"version":1,"name":"dw","input":[3,8,8],"classes":3,"layers":[
		{"name":"conv1","type":"conv","out":8,"kernel":3,"pad":1,"act":"relu"},
		{"name":"dw1","type":"conv","out":8,"kernel":3,"pad":1,"groups":8,"act":"relu"},
		{"name":"gap","type":"gap"},
		{"name":"fc","type":"linear","out":3}]}`
	a, err := nas.ParseArch([]byte(archJSON))
	if err != nil {
		t.Fatal(err)
	}
	m, err := nas.NewModel(a, 3)
	if err != nil {
		t.Fatal(err)
	}
	set := &data.Set{Name: "synth", N: 64, C: 3, H: 8, W: 8, Classes: 3, Images: make([]float32, 64*192), Labels: make([]int32, 64)}
	for i := range set.Images {
		set.Images[i] = float32(math.Sin(float64(i))*0.5 + 0.5)
	}
	for i := range set.Labels {
		set.Labels[i] = int32(i % 3)
	}
	r, err := compress.ParseRecipe("quant=int8")
	if err != nil {
		t.Fatal(err)
	}
	res, err := compress.Apply(context.Background(), m, r, set, set, compress.Config{NoFineTune: true, Threads: 1, CalibSamples: 32, KeepInt8: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Model.Quant["dw1"] == nil || res.Model.Quant["conv1"] == nil {
		t.Fatalf("quant=int8 left no int8 form on the convs: %v", res.Model.Quant)
	}
	// What chooseFloat decides when the float kernels win for dw1.
	delete(res.Model.Quant, "dw1")
	res.Float = map[string]bool{"dw1": true}
	blob, err := EncodeTrialWeights(res)
	if err != nil {
		t.Fatal(err)
	}
	got, err := TrialModel(res.Model.Arch.JSON(), blob)
	if err != nil {
		t.Fatal(err)
	}
	if got.Quant["dw1"] != nil || got.Quant["conv1"] == nil || got.Quant["fc"] == nil {
		t.Errorf("rebuilt Quant: dw1 %v conv1 %v fc %v; want only conv1 and fc int8",
			got.Quant["dw1"] != nil, got.Quant["conv1"] != nil, got.Quant["fc"] != nil)
	}
	// A blob naming a float layer that is not quantized is refused.
	res.Float = map[string]bool{"gap": true}
	bad, err := EncodeTrialWeights(res)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := TrialModel(nil, bad); err == nil || !strings.Contains(err.Error(), `float layer "gap"`) {
		t.Errorf("float layer that is not quantized: %v", err)
	}
}
