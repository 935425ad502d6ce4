package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestRunCudaWorker(t *testing.T) {
	// With no requests the worker says hello and ends.
	var out bytes.Buffer
	if err := runCudaWorker(strings.NewReader(""), &out, cudaWorkerOptions{Backend: "cpu"}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(out.Bytes(), []byte("hwnas-worker/1")) {
		t.Errorf("no protocol hello in %q", out.Bytes())
	}
	// A truncated request is a stream error.
	out.Reset()
	if err := runCudaWorker(strings.NewReader("\x00\x00\x01\x00abc"), &out, cudaWorkerOptions{Backend: "cpu"}); err == nil {
		t.Error("truncated request accepted")
	}
	var ue usageError
	if err := runCudaWorker(strings.NewReader(""), &out, cudaWorkerOptions{Backend: "tpu"}); !errors.As(err, &ue) || !strings.Contains(err.Error(), `unknown device "tpu"`) {
		t.Errorf("unknown backend: %v, want a usage error", err)
	}
}
