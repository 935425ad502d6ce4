package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"hwnas/accel"
)

type devicesOptions struct {
	JSON    bool
	Threads int
}

// backendDevices is one registered backend and its devices, or the reason
// it has none (e.g. "built without CUDA support").
type backendDevices struct {
	Backend     string         `json:"backend"`
	Devices     []accel.Device `json:"devices"`
	Unavailable string         `json:"unavailable,omitempty"`
}

func init() {
	opts := devicesOptions{}
	cmd := &cobra.Command{
		Use:   "devices",
		Short: "List the devices of every backend",
		Long: `devices lists each registered backend's devices with what determines their
speed (cores, ISA features and the kernel level in use, GPU memory, compute
capability, driver) and the fingerprint results are grouped by. A backend
with no usable device says why.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDevices(cmd.Context(), cmd.OutOrStdout(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print JSON")
	cmd.Flags().IntVar(&opts.Threads, "threads", 0, "describe the CPU as hwnas runs it with this many threads (the fingerprint a search or measure --threads N records; 0: all cores)")
	rootCmd.AddCommand(cmd)
}

func runDevices(_ context.Context, w io.Writer, opts devicesOptions) error {
	if opts.Threads < 0 {
		return badInputf("--threads %d must not be negative", opts.Threads)
	}
	list := collectDevices(accel.Registered(), accel.Lookup)
	for i := range list {
		if list[i].Backend == "cpu" && opts.Threads > 0 && list[i].Unavailable == "" {
			be, err := accel.Open("cpu", accel.Options{Threads: opts.Threads})
			if err != nil {
				return err
			}
			list[i].Devices = []accel.Device{be.Device()}
			be.Close()
		}
	}
	if opts.JSON {
		return writeJSON(w, list)
	}
	return printDevices(w, list)
}

// collectDevices asks each named backend for its devices; an error or an
// empty list becomes the backend's Unavailable reason.
func collectDevices(names []string, lookup func(string) (accel.Registration, error)) []backendDevices {
	out := make([]backendDevices, 0, len(names))
	for _, name := range names {
		b := backendDevices{Backend: name, Devices: []accel.Device{}}
		r, err := lookup(name)
		switch {
		case err != nil:
			b.Unavailable = err.Error()
		case r.Devices == nil:
			b.Unavailable = "the backend does not list devices"
		default:
			devs, err := r.Devices()
			switch {
			case err != nil:
				b.Unavailable = err.Error()
			case len(devs) == 0:
				b.Unavailable = "no devices found"
			default:
				b.Devices = devs
			}
		}
		out = append(out, b)
	}
	return out
}

func printDevices(w io.Writer, list []backendDevices) error {
	if len(list) == 0 {
		_, err := fmt.Fprintln(w, "no backends registered")
		return err
	}
	for _, b := range list {
		if b.Unavailable != "" {
			fmt.Fprintf(w, "%s: unavailable: %s\n", b.Backend, b.Unavailable)
			continue
		}
		for _, d := range b.Devices {
			fmt.Fprintf(w, "%s:%d  %s\n", b.Backend, d.Index, d.Name)
			fmt.Fprintf(w, "    fingerprint  %s\n", d.Fingerprint)
			if d.Cores > 0 {
				fmt.Fprintf(w, "    cores        %d\n", d.Cores)
			}
			if d.ISA != "" {
				fmt.Fprintf(w, "    kernels      %s\n", d.ISA)
			}
			if len(d.Features) > 0 {
				fmt.Fprintf(w, "    features     %s\n", strings.Join(d.Features, " "))
			}
			if d.MemoryBytes > 0 {
				fmt.Fprintf(w, "    memory       %.1f GiB\n", float64(d.MemoryBytes)/(1<<30))
			}
			if d.ComputeCapability != "" {
				fmt.Fprintf(w, "    compute      sm_%s\n", strings.ReplaceAll(d.ComputeCapability, ".", ""))
			}
			if d.SMClockMHz > 0 {
				fmt.Fprintf(w, "    sm clock     %d MHz\n", d.SMClockMHz)
			}
			if d.Driver != "" {
				fmt.Fprintf(w, "    driver       %s\n", d.Driver)
			}
			if d.UUID != "" {
				fmt.Fprintf(w, "    uuid         %s\n", d.UUID)
			}
		}
	}
	return nil
}
