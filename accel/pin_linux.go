package accel

import (
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// PinThread locks the calling goroutine to its OS thread and binds that
// thread to the core it is running on, so that a measurement is not
// moved between cores (cold caches, another core's clock) halfway
// through. It returns the core (−1 when the affinity could not be set;
// the goroutine is still locked) and the function that restores the
// thread's affinity and unlocks it. Kernel helper threads of a
// multi-threaded backend are not pinned.
func PinThread() (core int, unpin func()) {
	runtime.LockOSThread()
	var old unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		return -1, runtime.UnlockOSThread
	}
	var cpu uint32
	if _, _, e := unix.RawSyscall(unix.SYS_GETCPU, uintptr(unsafe.Pointer(&cpu)), 0, 0); e != 0 || !old.IsSet(int(cpu)) {
		return -1, runtime.UnlockOSThread
	}
	var set unix.CPUSet
	set.Set(int(cpu))
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		return -1, runtime.UnlockOSThread
	}
	return int(cpu), func() {
		unix.SchedSetaffinity(0, &old)
		runtime.UnlockOSThread()
	}
}
