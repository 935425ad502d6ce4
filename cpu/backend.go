//go:build cgo

package cpu

import (
	"fmt"

	"hwnas/accel"
)

// BackendName is the registry name of the CPU backend.
const BackendName = "cpu"

func init() {
	accel.Register(accel.Registration{
		Name:    BackendName,
		Open:    Open,
		Devices: func() ([]accel.Device, error) { return []accel.Device{accel.DetectCPU(0, ISA())}, nil },
	})
}

// Backend runs plans on this machine's CPU with the package's C kernels:
// Compile builds a program (program.go) over a Kernels with the backend's
// thread count, and the same Kernels serve training (accel.KernelBackend).
type Backend struct {
	kernels *Kernels
}

var (
	_ accel.Backend       = (*Backend)(nil)
	_ accel.KernelBackend = (*Backend)(nil)
	_ accel.OpSupporter   = (*Backend)(nil)
)

// Open opens the CPU backend with opt.Threads threads per kernel call (0:
// all cores). There is one CPU device: opt.Index must be 0.
func Open(opt accel.Options) (accel.Backend, error) {
	if opt.Index != 0 {
		return nil, fmt.Errorf("cpu: device index %d does not exist (there is one CPU device, cpu:0)", opt.Index)
	}
	if opt.Threads < 0 {
		return nil, fmt.Errorf("cpu: %d threads; want 0 (all cores) or more", opt.Threads)
	}
	return &Backend{kernels: NewKernels(opt.Threads)}, nil
}

// Name returns "cpu".
func (b *Backend) Name() string { return BackendName }

// Device describes the CPU with the backend's thread count and the kernel
// ISA level in use now.
func (b *Backend) Device() accel.Device { return accel.DetectCPU(b.kernels.threads(), ISA()) }

// Kernels returns the backend's host kernels.
func (b *Backend) Kernels() accel.Kernels { return b.kernels }

// Compile prepares p for batch samples per Run on this CPU: a program
// (program.go) that runs feature maps in the blocked layout of the kernel
// level current now, with weights repacked for it, and int8, sparse and
// linear layers on the plain kernels.
func (b *Backend) Compile(p *accel.Plan, batch int) (accel.Program, error) {
	return compileProgram(b.kernels, p, batch)
}

// Supports accepts every op kind of accel (all run on the host kernels).
func (b *Backend) Supports(op *accel.Op) error {
	switch op.Kind {
	case accel.OpConv, accel.OpLinear, accel.OpBatchNorm, accel.OpAct, accel.OpMaxPool, accel.OpAvgPool,
		accel.OpGlobalAvgPool, accel.OpAdd, accel.OpConcat, accel.OpShuffle, accel.OpSplit, accel.OpFlatten:
		return nil
	}
	return fmt.Errorf("cpu: op kind %q is not supported", op.Kind)
}

// Close releases nothing: programs own their buffers.
func (b *Backend) Close() error { return nil }
