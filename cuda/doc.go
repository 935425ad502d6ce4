// Package cuda is the accel backend for NVIDIA GPUs, built with the tag
// `cuda` (`make cuda`): kernels in kernels.cu, compiled by nvcc into one
// fatbin embedded in the binary, driven through the driver API with
// gorgonia.org/cu on one OS-locked goroutine; device facts and power from
// NVML (github.com/NVIDIA/go-nvml).
//
// Planning (launch.go: which kernel, grid and arguments for each op;
// arena.go: which activation tensors share a buffer; pool.go: the device
// allocator's reuse policy) is plain Go and builds and is tested without
// the tag. Without the tag the package registers nothing and imports
// nothing from CUDA: the CPU binary reaches a GPU through accel/remote,
// which starts the CUDA-enabled binary as a worker.
package cuda
