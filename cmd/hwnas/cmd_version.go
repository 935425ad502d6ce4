package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

type versionOptions struct{ JSON bool }

func init() {
	var opts versionOptions
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the hwnas version and build facts",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runVersion(cmd.OutOrStdout(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print JSON")
	rootCmd.AddCommand(cmd)
}

func runVersion(w io.Writer, opts versionOptions) error {
	info := map[string]string{"version": version, "go": runtime.Version(), "os_arch": runtime.GOOS + "/" + runtime.GOARCH, "cuda": cudaBuild}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				info["commit"] = s.Value
			}
		}
	}
	if opts.JSON {
		return writeJSON(w, info)
	}
	_, err := fmt.Fprintf(w, "hwnas %s (%s, %s, cuda: %s)\n", info["version"], info["go"], info["os_arch"], info["cuda"])
	return err
}
