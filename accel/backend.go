package accel

import "time"

// Program is a Plan compiled for one backend and batch size.
type Program interface {
	// Batch is the number of samples Run processes.
	Batch() int
	// InputSize and OutputSize are the per-sample element counts.
	InputSize() int
	OutputSize() int
	// Run reads Batch()·InputSize() floats from in and writes
	// Batch()·OutputSize() floats to out. It does not write in; in and
	// out may be the same slice.
	Run(in, out []float32) error
	Close() error
}

// TimedProgram is implemented by programs that time themselves on the device
// (CUDA events, say); MeasureProgram prefers it to the host clock.
type TimedProgram interface {
	RunTimed(in, out []float32) (time.Duration, error)
}

// OpTimedProgram is implemented by programs that can time each op of their
// plan, for the per-op latency table. perOp has one entry per plan op.
type OpTimedProgram interface {
	RunOpTimed(in, out []float32, perOp []time.Duration) error
}

// Backend runs plans on one device.
type Backend interface {
	Name() string
	Device() Device
	// Compile prepares p for batch samples per Run.
	Compile(p *Plan, batch int) (Program, error)
	Close() error
}

// KernelBackend is implemented by backends whose host kernels training can
// use directly (the CPU backend).
type KernelBackend interface {
	Kernels() Kernels
}

// OpSupporter is implemented by backends that can tell before compiling
// whether they run an op; nil means supported.
type OpSupporter interface {
	Supports(op *Op) error
}

// Options configure a backend when it is opened.
type Options struct {
	// Threads bounds the host threads kernels use; 0 means all cores.
	Threads int
	// Index selects a device among several of the same backend ("cuda:1").
	Index int
}
