package search

import (
	"testing"

	"golang.org/x/sys/unix"
)

// TestStartPinned: a process started on slot cores has exactly those
// cores, and this process keeps its own.
func TestStartPinned(t *testing.T) {
	var before unix.CPUSet
	unix.SchedGetaffinity(0, &before)
	if before.Count() < 2 {
		t.Skip("one core: nothing to pin apart") // not CI's 2-core machine
	}
	cpus := SlotCPUs(1, 2, 1)
	if len(cpus) != 1 {
		t.Fatalf("slot 1 of 2 got cores %v", cpus)
	}
	if got := SlotCPUs(0, 3, 1); before.Count() < 3 && got != nil {
		t.Fatalf("3 slots on %d cores pinned to %v", before.Count(), got)
	}
	p := startSleeper(t, cpus)
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(p.Process.Pid, &set); err != nil {
		t.Fatal(err)
	}
	if set.Count() != 1 || !set.IsSet(cpus[0]) {
		t.Fatalf("child affinity %v, want core %d", set, cpus[0])
	}
	var after unix.CPUSet
	unix.SchedGetaffinity(0, &after)
	if after != before {
		t.Fatalf("this process's affinity changed: %v → %v", before, after)
	}
}
