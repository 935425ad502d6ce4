package main

import (
	"context"
	"errors"
	"path/filepath"
	"strings"

	"hwnas/store"
)

// trialFlagHelp is the help of every --trial flag.
const trialFlagHelp = "the trial, as searches, best, pareto and trials name it: STUDY/N, or N with --study (or when the database holds one study)"

// resolveTrial returns the trial that --trial (a name, store.TrialName, or
// a number in --study) or --trial-id (the database id, which hwnas trials
// --json and best --json show as id and trial_id) names in db. A number
// without a study is taken in the database's only study; with several it
// is bad input listing them. Every failure to find the trial is bad input.
func resolveTrial(ctx context.Context, db *store.DB, study, trial string, id int64) (store.Trial, error) {
	switch {
	case trial != "" && id != 0:
		return store.Trial{}, badInputf("give --trial or --trial-id, not both")
	case id != 0:
		tr, err := db.GetTrial(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return store.Trial{}, badInputf("--trial-id %d: no trial with that database id in %s (--trial takes the name STUDY/N that searches and hwnas best show)", id, db.Path())
		}
		if err == nil && study != "" && tr.Study != study {
			return store.Trial{}, badInputf("--trial-id %d is trial %s, not in study %q", id, tr.Name(), study)
		}
		return tr, err
	case trial == "":
		return store.Trial{}, badInputf("--trial: give the trial to use (STUDY/N, as hwnas best and the search's summary name it)")
	}
	s, n, err := store.ParseTrialName(trial)
	if err != nil {
		return store.Trial{}, badInputf("--trial: %v", err)
	}
	switch {
	case s != "" && study != "" && s != study:
		return store.Trial{}, badInputf("--trial %s is in study %q, but --study says %q", trial, s, study)
	case s == "":
		s = study
	}
	if s == "" {
		ss, err := db.ListStudies(ctx)
		if err != nil {
			return store.Trial{}, err
		}
		if len(ss) != 1 {
			names := make([]string, len(ss))
			for i, st := range ss {
				names[i] = st.Name
			}
			return store.Trial{}, badInputf("--trial %d is a trial number and %s holds %d studies (%s): give --study or write STUDY/%d",
				n, db.Path(), len(ss), strings.Join(names, ", "), n)
		}
		s = ss[0].Name
	}
	tr, err := db.TrialByNumber(ctx, s, n)
	if errors.Is(err, store.ErrNotFound) {
		return store.Trial{}, badInputf("--trial: %v", err)
	}
	return tr, err
}

// dbName is how a file names the database it came from: a file's base
// name (not the folder it was in), a URL as given (its password hidden).
func dbName(db *store.DB) string {
	if store.IsURL(db.Path()) {
		return db.Path()
	}
	return filepath.Base(db.Path())
}
