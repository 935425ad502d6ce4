package search

import (
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// The Linux side of worker processes: a parent-death signal, the
// address-space limit set from outside (prlimit), and CPU pinning. Other
// systems get proc_other.go.

// workerProcAttr puts a worker in its own process group (a timeout then
// ends whatever it started too) and kills it when the coordinator dies,
// even by SIGKILL (Pdeathsig), so no worker outlives a search.
func workerProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// limitAddressSpace sets RLIMIT_AS of the running process pid to bytes.
func limitAddressSpace(pid int, bytes int64) error {
	rl := unix.Rlimit{Cur: uint64(bytes), Max: uint64(bytes)}
	return unix.Prlimit(pid, unix.RLIMIT_AS, &rl, nil)
}

// SlotCPUs returns the cores worker slot i of n (each running threads
// threads) is pinned to: distinct cores of this process's allowed set
// when n·threads of them exist, else nil (no pinning).
func SlotCPUs(i, n, threads int) []int {
	if n <= 1 || threads <= 0 {
		return nil
	}
	var set unix.CPUSet
	if unix.SchedGetaffinity(0, &set) != nil {
		return nil
	}
	var cpus []int
	for c := 0; c < len(set)*64; c++ {
		if set.IsSet(c) {
			cpus = append(cpus, c)
		}
	}
	if n*threads > len(cpus) {
		return nil
	}
	return cpus[i*threads : (i+1)*threads]
}

// startPinned starts cmd with its CPU affinity set to cpus (nil: as this
// process). The mask is set on the calling OS thread around the fork, so
// the child and every thread it ever makes inherit it.
func startPinned(start func() error, cpus []int) error {
	if len(cpus) == 0 {
		return start()
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var old, set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		return start()
	}
	for _, c := range cpus {
		set.Set(c)
	}
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		return start()
	}
	defer unix.SchedSetaffinity(0, &old)
	return start()
}
