package accel

import (
	"strings"
	"testing"
)

func TestCPUModelFrom(t *testing.T) {
	const pi4 = "processor\t: 0\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\n" +
		"CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\nCPU revision\t: 3\n\n" +
		"processor\t: 1\nCPU implementer\t: 0x41\nCPU part\t: 0xd08\n\n" +
		"Revision\t: c03114\nSerial\t\t: 10000000abcdef\nModel\t\t: Raspberry Pi 4 Model B Rev 1.4\n"
	for _, tc := range []struct{ name, cpuinfo, want string }{
		{"x86", "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC  9B14 96-Core Processor\nflags\t\t: fpu\n", "AMD EPYC 9B14 96-Core Processor"},
		{"raspberry pi 4", pi4, "Arm Cortex-A72 (Raspberry Pi 4 Model B Rev 1.4)"},
		{"graviton 2", "processor\t: 0\nCPU implementer\t: 0x41\nCPU part\t: 0xd0c\n", "Arm Neoverse-N1"},
		{"unknown arm core", "CPU implementer\t: 0x61\nCPU part\t: 0x022\n", "Arm core 0x61/0x022"},
		{"nothing", "processor\t: 0\n", ""},
	} {
		if got := cpuModelFrom(strings.NewReader(tc.cpuinfo)); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}
