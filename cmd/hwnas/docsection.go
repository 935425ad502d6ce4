package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"hwnas/internal/atomicfile"
)

// Generated documents (docs/RESULTS.md, docs/SEARCH.md) hold one section
// per command that writes into them, between marker comments:
//
//	<!-- hwnas:begin NAME -->
//	...
//	<!-- hwnas:end NAME -->
//
// so that regenerating one section (say the VGG-16 / CIFAR-10 table)
// leaves the others as they were.

func sectionMarkers(name string) (begin, end string) {
	return "<!-- hwnas:begin " + name + " -->\n", "<!-- hwnas:end " + name + " -->\n"
}

// writeDocSection replaces the section called name in the Markdown file at
// path with body, or appends it when the file has no such section (a new
// file starts with preamble). The file is replaced atomically.
func writeDocSection(path, name, preamble string, body []byte) error {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if old == nil {
		old = []byte(preamble)
	}
	begin, end := sectionMarkers(name)
	section := append(append([]byte(begin), bytes.TrimRight(body, "\n")...), '\n')
	section = append(section, end...)
	var out []byte
	i := bytes.Index(old, []byte(begin))
	j := bytes.Index(old, []byte(end))
	switch {
	case i >= 0 && j > i:
		out = append(append(append([]byte(nil), old[:i]...), section...), old[j+len(end):]...)
	case i >= 0 || j >= 0:
		return fmt.Errorf("%s: the %q section's markers are broken (begin at %d, end at %d)", path, name, i, j)
	default:
		out = append(bytes.TrimRight(old, "\n"), '\n', '\n')
		out = append(out, section...)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return atomicfile.WriteFile(path, out, 0o644)
}
