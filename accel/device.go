package accel

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"io"
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
	ISA      string   `json:"isa,omitempty"`      // kernel level in use: avx512, avx2, arm64, generic

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

// CPUFeatures lists the x86 or arm64 ISA extensions relevant to the kernels
// that this CPU has, found at run time.
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
	add(cpu.ARM64.HasASIMDHP, "asimdhp")
	add(cpu.ARM64.HasASIMDDP, "asimddp")
	add(cpu.ARM64.HasI8MM, "i8mm")
	add(cpu.ARM64.HasSVE, "sve")
	return f
}

// CPUModel returns the processor's model name (from /proc/cpuinfo on Linux),
// or the architecture when it cannot be read. Arm Linux has no model name
// there: the core is named from its MIDR part number (armCores), followed by
// the board's Model line where the kernel gives one (Raspberry Pi).
func CPUModel() string {
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		defer f.Close()
		if name := cpuModelFrom(f); name != "" {
			return name
		}
	}
	return runtime.GOARCH + " CPU"
}

// cpuModelFrom reads the model name out of a /proc/cpuinfo; "" if none.
func cpuModelFrom(r io.Reader) string {
	var impl, part, board string
	s := bufio.NewScanner(r)
	for s.Scan() {
		k, v, ok := strings.Cut(s.Text(), ":")
		k, v = strings.TrimSpace(k), strings.Join(strings.Fields(v), " ")
		switch {
		case !ok:
		case k == "model name":
			return v
		case k == "CPU implementer" && impl == "":
			impl = v
		case k == "CPU part" && part == "":
			part = v
		case k == "Model":
			board = v
		}
	}
	if impl == "" || part == "" {
		return ""
	}
	name := armCores[impl+"/"+part]
	if name == "" {
		name = "Arm core " + impl + "/" + part
	}
	if board != "" {
		name += " (" + board + ")"
	}
	return name
}

// armCores names Arm cores by MIDR implementer/part (/proc/cpuinfo's "CPU
// implementer" and "CPU part"), for the boards and servers hwnas targets.
var armCores = map[string]string{
	"0x41/0xd03": "Arm Cortex-A53", "0x41/0xd04": "Arm Cortex-A35", "0x41/0xd05": "Arm Cortex-A55",
	"0x41/0xd07": "Arm Cortex-A57", "0x41/0xd08": "Arm Cortex-A72", "0x41/0xd09": "Arm Cortex-A73",
	"0x41/0xd0a": "Arm Cortex-A75", "0x41/0xd0b": "Arm Cortex-A76", "0x41/0xd0c": "Arm Neoverse-N1",
	"0x41/0xd0d": "Arm Cortex-A77", "0x41/0xd40": "Arm Neoverse-V1", "0x41/0xd41": "Arm Cortex-A78",
	"0x41/0xd42": "Arm Cortex-A78AE", "0x41/0xd46": "Arm Cortex-A510", "0x41/0xd47": "Arm Cortex-A710",
	"0x41/0xd49": "Arm Neoverse-N2", "0x41/0xd4f": "Arm Neoverse-V2", "0x41/0xd80": "Arm Cortex-A520",
	"0x41/0xd81": "Arm Cortex-A720", "0x4e/0x004": "NVIDIA Carmel",
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
