package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"hwnas/accel"
	"hwnas/search"
	"hwnas/store"
)

// fmtFigure is a latency figure with the larger side of its 95% interval
// as a percentage ("12.5µs ±3%"), marked "!" when the measurement was
// disturbed (the reference ran slower than usual).
func fmtFigure(l store.Latency) string {
	s := fmtStats(l.Stats)
	if l.Disturbed {
		s += " !"
	}
	return s
}

// fmtStats is fmtFigure's figure and interval.
func fmtStats(st accel.LatencyStats) string {
	f := st.Figure()
	s := fmtLatency(f)
	if f > 0 && st.High > st.Low {
		s += fmt.Sprintf(" ±%.0f%%", 100*float64(max(f-st.Low, st.High-f))/float64(f))
	}
	return s
}

// fmtRatio is a latency's ratio to its reference ("0.182×lenet5"), "-"
// without one.
func fmtRatio(l store.Latency) string {
	if l.Ratio == nil {
		return "-"
	}
	return fmt.Sprintf("%.3f×%s", l.Ratio.Value, l.Reference)
}

// runtimeFlagHelp is the help of every --runtime flag.
const runtimeFlagHelp = "runtime of the latency: hwnas (its own kernels) or onnxruntime (the trial's ONNX export in onnxruntime)"

// checkRuntimeFlag validates --runtime and returns it in stored form
// ("" for hwnas).
func checkRuntimeFlag(rt string) (string, error) {
	if err := search.CheckRuntime(rt); err != nil {
		return "", badInputf("--runtime: %v", err)
	}
	if rt == store.RuntimeHwnas {
		return "", nil
	}
	return rt, nil
}

// loadAvg is the machine's load average over 1, 5 and 15 minutes
// (/proc/loadavg), printed beside measured figures: on a shared machine
// it says how busy the machine was.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// roundDur rounds a duration for log lines.
func roundDur(d time.Duration) time.Duration { return d.Round(10 * time.Nanosecond) }
