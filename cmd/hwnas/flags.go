package main

import (
	"encoding/json"
	"hwnas/search"
	"io"
	"os"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

func init() {
	// Flag parse errors are usage errors.
	rootCmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return badInput(err) })
}

// isFlagError recognises cobra's own argument errors (unknown command,
// wrong argument count), which do not pass through the flag error func.
func isFlagError(err error) bool {
	s := err.Error()
	return strings.HasPrefix(s, "unknown command") || strings.HasPrefix(s, "unknown flag") ||
		strings.Contains(s, "arg(s)") || strings.HasPrefix(s, "required flag")
}

// writeJSON writes v as indented JSON followed by a newline.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// stderrBar returns a progress bar of n steps on stderr when stderr is a
// terminal, and a silent one otherwise (logs and pipes get no bar).
func stderrBar(n int, desc string) *progressbar.ProgressBar {
	if !term.IsTerminal(int(os.Stderr.Fd())) {
		return progressbar.DefaultSilent(int64(n), desc)
	}
	return progressbar.NewOptions(n, progressbar.OptionSetWriter(os.Stderr), progressbar.OptionSetDescription(desc),
		progressbar.OptionShowCount(), progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish())
}

// quietFlag is the quiet mode of --quiet and --no-quiet (the old spelling
// of --quiet off, which wins), a usage error for an unknown mode.
func quietFlag(quiet string, noQuiet bool) (search.QuietMode, error) {
	if noQuiet {
		return search.QuietOff, nil
	}
	m, err := search.ParseQuietMode(quiet)
	if err != nil {
		return "", badInputf("--quiet: %v", err)
	}
	return m, nil
}
