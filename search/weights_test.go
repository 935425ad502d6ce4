package search

import (
	"encoding/binary"
	"strings"
	"testing"

	"hwnas/nas"
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
