// Command latency-estimators compares estimators of a model's latency on a
// noisy machine: every finished trial of a study and two copies of dense
// LeNet-5 are measured in the same interleaved rounds (accel.MeasureRounds),
// several times with a pause between, and each estimator — a quantile of the
// per-round floors over the first N rounds — is scored by how far the trials'
// figures and their ratios to LeNet-5 move from one measurement to the next.
// docs/LATENCY.md's estimator table came from
//
//	go run ./scripts/latency-estimators -db DB -study S -reps 4 -pause 20s -rounds 81
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"time"

	"hwnas/accel"
	_ "hwnas/cpu"
	"hwnas/nas"
	"hwnas/search"
	"hwnas/store"
)

func main() {
	dbPath := flag.String("db", "", "database of the study")
	study := flag.String("study", "", "study whose finished trials are measured")
	reps := flag.Int("reps", 4, "measurements")
	pause := flag.Duration("pause", 20*time.Second, "pause between measurements")
	rounds := flag.Int("rounds", 81, "rounds per measurement")
	flag.Parse()
	if err := run(*dbPath, *study, *reps, *pause, *rounds); err != nil {
		fmt.Fprintln(os.Stderr, "latency-estimators:", err)
		os.Exit(2)
	}
}

func run(dbPath, study string, reps int, pause time.Duration, rounds int) error {
	ctx := context.Background()
	db, err := store.OpenReadOnly(dbPath)
	if err != nil {
		return err
	}
	defer db.Close()
	st, err := db.GetStudy(ctx, study)
	if err != nil {
		return err
	}
	trials, err := db.ListTrials(ctx, st.ID, store.TrialFilter{Status: store.Done})
	if err != nil {
		return err
	}
	be, err := accel.Open("cpu", accel.Options{Threads: 1})
	if err != nil {
		return err
	}
	defer be.Close()
	var subs []accel.Subject
	add := func(m *nas.Model) error {
		plan, err := nas.Lower(m)
		if err != nil {
			return err
		}
		p, err := be.Compile(plan, 1)
		if err != nil {
			return err
		}
		in := make([]float32, p.InputSize())
		for i := range in {
			in[i] = float32(i%17) / 17
		}
		subs = append(subs, accel.ProgramSubject("", p, in))
		return nil
	}
	a, err := nas.BuiltinArchFor("lenet5", nas.MNISTShape)
	if err != nil {
		return err
	}
	ref, err := nas.NewModel(a, 1)
	if err != nil {
		return err
	}
	for range 2 {
		if err := add(ref); err != nil {
			return err
		}
	}
	for _, t := range trials {
		blob, err := db.TrialWeights(ctx, t.ID)
		if err != nil {
			return err
		}
		m, err := search.TrialModel(t.Arch, blob)
		if err != nil {
			return err
		}
		if err := add(m); err != nil {
			return err
		}
	}
	var floors [][][]time.Duration // measurement, subject, round
	for r := 0; r < reps; r++ {
		if r > 0 {
			time.Sleep(pause)
		}
		load, _ := os.ReadFile("/proc/loadavg")
		res, err := accel.MeasureRounds(subs, accel.RoundsOptions{Seed: uint64(r), Rounds: rounds, Quantile: 0.5})
		if err != nil {
			return err
		}
		floors = append(floors, res.Floors)
		fmt.Printf("measurement %d: load %s", r+1, load)
	}
	n := len(subs) - 2
	fmt.Printf("%d trials; per pair of consecutive measurements: trials within ±5%%, median and worst move; ratios to LeNet-5 (same rounds) within ±3%%\n", n)
	for _, nr := range slices.Compact(slices.Sorted(slices.Values([]int{min(41, rounds), rounds}))) {
		for _, q := range []float64{0, 0.02, 0.05, 0.1, 0.25, 0.5} {
			fmt.Printf("%3d rounds, quantile %.2f:", nr, q)
			for r := 1; r < reps; r++ {
				fa, fb := figures(floors[r-1], nr, q), figures(floors[r], nr, q)
				ra, rb := (fa[0]+fa[1])/2, (fb[0]+fb[1])/2
				var moves, rmoves []float64
				for i := 2; i < len(fa); i++ {
					moves = append(moves, abs(fb[i]/fa[i]-1))
					rmoves = append(rmoves, abs((fb[i]/rb)/(fa[i]/ra)-1))
				}
				slices.Sort(moves)
				fmt.Printf("  | %2d/%d ±5%%, median %.1f%%, worst %.1f%%, ratios %2d ±3%%", count(moves, 0.05), n,
					100*moves[len(moves)/2], 100*moves[len(moves)-1], count(rmoves, 0.03))
			}
			fmt.Println()
		}
	}
	return nil
}

// figures is each subject's q-quantile of its first nr floors.
func figures(fl [][]time.Duration, nr int, q float64) []float64 {
	out := make([]float64, len(fl))
	for i, f := range fl {
		s := slices.Clone(f[:min(nr, len(f))])
		slices.Sort(s)
		pos := q * float64(len(s)-1)
		j := int(pos)
		v := float64(s[j])
		if j+1 < len(s) {
			v += (pos - float64(j)) * float64(s[j+1]-s[j])
		}
		out[i] = v
	}
	return out
}

func count(v []float64, limit float64) int {
	c := 0
	for _, x := range v {
		if x <= limit {
			c++
		}
	}
	return c
}

func abs(x float64) float64 { return max(x, -x) }
