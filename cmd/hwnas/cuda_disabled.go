//go:build !cuda

package main

import (
	"hwnas/accel"
	"hwnas/accel/remote"
)

// Without the cuda tag the "cuda" device is served by a worker: the
// CUDA-enabled binary (hwnas-cuda, from `make cuda`) started as a
// subprocess; when there is none, or it cannot start, its devices say why.
func init() { accel.Register(remote.Registration("cuda", remote.CUDAConfig)) }

// cudaBuild says whether this binary was built with the cuda tag.
const cudaBuild = "not built in (make cuda)"
