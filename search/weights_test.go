package search

import (
	"context"
	"encoding/binary"
	"fmt"
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

// TestTrialModelCarriesEveryForm: a trial's blob decodes with every int8
// form and the CSR form of every layer at least half zero, whatever the
// search machine's kernels would have chosen, and so does a blob written
// when the header listed the layers the search ran sparse or float (those
// lists are ignored).
func TestTrialModelCarriesEveryForm(t *testing.T) {
	const archJSON = `{"version":1,"name":"dw","input":[3,8,8],"classes":3,"layers":[
		{"name":"conv1","type":"conv","out":8,"kernel":3,"pad":1,"act":"relu"},
		{"name":"dw1","type":"conv","out":8,"kernel":3,"pad":1,"groups":8,"act":"relu"},
		{"name":"pw","type":"conv","out":16,"kernel":1,"act":"relu"},
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
	r, err := compress.ParseRecipe("quant=int8,pw.quant=off,pw.prune=0.75")
	if err != nil {
		t.Fatal(err)
	}
	res, err := compress.Apply(context.Background(), m, r, set, set, compress.Config{NoFineTune: true, Threads: 1, CalibSamples: 32})
	if err != nil {
		t.Fatal(err)
	}
	check := func(what string, got *nas.Model) {
		t.Helper()
		for _, l := range []string{"conv1", "dw1", "fc"} {
			if got.Quant[l] == nil {
				t.Errorf("%s: layer %s lost its int8 form", what, l)
			}
		}
		if got.Quant["pw"] != nil || got.Sparse["pw"] == nil {
			t.Errorf("%s: pw (float, 75%% pruned): int8 %v, sparse %v; want sparse only", what, got.Quant["pw"] != nil, got.Sparse["pw"] != nil)
		}
	}
	check("result", res.Model)
	blob, err := EncodeTrialWeights(res)
	if err != nil {
		t.Fatal(err)
	}
	got, err := TrialModel(res.Model.Arch.JSON(), blob)
	if err != nil {
		t.Fatal(err)
	}
	check("rebuilt", got)
	// A blob of the earlier header, naming a layer the search machine ran
	// on its float kernels and one on its sparse kernels.
	hj := fmt.Sprintf(`{"arch":%s,"sparse":["pw"],"float":["dw1"]}`, res.Model.Arch.JSON())
	old := append([]byte(trialWeightsMagic), 1)
	old = binary.AppendUvarint(old, uint64(len(hj)))
	old = append(append(old, hj...), res.Encoded...)
	got, err = TrialModel(nil, old)
	if err != nil {
		t.Fatal(err)
	}
	check("earlier blob", got)
}
