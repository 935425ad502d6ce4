//go:build !cgo

package cpu

import (
	"errors"

	"hwnas/accel"
)

// ErrNoCgo is returned by every entry point of a build without cgo: the
// kernels are C.
var ErrNoCgo = errors.New("the cpu backend's kernels are C: build hwnas with CGO_ENABLED=1 and a C compiler (gcc)")

// BackendName is the registry name of the CPU backend.
const BackendName = "cpu"

func init() {
	accel.Register(accel.Registration{
		Name:    BackendName,
		Open:    func(accel.Options) (accel.Backend, error) { return nil, ErrNoCgo },
		Devices: func() ([]accel.Device, error) { return nil, ErrNoCgo },
	})
}

// ISA is the kernel level in use; without cgo there are no kernels.
func ISA() string { return "none (built without cgo)" }
