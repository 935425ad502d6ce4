package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// A trial is named to people by its study and its number in the study,
// "quickstart/9": searches log it, best, pareto and trials show it, and
// export and measure take it. The database id (Trial.ID, unique across
// studies) is internal; messages that must show it say "trial id".

// TrialName returns the name of trial number in study.
func TrialName(study string, number int) string { return study + "/" + strconv.Itoa(number) }

// Name returns the trial's name (TrialName).
func (t Trial) Name() string { return TrialName(t.Study, t.Number) }

// Name returns the result's trial name (TrialName).
func (r Result) Name() string { return TrialName(r.Study, r.Number) }

// ParseTrialName reads "STUDY/N" (split at the last "/", so study names
// may hold one) or a bare "N", whose study is "".
func ParseTrialName(s string) (study string, number int, err error) {
	num := s
	if i := strings.LastIndexByte(s, '/'); i >= 0 {
		study, num = s[:i], s[i+1:]
		if study == "" {
			return "", 0, fmt.Errorf("trial %q: the study before %q is empty", s, "/")
		}
	}
	number, err = strconv.Atoi(num)
	if err != nil || number < 0 {
		return "", 0, fmt.Errorf("trial %q: want a trial number N or STUDY/N (as searches and hwnas best name trials)", s)
	}
	return study, number, nil
}

// TrialByNumber returns trial number of study, with its metrics and
// latencies; an unknown study or number is ErrNotFound.
func (d *DB) TrialByNumber(ctx context.Context, study string, number int) (Trial, error) {
	s, err := d.GetStudy(ctx, study)
	if err != nil {
		return Trial{}, err
	}
	ts, err := d.ListTrials(ctx, s.ID, TrialFilter{From: number, Below: number + 1})
	if err != nil {
		return Trial{}, err
	}
	if len(ts) == 0 {
		has := "no trials yet"
		if n, _ := d.NextTrialNumber(ctx, s.ID); n > 0 {
			has = fmt.Sprintf("trials 0 to %d", n-1)
		}
		return Trial{}, fmt.Errorf("trial %s: %w in %s (study %q has %s)", TrialName(study, number), ErrNotFound, d.path, study, has)
	}
	return ts[0], nil
}
