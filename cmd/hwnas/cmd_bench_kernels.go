package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"hwnas/accel"
	"hwnas/cpu"
)

// benchKernelsOptions configure `hwnas bench kernels`.
type benchKernelsOptions struct {
	Sizes     []int  // square sizes n of the n×n×n products
	Threads   int    // threads of the main rows (0: all cores)
	MTThreads int    // threads of the extra row at the largest size (<= 1: none)
	ISA       string // kernel level to force ("": the current one)
	Rounds    int    // alternating hwnas/peer measurement rounds per row
	Clock     string // "thread" (CPU time of the calling thread for 1-thread rows) or "wall"
	JSON      bool
	Latency   accel.LatencyOptions // per round; tests shorten it
}

// benchKernelsRow is one measured shape.
type benchKernelsRow struct {
	Kernel        string   `json:"kernel"`
	N             int      `json:"n"`
	Threads       int      `json:"threads"`
	Clock         string   `json:"clock"` // "thread-cpu" or "wall"
	HwnasGFLOPS   float64  `json:"hwnas_gflops"`
	HwnasMedianUS float64  `json:"hwnas_median_us"`
	PeerGFLOPS    *float64 `json:"openblas_gflops"`    // null when the peer is not built in
	PeerMedianUS  *float64 `json:"openblas_median_us"` // null when the peer is not built in
	Ratio         *float64 `json:"ratio"`              // hwnas / OpenBLAS GFLOP/s
}

// benchKernelsReport is the --json output.
type benchKernelsReport struct {
	Device      accel.Device      `json:"device"`
	ISA         string            `json:"isa"`
	Peer        string            `json:"openblas"`                    // peer description, or why it is absent
	PeerCoreEnv string            `json:"openblas_coretype,omitempty"` // OPENBLAS_CORETYPE when set
	Rows        []benchKernelsRow `json:"rows"`
}

func init() {
	opts := benchKernelsOptions{Rounds: 3, Clock: "thread"}
	cmd := &cobra.Command{
		Use:   "kernels",
		Short: "Measure SGEMM GFLOP/s beside OpenBLAS (built in by `make bench`)",
		Long: `Measures single-precision GEMM (C = A·B, n×n×n, row-major) with hwnas's
C kernels at each size, and OpenBLAS's cblas_sgemm in the same run when the
binary was built with -tags openblas (make bench). Each figure is the median
over repeats (accel.MeasureLatency), taken in alternating rounds so that both
libraries see the same machine load. One-thread rows are timed by default
with the CPU time of the calling thread (--clock thread), which leaves out
the time the OS gives other processes on a shared machine; rows with more
threads, and --clock wall, use the wall clock. Unset OPENBLAS_CORETYPE to
let OpenBLAS pick its kernel for this CPU.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBenchKernels(cmd.Context(), cmd.OutOrStdout(), opts)
		},
	}
	f := cmd.Flags()
	f.IntSliceVar(&opts.Sizes, "sizes", []int{256, 512, 1024}, "square sizes n to measure")
	f.IntVar(&opts.Threads, "threads", 1, "threads per product (0: all cores)")
	f.IntVar(&opts.MTThreads, "mt-threads", 2, "threads of one extra row at the largest size (0 or 1: none)")
	f.StringVar(&opts.ISA, "isa", "", "kernel level: generic, avx2, avx512 (x86) or arm64 (default: the best this CPU has, or HWNAS_ISA)")
	f.IntVar(&opts.Rounds, "rounds", 3, "alternating measurement rounds per row")
	f.StringVar(&opts.Clock, "clock", "thread", "timer of one-thread rows: thread (CPU time of the calling thread) or wall")
	f.BoolVar(&opts.JSON, "json", false, "print JSON")
	benchCmd.AddCommand(cmd)
}

// runBenchKernels measures the rows that opts ask for and prints them.
func runBenchKernels(ctx context.Context, w io.Writer, opts benchKernelsOptions) error {
	if len(opts.Sizes) == 0 {
		return badInputf("--sizes: give at least one size")
	}
	for _, n := range opts.Sizes {
		if n <= 0 || n > 8192 {
			return badInputf("--sizes: %d is not in 1..8192", n)
		}
	}
	if opts.Threads < 0 || opts.MTThreads < 0 {
		return badInputf("--threads and --mt-threads must not be negative")
	}
	if opts.Rounds <= 0 {
		return badInputf("--rounds: %d must be positive", opts.Rounds)
	}
	if opts.Clock != "thread" && opts.Clock != "wall" {
		return badInputf("--clock: %q is not thread or wall", opts.Clock)
	}
	if opts.ISA != "" {
		prev := cpu.ISA()
		if err := cpu.SetISA(opts.ISA); err != nil {
			return badInput(fmt.Errorf("--isa: %w", err))
		}
		defer cpu.SetISA(prev)
	}
	if opts.Latency == (accel.LatencyOptions{}) {
		opts.Latency = accel.LatencyOptions{Warmup: 2, MinRuns: 5, MinTime: 250 * time.Millisecond}
	}
	threads := opts.Threads
	if threads == 0 {
		threads = runtime.NumCPU()
	}
	rep := benchKernelsReport{Device: accel.DetectCPU(threads, cpu.ISA()), ISA: cpu.ISA(), Peer: cpu.PeerName()}
	if !cpu.PeerBuiltIn {
		rep.Peer = "openblas: not built in; run `make bench`"
	} else {
		rep.PeerCoreEnv = os.Getenv("OPENBLAS_CORETYPE")
	}

	type shape struct{ n, threads int }
	var shapes []shape
	for _, n := range opts.Sizes {
		shapes = append(shapes, shape{n, threads})
	}
	if opts.MTThreads > 1 && opts.MTThreads != threads {
		shapes = append(shapes, shape{slices.Max(opts.Sizes), opts.MTThreads})
	}
	for _, s := range shapes {
		if err := ctx.Err(); err != nil {
			return err
		}
		row, err := benchSgemmRow(s.n, s.threads, opts)
		if err != nil {
			return err
		}
		rep.Rows = append(rep.Rows, row)
	}
	if opts.JSON {
		return writeJSON(w, rep)
	}
	return printBenchKernels(w, rep)
}

// benchSgemmRow times n×n×n SGEMM with hwnas and, when built in, OpenBLAS,
// in alternating rounds; each library's figure is the median of its round
// medians.
func benchSgemmRow(n, threads int, opts benchKernelsOptions) (benchKernelsRow, error) {
	r := rand.New(rand.NewPCG(1, uint64(n)))
	a, b, c := make([]float32, n*n), make([]float32, n*n), make([]float32, n*n)
	for i := range a {
		a[i], b[i] = float32(r.Float64()*2-1), float32(r.Float64()*2-1)
	}
	clock := "wall"
	if threads == 1 && opts.Clock == "thread" {
		// The cgo call runs on this goroutine's OS thread, so that thread's
		// CPU time is the kernel's (OpenBLAS with one thread runs there too).
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		clock = "thread-cpu"
	}
	timed := func(f func() error) func() (time.Duration, error) {
		return func() (time.Duration, error) {
			if clock == "wall" {
				return 0, f() // MeasureLatency times it with the wall clock
			}
			t0, err := threadCPUTime()
			if err != nil {
				return 0, err
			}
			if err := f(); err != nil {
				return 0, err
			}
			t1, err := threadCPUTime()
			return max(t1-t0, 1), err
		}
	}
	hw := timed(func() error { return cpu.Sgemm(false, false, n, n, n, 1, a, n, b, n, 0, c, n, threads) })
	peer := timed(func() error { return cpu.PeerSgemm(false, false, n, n, n, 1, a, n, b, n, 0, c, n, threads) })
	var hwMed, peerMed []time.Duration
	for round := 0; round < opts.Rounds; round++ {
		st, err := accel.MeasureLatency(hw, opts.Latency)
		if err != nil {
			return benchKernelsRow{}, fmt.Errorf("sgemm n=%d: %w", n, err)
		}
		hwMed = append(hwMed, st.Median)
		if cpu.PeerBuiltIn {
			st, err := accel.MeasureLatency(peer, opts.Latency)
			if err != nil {
				return benchKernelsRow{}, fmt.Errorf("openblas sgemm n=%d: %w", n, err)
			}
			peerMed = append(peerMed, st.Median)
		}
	}
	flop := 2 * float64(n) * float64(n) * float64(n)
	gflops := func(d time.Duration) float64 { return flop / d.Seconds() / 1e9 }
	us := func(d time.Duration) float64 { return float64(d) / 1e3 }
	hm := medianDuration(hwMed)
	row := benchKernelsRow{Kernel: "sgemm", N: n, Threads: threads, Clock: clock, HwnasGFLOPS: gflops(hm), HwnasMedianUS: us(hm)}
	if len(peerMed) > 0 {
		pm := medianDuration(peerMed)
		pg, pu := gflops(pm), us(pm)
		ratio := row.HwnasGFLOPS / pg
		row.PeerGFLOPS, row.PeerMedianUS, row.Ratio = &pg, &pu, &ratio
	}
	return row, nil
}

// threadCPUTime is the CPU time the calling OS thread has used.
func threadCPUTime() (time.Duration, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return 0, fmt.Errorf("thread CPU clock: %w", err)
	}
	return time.Duration(ts.Nano()), nil
}

func medianDuration(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func printBenchKernels(w io.Writer, rep benchKernelsReport) error {
	fmt.Fprintf(w, "SGEMM fp32, C = A·B (n×n×n, row-major), hwnas isa %s on %s\n", rep.ISA, rep.Device.Name)
	fmt.Fprintf(w, "peer: %s\n", rep.Peer)
	if rep.PeerCoreEnv != "" {
		fmt.Fprintf(w, "note: OPENBLAS_CORETYPE=%s is set, so OpenBLAS runs that kernel, not the one for this CPU\n", rep.PeerCoreEnv)
	}
	fmt.Fprintf(w, "%6s %8s %11s %15s %17s %7s\n", "n", "threads", "clock", "hwnas GFLOP/s", "OpenBLAS GFLOP/s", "ratio")
	for _, r := range rep.Rows {
		peer, ratio := "-", "-"
		if r.PeerGFLOPS != nil {
			peer, ratio = fmt.Sprintf("%.1f", *r.PeerGFLOPS), fmt.Sprintf("%.2f", *r.Ratio)
		}
		fmt.Fprintf(w, "%6d %8d %11s %15.1f %17s %7s\n", r.N, r.Threads, r.Clock, r.HwnasGFLOPS, peer, ratio)
	}
	return nil
}
