//go:build !cuda

package main

// Without the cuda tag the "cuda" device is served by a worker: the
// CUDA-enabled binary (hwnas-cuda, from `make cuda`) started as a
// subprocess. accel/remote registers it and says why it is unavailable.
import _ "hwnas/accel/remote"

// cudaBuild says whether this binary was built with the cuda tag.
const cudaBuild = "not built in (make cuda)"
