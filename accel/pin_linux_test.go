package accel

import (
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// TestPinThread: the thread is bound to one core of its allowed set for
// the measurement and gets its whole set back after.
func TestPinThread(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var before, during, after unix.CPUSet
	if err := unix.SchedGetaffinity(0, &before); err != nil {
		t.Skip("no affinity on this system:", err)
	}
	core, unpin := PinThread()
	if err := unix.SchedGetaffinity(0, &during); err != nil {
		t.Fatal(err)
	}
	unpin()
	if err := unix.SchedGetaffinity(0, &after); err != nil {
		t.Fatal(err)
	}
	if core < 0 || !before.IsSet(core) || during.Count() != 1 || !during.IsSet(core) {
		t.Fatalf("pinned to %d, affinity during %v of %v", core, during, before)
	}
	if after != before {
		t.Fatalf("affinity after %v, want %v", after, before)
	}
}
