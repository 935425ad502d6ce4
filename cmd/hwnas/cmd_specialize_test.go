package main

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"hwnas/store"
)

// TestSpecializeBadInput: bounds, runtimes, devices, databases and studies
// that cannot be specialised are usage errors naming what is wrong, and
// nothing is written.
func TestSpecializeBadInput(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s.db")
	db, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.CreateStudy(context.Background(), store.Study{Name: "plain", DeviceSpec: "cpu", DeviceName: "x", DeviceFingerprint: "x",
		Strategy: "rl", Config: []byte(`{"strategy":"rl"}`)}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	ok := specializeOptions{Study: "plain", DB: path, Device: "cpu", Runtime: store.RuntimeHwnas, MaxLatency: time.Millisecond,
		Evaluations: 10, Minutes: 1, Population: 4, Batch: 1}
	for _, tc := range []struct {
		name string
		edit func(*specializeOptions)
		want string
	}{
		{"no bound", func(o *specializeOptions) { o.MaxLatency = 0 }, "--max-latency"},
		{"runtime", func(o *specializeOptions) { o.Runtime = "ort" }, "--runtime"},
		{"negative bytes", func(o *specializeOptions) { o.MaxBytes = -1 }, "--max-bytes"},
		{"device", func(o *specializeOptions) { o.Device = "tpu" }, "tpu"},
		{"database", func(o *specializeOptions) { o.DB = filepath.Join(dir, "none.db") }, "none.db"},
		{"study", func(o *specializeOptions) { o.Study = "nope" }, "nope"},
		{"not enas", func(o *specializeOptions) {}, "not a search config"},
	} {
		o := ok
		tc.edit(&o)
		err := runSpecialize(context.Background(), io.Discard, o)
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want a usage error naming %q", tc.name, err, tc.want)
		}
	}
}
