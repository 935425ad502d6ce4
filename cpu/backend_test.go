package cpu

import (
	"strings"
	"testing"

	"hwnas/accel"
	"hwnas/accel/accetest"
)

// The CPU backend conforms at every ISA level, with one and two threads.
func TestBackendConformance(t *testing.T) {
	eachLevel(t, func(t *testing.T, k *Kernels) {
		accetest.RunConformance(t, &Backend{kernels: k})
	})
}

func TestBackendRegistered(t *testing.T) {
	b, err := accel.Open("cpu", accel.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	d := b.Device()
	if d.Backend != "cpu" || d.Cores != 1 || d.ISA != ISA() || d.Fingerprint == "" {
		t.Errorf("device %+v", d)
	}
	if _, ok := b.(accel.KernelBackend); !ok {
		t.Error("cpu backend does not expose its kernels")
	}
	if err := b.(accel.OpSupporter).Supports(&accel.Op{Kind: "transpose"}); err == nil {
		t.Error("unknown op kind: want an error")
	}
	if _, err := accel.Open("cpu:1", accel.Options{}); err == nil || !strings.Contains(err.Error(), "cpu:0") {
		t.Errorf("cpu:1: err %v", err)
	}
	r, err := accel.Lookup("cpu")
	if err != nil {
		t.Fatal(err)
	}
	devs, err := r.Devices()
	if err != nil || len(devs) != 1 || devs[0].Backend != "cpu" {
		t.Errorf("devices %v err %v", devs, err)
	}
}
