package main

import (
	"encoding/json"
	"io"
	"strings"

	"github.com/spf13/cobra"
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
