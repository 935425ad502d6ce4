//go:build !cuda

package main

// cudaBuild says whether this binary was built with the cuda tag.
const cudaBuild = "not built in (make cuda)"
