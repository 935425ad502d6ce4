//go:build !cuda

package cuda

// Built reports whether this binary contains the CUDA backend. Without the
// tag it does not: the "cuda" device is served by accel/remote, which
// starts the CUDA-enabled binary (hwnas-cuda) as a worker.
const Built = false
