package main

import (
	"cmp"
	"context"
	"fmt"
	"image/color"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"

	"hwnas/accel"
	"hwnas/internal/atomicfile"
	"hwnas/store"
)

type paretoOptions struct {
	DB, Study, Device, Plot, By string
	Runtime                     string
	Batch                       int
	JSON                        bool
}

// paretoReport is what `hwnas pareto --json` prints.
type paretoReport struct {
	Study   string         `json:"study"`
	Device  accel.Device   `json:"device"`
	Batch   int            `json:"batch"`
	Runtime string         `json:"runtime"`
	By      store.Metric   `json:"by"`
	Trials  int            `json:"trials"` // finished trials measured on the device
	Front   []store.Result `json:"front"`
	Plot    string         `json:"plot,omitempty"`
}

func init() {
	opts := paretoOptions{}
	cmd := &cobra.Command{
		Use:   "pareto",
		Short: "A study's Pareto front over accuracy, latency and bytes",
		Long: `pareto lists the study's finished trials that no other trial beats on all three
of accuracy (higher), latency on the device (lower) and compressed bytes
(lower), by latency. --device defaults to the study's own target and
--runtime to hwnas's kernels (onnxruntime: the latencies hwnas measure
--runtime onnxruntime recorded); --plot
draws latency and bytes against accuracy (all trials in grey, the front in
colour) as PNG or SVG. The database is opened read-only.`,
		Example: `  hwnas pareto --study quick --plot pareto.png`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runPareto(cmd.Context(), cmd.OutOrStdout(), opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.DB, "db", "hwnas.db", dbFlagHelp)
	f.StringVar(&opts.Study, "study", "", "study name")
	f.StringVar(&opts.Device, "device", "", "device name, fingerprint or spec (default: the study's device)")
	f.IntVar(&opts.Batch, "batch", 1, "batch size of the latency")
	f.StringVar(&opts.Runtime, "runtime", store.RuntimeHwnas, runtimeFlagHelp)
	f.StringVar(&opts.By, "by", "val", "accuracy: val or test")
	f.StringVar(&opts.Plot, "plot", "", "write a plot to this .png or .svg file")
	f.BoolVar(&opts.JSON, "json", false, "print JSON")
	_ = cmd.MarkFlagRequired("study")
	rootCmd.AddCommand(cmd)
}

func runPareto(ctx context.Context, w io.Writer, opts paretoOptions) error {
	switch {
	case opts.Batch <= 0:
		return badInputf("--batch %d: want at least 1", opts.Batch)
	case opts.By != string(store.ByValidation) && opts.By != string(store.ByTest):
		return badInputf("--by %q: want val or test", opts.By)
	}
	if opts.Plot != "" {
		if ext := strings.ToLower(filepath.Ext(opts.Plot)); ext != ".png" && ext != ".svg" {
			return badInputf("--plot %s: give a .png or .svg file name", opts.Plot)
		}
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
	if _, err := db.GetStudy(ctx, opts.Study); err != nil {
		return queryError(err)
	}
	device := opts.Device
	if device != "" {
		if device, _, err = resolveQueryDevice(ctx, db, device); err != nil {
			return err
		}
	}
	all, dev, err := db.StudyResults(ctx, opts.Study, device, opts.Batch, rt, store.Metric(opts.By))
	if err != nil {
		return queryError(err)
	}
	front := store.Pareto(all)
	rep := paretoReport{Study: opts.Study, Device: dev, Batch: opts.Batch, Runtime: store.Latency{Runtime: rt}.RuntimeName(),
		By: store.Metric(opts.By), Trials: len(all), Front: front, Plot: opts.Plot}
	if rep.Front == nil {
		rep.Front = []store.Result{}
	}
	if opts.Plot != "" {
		if err := plotPareto(opts.Plot, rep, all); err != nil {
			return err
		}
	}
	if opts.JSON {
		return writeJSON(w, rep)
	}
	fmt.Fprintf(w, "study %s on %s, %s, batch %d: %d of %d finished trials on the front\n",
		opts.Study, deviceColumn(dev), rep.Runtime, opts.Batch, len(front), len(all))
	if len(front) > 0 {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "LATENCY\tRATIO\tACCURACY\tBYTES\tTEST ACC\tREWARD\tTRIAL")
		for _, r := range front {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%.4f\t%s\n", fmtFigure(r.Latency), fmtRatio(r.Latency), fmtPercent(r.Accuracy, true),
				fmtBytes(r.Metrics.CompressedBytes), fmtPercent(r.Metrics.TestAccuracy, r.Metrics.HasTest), r.Metrics.Reward,
				r.Name())
		}
		tw.Flush()
		fmt.Fprintln(w, "latency: a low quantile of interleaved rounds' fastest runs ± its 95% interval; ! measured disturbed")
	}
	if opts.Plot != "" {
		fmt.Fprintf(w, "plot written to %s\n", opts.Plot)
	}
	return nil
}

// plotPareto draws two panels side by side, latency (µs) and compressed
// size (KB) on the x axes against accuracy (%): every trial as a grey
// ring, the front as red points joined in order along each x axis.
func plotPareto(path string, rep paretoReport, all []store.Result) error {
	accName := "validation accuracy (%)"
	if rep.By == store.ByTest {
		accName = "test accuracy (%)"
	}
	axes := []struct {
		label string
		x     func(store.Result) float64
	}{
		{fmt.Sprintf("latency at batch %d (µs)", rep.Batch), func(r store.Result) float64 { return float64(r.Latency.Figure()) / 1e3 }},
		{"compressed size (KB)", func(r store.Result) float64 { return float64(r.Metrics.CompressedBytes) / 1e3 }},
	}
	front := append([]store.Result(nil), rep.Front...)
	row := make([]*plot.Plot, len(axes))
	for i, ax := range axes {
		p := plot.New()
		p.Title.Text = fmt.Sprintf("%s on %s", rep.Study, rep.Device.Name)
		if i == 1 {
			// The title is the legend: a legend box inside the frame would
			// hide points wherever it went.
			p.Title.Text = fmt.Sprintf("%d trials (grey), %d on the Pareto front (red)", len(all), len(front))
		}
		p.X.Label.Text, p.Y.Label.Text = ax.label, accName
		p.Add(plotter.NewGrid())
		pts := func(rs []store.Result) plotter.XYs {
			xy := make(plotter.XYs, len(rs))
			for j, r := range rs {
				xy[j].X, xy[j].Y = ax.x(r), 100*r.Accuracy
			}
			return xy
		}
		sc, err := plotter.NewScatter(pts(all))
		if err != nil {
			return err
		}
		sc.GlyphStyle.Color = color.Gray{Y: 160}
		sc.GlyphStyle.Radius = vg.Points(2.5)
		p.Add(sc)
		if len(front) > 0 {
			fp := pts(front)
			if i == 1 { // join the front in order of this panel's axis
				sortXY(fp)
			}
			line, points, err := plotter.NewLinePoints(fp)
			if err != nil {
				return err
			}
			line.Color = color.RGBA{R: 200, G: 40, B: 40, A: 255}
			line.Dashes = []vg.Length{vg.Points(3), vg.Points(2)}
			points.Color, points.Shape, points.Radius = line.Color, draw.CircleGlyph{}, vg.Points(3.5)
			p.Add(line, points)
		}
		padRange(&p.X)
		padRange(&p.Y)
		row[i] = p
	}
	width, height := 12*vg.Inch, 5*vg.Inch
	var dc draw.Canvas
	var flush func(io.Writer) error
	switch strings.ToLower(filepath.Ext(path)) {
	case ".svg":
		sv := vgsvg.New(width, height)
		dc, flush = draw.New(sv), func(w io.Writer) error { _, err := sv.WriteTo(w); return err }
	default:
		img := vgimg.New(width, height)
		dc, flush = draw.New(img), func(w io.Writer) error { _, err := vgimg.PngCanvas{Canvas: img}.WriteTo(w); return err }
	}
	tiles := draw.Tiles{Rows: 1, Cols: len(row), PadX: vg.Inch / 4, PadTop: vg.Inch / 8, PadBottom: vg.Inch / 8, PadLeft: vg.Inch / 8, PadRight: vg.Inch / 4}
	canvases := plot.Align([][]*plot.Plot{row}, tiles, dc)
	for i, p := range row {
		p.Draw(canvases[0][i])
	}
	if err := atomicfile.Write(path, 0o644, func(f *os.File) error { return flush(f) }); err != nil {
		return fmt.Errorf("--plot: %w", err)
	}
	return nil
}

// padRange widens an axis by 5% of its span on each side so points at the
// extremes are not cut by the frame.
func padRange(a *plot.Axis) {
	span := a.Max - a.Min
	if span <= 0 {
		span = max(1, a.Max/10)
	}
	a.Min, a.Max = a.Min-span/20, a.Max+span/20
}

func sortXY(xy plotter.XYs) {
	slices.SortStableFunc(xy, func(a, b plotter.XY) int { return cmp.Compare(a.X, b.X) })
}
