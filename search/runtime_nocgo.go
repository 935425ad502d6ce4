//go:build !cgo

package search

import (
	"errors"

	"hwnas/accel"
	"hwnas/store"
)

// openProgram without cgo: only hwnas's kernels (onnxruntime is a C
// library).
func openProgram(rt string, be accel.Backend, plan *accel.Plan, batch, threads int) (accel.Program, error) {
	if rt == "" || rt == store.RuntimeHwnas {
		return be.Compile(plan, batch)
	}
	return nil, errors.New("onnxruntime needs a cgo build")
}
