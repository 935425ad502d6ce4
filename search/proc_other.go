//go:build !linux

package search

import (
	"errors"
	"syscall"
)

// Worker processes on systems other than Linux (see proc_linux.go): a
// process group only (no parent-death signal: a coordinator killed with
// -9 leaves its running worker to finish its trial), no memory limit, no
// pinning.

func workerProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

func limitAddressSpace(pid int, bytes int64) error {
	return errors.New("a worker's memory limit needs Linux (prlimit): set the limit to 0 here")
}

// SlotCPUs returns nil: workers are not pinned here.
func SlotCPUs(i, n, threads int) []int { return nil }

func startPinned(start func() error, cpus []int) error { return start() }
