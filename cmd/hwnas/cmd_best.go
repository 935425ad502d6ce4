package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"hwnas/accel"
	"hwnas/store"
)

type bestOptions struct {
	DB, Device, Study string
	Runtime           string
	MaxLatency        time.Duration
	MinAccuracy       float64
	MaxBytes          byteSize
	N, Batch          int
	By                string
	JSON              bool
}

// bestReport is what `hwnas best --json` prints.
type bestReport struct {
	Device      string         `json:"device"`  // as asked
	Matched     string         `json:"matched"` // what the database was searched for
	Note        string         `json:"note,omitempty"`
	Batch       int            `json:"batch"`
	Runtime     string         `json:"runtime"`
	By          store.Metric   `json:"by"`
	MaxLatency  time.Duration  `json:"max_latency_ns,omitempty"`
	MinAccuracy float64        `json:"min_accuracy,omitempty"`
	MaxBytes    int64          `json:"max_bytes,omitempty"`
	Results     []store.Result `json:"results"`
}

func init() {
	opts := bestOptions{}
	cmd := &cobra.Command{
		Use:   "best",
		Short: "The best models for a device under latency, accuracy and size bounds",
		Long: `best answers "which model for this device": the finished trials of every study
(or --study) measured on the device, within the bounds, most accurate first,
ties broken by lower latency then fewer bytes. Trials are named STUDY/N
(the study and the trial's number in it, as searches log them), the name
hwnas export --trial takes. --device takes a device name, a
fingerprint (see hwnas devices) or a backend spec such as cpu or cuda:0; a
spec picks this machine's device (for a CPU: its model at any thread count)
when the database has results for it, and every device of that backend
otherwise. --runtime onnxruntime ranks by the latencies hwnas measure
--runtime onnxruntime recorded (which model for this CPU when deploying with
onnxruntime). Accuracy is the validation accuracy
searches decide on (--by test ranks by the test accuracy of trials that have
one). The database is opened read-only.`,
		Example: `  hwnas best --device cpu --max-latency 100us --min-accuracy 0.99 --max-bytes 10KB -n 5`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBest(cmd.Context(), cmd.OutOrStdout(), opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.DB, "db", "hwnas.db", dbFlagHelp)
	f.StringVar(&opts.Device, "device", "", "device name, fingerprint or spec (cpu, cuda:0)")
	f.StringVar(&opts.Study, "study", "", "only this study")
	f.DurationVar(&opts.MaxLatency, "max-latency", 0, "latency bound, e.g. 100us (0: none)")
	f.Float64Var(&opts.MinAccuracy, "min-accuracy", 0, "accuracy bound as a fraction, e.g. 0.99")
	f.Var(&opts.MaxBytes, "max-bytes", "compressed size bound, e.g. 10KB, 1.5MB, 4096 (0: none)")
	f.IntVarP(&opts.N, "n", "n", 10, "how many models to list")
	f.IntVar(&opts.Batch, "batch", 1, "batch size of the latency")
	f.StringVar(&opts.Runtime, "runtime", store.RuntimeHwnas, runtimeFlagHelp)
	f.StringVar(&opts.By, "by", "val", "accuracy to rank by: val or test")
	f.BoolVar(&opts.JSON, "json", false, "print JSON")
	_ = cmd.MarkFlagRequired("device")
	rootCmd.AddCommand(cmd)
}

func runBest(ctx context.Context, w io.Writer, opts bestOptions) error {
	switch {
	case strings.TrimSpace(opts.Device) == "":
		return badInputf("--device: give a device name, fingerprint or spec (see hwnas devices)")
	case opts.MaxLatency < 0:
		return badInputf("--max-latency %v must not be negative", opts.MaxLatency)
	case opts.MinAccuracy < 0 || opts.MinAccuracy > 1:
		return badInputf("--min-accuracy %v: give a fraction in [0, 1], e.g. 0.99", opts.MinAccuracy)
	case opts.N <= 0:
		return badInputf("-n %d: want at least 1", opts.N)
	case opts.Batch <= 0:
		return badInputf("--batch %d: want at least 1", opts.Batch)
	case opts.By != string(store.ByValidation) && opts.By != string(store.ByTest):
		return badInputf("--by %q: want val or test", opts.By)
	}
	rt, err := checkRuntimeFlag(opts.Runtime)
	if err != nil {
		return err
	}
	db, err := openQueryDB(opts.DB)
	if err != nil {
		return err
	}
	defer db.Close()
	matched, note, err := resolveQueryDevice(ctx, db, opts.Device)
	if err != nil {
		return err
	}
	rs, err := db.Best(ctx, store.Query{Device: matched, Study: opts.Study, Batch: opts.Batch, Runtime: rt, MaxLatency: opts.MaxLatency,
		MinAccuracy: opts.MinAccuracy, MaxBytes: int64(opts.MaxBytes), By: store.Metric(opts.By), N: opts.N})
	if err != nil {
		return queryError(err)
	}
	rep := bestReport{Device: opts.Device, Matched: matched, Note: note, Batch: opts.Batch, Runtime: store.Latency{Runtime: rt}.RuntimeName(), By: store.Metric(opts.By),
		MaxLatency: opts.MaxLatency, MinAccuracy: opts.MinAccuracy, MaxBytes: int64(opts.MaxBytes), Results: rs}
	if rep.Results == nil {
		rep.Results = []store.Result{}
	}
	if opts.JSON {
		return writeJSON(w, rep)
	}
	if note != "" {
		fmt.Fprintln(w, note)
	}
	if len(rs) == 0 {
		_, err := fmt.Fprintf(w, "no finished trial measured on %s at batch %d in %s meets the bounds\n", opts.Device, opts.Batch, rep.Runtime)
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "RANK\tTEST ACC\tVAL ACC\tBYTES\tLATENCY (%s)\tRATIO\tTRIAL\tDEVICE\n", rep.Runtime)
	for i, r := range rs {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", i+1,
			fmtPercent(r.Metrics.TestAccuracy, r.Metrics.HasTest), fmtPercent(r.Metrics.ValAccuracy, true),
			fmtBytes(r.Metrics.CompressedBytes), fmtFigure(r.Latency), fmtRatio(r.Latency),
			r.Name(), deviceColumn(r.Latency.Device))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, "latency: a low quantile of interleaved rounds' fastest runs ± its 95% interval; ! measured disturbed")
	return err
}

// resolveQueryDevice turns --device into what the database is searched
// for. A name or fingerprint the database knows is used as is. A backend
// spec ("cpu", "cuda:1") becomes this machine's device: its fingerprint
// when the database has results for it, else its model name when the
// database has that model under other fingerprints (the CPU fingerprint
// counts the threads measured with), else the backend name (every device
// of that backend) with a note saying so. Anything else is bad input
// naming the devices the database has.
func resolveQueryDevice(ctx context.Context, db *store.DB, spec string) (matched, note string, err error) {
	name, index, perr := accel.ParseSpec(spec)
	reg, lerr := accel.Lookup(name)
	if perr != nil || lerr != nil || reg.Devices == nil {
		if _, err := db.MatchDevices(ctx, spec); err != nil {
			return "", "", queryError(err)
		}
		return spec, "", nil
	}
	if devs, err := reg.Devices(); err == nil && index < len(devs) {
		here := devs[index]
		if _, err := db.MatchDevices(ctx, here.Fingerprint); err == nil {
			return here.Fingerprint, "", nil
		}
		if known, err := db.MatchDevices(ctx, here.Name); err == nil && known[0].Backend == here.Backend {
			return here.Name, "", nil
		}
		note = fmt.Sprintf("no results for this machine's %s device %q (%s); showing every %s device", name, here.Name, here.Fingerprint, name)
	}
	if _, err := db.MatchDevices(ctx, name); err != nil {
		return "", "", queryError(err)
	}
	return name, note, nil
}

// deviceColumn names a device in a table, with its thread count for CPUs
// (the same CPU measured with other thread counts is another device).
func deviceColumn(d accel.Device) string {
	if d.Backend == "cpu" && d.Cores > 0 {
		threads := "threads"
		if d.Cores == 1 {
			threads = "thread"
		}
		return fmt.Sprintf("%s, %d %s (%s)", d.Name, d.Cores, threads, d.Fingerprint)
	}
	return fmt.Sprintf("%s (%s)", d.Name, d.Fingerprint)
}

// byteSize is a flag value in bytes that takes decimal (KB, MB, GB = 10³,
// 10⁶, 10⁹) and binary (KiB, MiB, GiB) suffixes, with or without a space
// and in any case; a bare number is bytes.
type byteSize int64

func (b *byteSize) String() string { return strconv.FormatInt(int64(*b), 10) }
func (b *byteSize) Type() string   { return "bytes" }

func (b *byteSize) Set(s string) error {
	n, err := parseByteSize(s)
	if err != nil {
		return err
	}
	*b = byteSize(n)
	return nil
}

func parseByteSize(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	units := []struct {
		suffix string
		scale  float64
	}{{"KIB", 1 << 10}, {"MIB", 1 << 20}, {"GIB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"K", 1e3}, {"M", 1e6}, {"G", 1e9}, {"B", 1}}
	scale := 1.0
	for _, u := range units {
		if strings.HasSuffix(t, u.suffix) {
			t, scale = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.scale
			break
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v < 0 || v*scale > 1<<62 {
		return 0, fmt.Errorf("size %q: want a non-negative number of bytes with an optional unit (KB, MB, GB, KiB, MiB, GiB)", s)
	}
	return int64(v * scale), nil
}
