// Package accel is the hardware contract of hwnas.
//
// It describes devices (Device), the host kernel interface that training and
// the CPU backend implement (Kernels), the device-neutral inference plan that
// every backend compiles (Plan, Program), the registry of backends by name
// (Register, Open) and the latency harness every measurement goes through
// (MeasureLatency).
//
// accel knows nothing of architectures: package nas lowers a model into a
// Plan of kernel calls, and backends (packages cpu and cuda) know nothing of
// nas.
package accel
