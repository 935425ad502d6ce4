//go:build cuda

package main

// The cuda tag links the CUDA backend itself (gorgonia.org/cu: this binary
// exits at start on a machine without an NVIDIA driver, so it is built
// separately as hwnas-cuda and reached from hwnas through accel/remote).
import _ "hwnas/cuda"

// cudaBuild says whether this binary was built with the cuda tag.
const cudaBuild = "built in (driver API, embedded PTX/SASS)"
