package accel

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/cpu"
)

// Device describes one piece of hardware that runs plans. Fields that do not
// apply to a kind of device are left zero.
type Device struct {
	Backend string `json:"backend"` // registry name: "cpu", "cuda"
	Index   int    `json:"index"`
	// Name is what users type and read, e.g. "AMD EPYC 9B14" or
	// "NVIDIA H100 80GB HBM3".
	Name     string   `json:"name"`
	Cores    int      `json:"cores,omitempty"`
	Features []string `json:"features,omitempty"` // ISA features found at run time
	ISA      string   `json:"isa,omitempty"`      // kernel level in use: avx512, avx2, generic

	MemoryBytes       int64  `json:"memory_bytes,omitempty"`
	ComputeCapability string `json:"compute_capability,omitempty"`
	Driver            string `json:"driver,omitempty"`
	UUID              string `json:"uuid,omitempty"`
	SMClockMHz        int    `json:"sm_clock_mhz,omitempty"`

	// Fingerprint is a short stable hash of what determines performance:
	// the hardware (name, features, compute capability) and the execution
	// configuration that changes latency on it (threads in Cores, the
	// kernel level in ISA). Results measured under the same fingerprint
	// group together; queries also match by Name across configurations.
	Fingerprint string `json:"fingerprint"`
}

// ComputeFingerprint hashes the backend, name, cores, features, kernel ISA
// level and compute capability into 12 hex digits.
func (d Device) ComputeFingerprint() string {
	f := append([]string(nil), d.Features...)
	sort.Strings(f)
	h := sha256.Sum256([]byte(strings.Join([]string{
		d.Backend, d.Name, strings.Join(f, ","), d.ComputeCapability, strconv.Itoa(d.Cores), d.ISA,
	}, "|")))
	return hex.EncodeToString(h[:6])
}

// CPUFeatures lists the x86 ISA extensions relevant to the kernels that
// this CPU has, found at run time.
func CPUFeatures() []string {
	var f []string
	add := func(ok bool, name string) {
		if ok {
			f = append(f, name)
		}
	}
	add(cpu.X86.HasSSE41, "sse4.1")
	add(cpu.X86.HasAVX, "avx")
	add(cpu.X86.HasAVX2, "avx2")
	add(cpu.X86.HasFMA, "fma")
	add(cpu.X86.HasAVX512F, "avx512f")
	add(cpu.X86.HasAVX512BW, "avx512bw")
	add(cpu.X86.HasAVX512VL, "avx512vl")
	add(cpu.X86.HasAVX512DQ, "avx512dq")
	add(cpu.X86.HasAVX512VNNI, "avx512vnni")
	add(cpu.X86.HasAVX512BF16, "avx512bf16")
	add(cpu.X86.HasAVXVNNI, "avxvnni")
	add(cpu.ARM64.HasASIMD, "asimd")
	return f
}

// CPUModel returns the processor's model name (from /proc/cpuinfo on Linux),
// or the architecture when it cannot be read.
func CPUModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err == nil {
		defer f.Close()
		s := bufio.NewScanner(f)
		for s.Scan() {
			k, v, ok := strings.Cut(s.Text(), ":")
			if ok && strings.TrimSpace(k) == "model name" {
				return strings.Join(strings.Fields(v), " ")
			}
		}
	}
	return runtime.GOARCH + " CPU"
}

// DetectCPU describes this machine's CPU with the given thread count (0: all
// cores) and kernel ISA level.
func DetectCPU(threads int, isa string) Device {
	if threads <= 0 || threads > runtime.NumCPU() {
		threads = runtime.NumCPU()
	}
	d := Device{Backend: "cpu", Name: CPUModel(), Cores: threads, Features: CPUFeatures(), ISA: isa}
	d.Fingerprint = d.ComputeFingerprint()
	return d
}
