//go:build cgo

package search

import (
	"fmt"

	"hwnas/accel"
	"hwnas/nas/onnx"
	"hwnas/store"
)

// openProgram prepares plan for batch samples per run in runtime rt:
// compiled by be for hwnas's kernels, or exported to ONNX and opened in
// onnxruntime (threads intra-op threads, 0: its default) on the CPU.
func openProgram(rt string, be accel.Backend, plan *accel.Plan, batch, threads int) (accel.Program, error) {
	switch rt {
	case "", store.RuntimeHwnas:
		p, err := be.Compile(plan, batch)
		if err != nil {
			return nil, fmt.Errorf("compiling for %s: %w", be.Name(), err)
		}
		return p, nil
	case RuntimeOnnx:
		if be.Device().Backend != "cpu" {
			return nil, fmt.Errorf("onnxruntime is measured on the CPU: its CUDA execution provider is not installed (onnxruntime-node ships the CPU library only); use --device cpu")
		}
		return onnx.NewPlanSession(plan, batch, onnx.SessionOptions{Threads: threads})
	}
	return nil, CheckRuntime(rt)
}
