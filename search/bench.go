package search

import (
	"context"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"time"

	"hwnas/nas/data"
	"hwnas/store"
)

// BenchOptions configure Benchmark: every strategy runs once per seed
// with the same trial budget and proxy configuration, each as its own
// study (Prefix-strategy-sSEED) in DB, so an interrupted benchmark resumes.
type BenchOptions struct {
	DB         *store.DB
	Prefix     string
	Strategies []string
	Seeds      []uint64
	Trials     int
	// Config is the template; its Strategy and Seed are set per run.
	Config StudyConfig
	// DataInfo is the data set's record stored with each study.
	DataInfo  *data.Info
	Worker    []string
	WorkerEnv []string
	Limits    WorkerLimits
	Log       io.Writer
}

// BenchRun is one strategy and seed: the best reward after each trial
// (failed trials count as reward 0) and the trials' total wall time.
type BenchRun struct {
	Strategy  string    `json:"strategy"`
	Seed      uint64    `json:"seed"`
	BestSoFar []float64 `json:"best_so_far"`
	Seconds   float64   `json:"seconds"`
	Failed    int       `json:"failed"`
}

// BenchRow summarises one strategy over its seeds.
type BenchRow struct {
	Strategy string `json:"strategy"`
	// MeanBestAt[i] is the mean over seeds of the best reward after
	// Checkpoints[i] trials.
	MeanBestAt []float64 `json:"mean_best_at"`
	// TrialsToTarget is, per seed, the first trial count whose best reward
	// reaches the target (random's mean final best), or −1.
	TrialsToTarget []int `json:"trials_to_target"`
	// MeanTrialsToTarget averages TrialsToTarget, counting a miss as
	// budget+1 (a lower bound).
	MeanTrialsToTarget float64 `json:"mean_trials_to_target"`
	Misses             int     `json:"misses"`
}

// BenchReport is the result of Benchmark.
type BenchReport struct {
	Trials      int         `json:"trials"`
	Seeds       []uint64    `json:"seeds"`
	Checkpoints []int       `json:"checkpoints"`
	Target      float64     `json:"target"` // random's mean final best reward
	Runs        []BenchRun  `json:"runs"`
	Rows        []BenchRow  `json:"rows"`
	Config      StudyConfig `json:"config"`
}

// Benchmark runs (or resumes) every strategy × seed study and compares
// the strategies at an equal trial budget.
func Benchmark(ctx context.Context, o BenchOptions) (*BenchReport, error) {
	if o.Trials <= 0 || len(o.Seeds) == 0 || len(o.Strategies) == 0 {
		return nil, fmt.Errorf("bench: need a trial budget, seeds and strategies")
	}
	rep := &BenchReport{Trials: o.Trials, Seeds: o.Seeds, Config: o.Config}
	for _, strat := range o.Strategies {
		for _, seed := range o.Seeds {
			cfg := o.Config
			cfg.Strategy, cfg.Seed = strat, seed
			name := fmt.Sprintf("%s-%s-s%d", o.Prefix, strat, seed)
			t0 := time.Now()
			_, err := Run(ctx, Options{DB: o.DB, Study: name, Config: cfg, DataInfo: o.DataInfo, Trials: o.Trials, Worker: o.Worker,
				WorkerEnv: o.WorkerEnv, Limits: o.Limits, Log: o.Log})
			if err != nil {
				return nil, fmt.Errorf("bench %s: %w", name, err)
			}
			run, err := benchRun(ctx, o.DB, name, strat, seed, o.Trials)
			if err != nil {
				return nil, err
			}
			if run.Seconds == 0 {
				run.Seconds = time.Since(t0).Seconds()
			}
			rep.Runs = append(rep.Runs, run)
		}
	}
	rep.summarise(o.Strategies)
	return rep, nil
}

func benchRun(ctx context.Context, db *store.DB, study, strat string, seed uint64, trials int) (BenchRun, error) {
	st, err := db.GetStudy(ctx, study)
	if err != nil {
		return BenchRun{}, err
	}
	ts, err := db.ListTrials(ctx, st.ID, store.TrialFilter{Limit: trials})
	if err != nil {
		return BenchRun{}, err
	}
	run := BenchRun{Strategy: strat, Seed: seed}
	best := 0.0
	for _, t := range ts {
		if !t.Started.IsZero() && t.Finished.After(t.Started) {
			run.Seconds += t.Finished.Sub(t.Started).Seconds()
		}
		if t.Status == store.Done && t.Metrics != nil {
			best = math.Max(best, t.Metrics.Reward)
		} else {
			run.Failed++
		}
		run.BestSoFar = append(run.BestSoFar, best)
	}
	return run, nil
}

// summarise fills the checkpoints, the target and the rows.
func (r *BenchReport) summarise(strategies []string) {
	for _, c := range []int{1, 5, 10, 20, 30, 50, 75, 100, 150, 200, 300} {
		if c < r.Trials {
			r.Checkpoints = append(r.Checkpoints, c)
		}
	}
	r.Checkpoints = append(r.Checkpoints, r.Trials)
	final := func(run BenchRun) float64 {
		if len(run.BestSoFar) == 0 {
			return 0
		}
		return run.BestSoFar[len(run.BestSoFar)-1]
	}
	n := 0
	for _, run := range r.Runs {
		if run.Strategy == "random" {
			r.Target += final(run)
			n++
		}
	}
	if n > 0 {
		r.Target /= float64(n)
	}
	for _, s := range strategies {
		row := BenchRow{Strategy: s, MeanBestAt: make([]float64, len(r.Checkpoints))}
		runs := 0
		sum := 0.0
		for _, run := range r.Runs {
			if run.Strategy != s {
				continue
			}
			runs++
			for i, c := range r.Checkpoints {
				if k := min(c, len(run.BestSoFar)); k > 0 {
					row.MeanBestAt[i] += run.BestSoFar[k-1]
				}
			}
			hit := -1
			for i, b := range run.BestSoFar {
				if n > 0 && b >= r.Target {
					hit = i + 1
					break
				}
			}
			row.TrialsToTarget = append(row.TrialsToTarget, hit)
			if hit < 0 {
				row.Misses++
				sum += float64(r.Trials + 1)
			} else {
				sum += float64(hit)
			}
		}
		for i := range row.MeanBestAt {
			row.MeanBestAt[i] /= float64(max(runs, 1))
		}
		row.MeanTrialsToTarget = sum / float64(max(runs, 1))
		r.Rows = append(r.Rows, row)
	}
}

// verdict states whether rl reached random's final best in fewer trials
// than random itself (mean over seeds), and notes that evolution samples
// uniformly until its population is full.
func (r *BenchReport) verdict() string {
	row := map[string]*BenchRow{}
	for i := range r.Rows {
		row[r.Rows[i].Strategy] = &r.Rows[i]
	}
	var b strings.Builder
	if rl, rnd := row["rl"], row["random"]; rl != nil && rnd != nil {
		ans := "no"
		if rl.MeanTrialsToTarget < rnd.MeanTrialsToTarget {
			ans = "yes"
		}
		fmt.Fprintf(&b, "**Does rl reach random search's final best in fewer trials?** %s: %.1f trials on average against random's own %.1f "+
			"(rl missed %d of %d seeds, random %d).\n", ans, rl.MeanTrialsToTarget, rnd.MeanTrialsToTarget, rl.Misses, len(rl.TrialsToTarget), rnd.Misses)
	}
	if row["evolution"] != nil {
		b.WriteString("\nEvolution proposes uniform points until its population (20) is full, from the same per-trial random streams as random " +
			"search, so its first 20 trials are random search's; only later trials are mutations.\n")
	}
	return b.String()
}

// Markdown writes the report as one section of the docs/SEARCH.md page,
// headed "## title"; header is the paragraph under the heading (the
// command and machine).
func (r *BenchReport) Markdown(w io.Writer, title, header string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "## %s\n\n", title)
	b.WriteString(header)
	T := time.Duration(r.Config.Reward.LatencyTargetNs).String()
	if rw := r.Config.Reward; rw.LatencyTargetRatio > 0 {
		T = fmt.Sprintf("%g× %s", rw.LatencyTargetRatio, r.Config.reference())
	}
	fmt.Fprintf(&b, "\nEach strategy ran %d trials per seed, seeds %v, on the same proxy budget: %d epoch(s) on %d training images, "+
		"reward %s with T = %s", r.Trials, r.Seeds, r.Config.Epochs, r.Config.Subset, r.Config.Reward.Mode, T)
	if r.Config.Reward.MaxBytes > 0 {
		fmt.Fprintf(&b, " and a %d-byte budget", r.Config.Reward.MaxBytes)
	}
	b.WriteString(".\n\n### Best reward after N trials (mean over seeds)\n\n| strategy |")
	for _, c := range r.Checkpoints {
		fmt.Fprintf(&b, " %d |", c)
	}
	b.WriteString("\n|---|")
	for range r.Checkpoints {
		b.WriteString("---:|")
	}
	b.WriteString("\n")
	for _, row := range r.Rows {
		fmt.Fprintf(&b, "| %s |", row.Strategy)
		for _, v := range row.MeanBestAt {
			fmt.Fprintf(&b, " %.4f |", v)
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "\n### Trials to reach random search's final best (%.4f, mean over seeds)\n\n", r.Target)
	b.WriteString("| strategy | per seed | mean | missed |\n|---|---|---:|---:|\n")
	for _, row := range r.Rows {
		per := make([]string, len(row.TrialsToTarget))
		for i, v := range row.TrialsToTarget {
			per[i] = fmt.Sprint(v)
			if v < 0 {
				per[i] = "—"
			}
		}
		fmt.Fprintf(&b, "| %s | %s | %.1f | %d |\n", row.Strategy, strings.Join(per, ", "), row.MeanTrialsToTarget, row.Misses)
	}
	b.WriteString("\nA missed seed counts as budget + 1 in the mean (a lower bound).\n\n")
	b.WriteString(r.verdict())
	b.WriteString("\n### Runs\n\n| strategy | seed | final best | failed | trial seconds |\n|---|---:|---:|---:|---:|\n")
	runs := append([]BenchRun(nil), r.Runs...)
	sort.SliceStable(runs, func(i, j int) bool { return runs[i].Strategy < runs[j].Strategy })
	for _, run := range runs {
		fb := 0.0
		if len(run.BestSoFar) > 0 {
			fb = run.BestSoFar[len(run.BestSoFar)-1]
		}
		fmt.Fprintf(&b, "| %s | %d | %.4f | %d | %.0f |\n", run.Strategy, run.Seed, fb, run.Failed, run.Seconds)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
