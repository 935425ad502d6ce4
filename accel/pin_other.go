//go:build !linux

package accel

import "runtime"

// PinThread without Linux's sched_setaffinity: the goroutine is locked to
// its OS thread, which is not bound to a core (−1).
func PinThread() (core int, unpin func()) {
	runtime.LockOSThread()
	return -1, runtime.UnlockOSThread
}
