package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// helperProcs are copies of this test binary, each running one helper test
// (a reader querying a database in a loop) until the file stop exists. A
// helper creates stop+".ready.<pid>" once it runs.
type helperProcs struct {
	stop string
	cmds []*exec.Cmd
	outs []*bytes.Buffer
}

// startHelperProcs starts n helpers running the test named run with the
// extra environment env, and waits up to wait until all are ready. They are
// killed when the test ends unless finish stopped them first.
func startHelperProcs(t *testing.T, n int, run string, env []string, stop string, wait time.Duration) *helperProcs {
	t.Helper()
	h := &helperProcs{stop: stop}
	t.Cleanup(h.kill)
	for range n {
		cmd := exec.Command(os.Args[0], "-test.run=^"+run+"$")
		cmd.Env = append(os.Environ(), env...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		h.cmds, h.outs = append(h.cmds, cmd), append(h.outs, &out)
	}
	for start := time.Now(); ; time.Sleep(20 * time.Millisecond) {
		if ready, _ := filepath.Glob(stop + ".ready.*"); len(ready) == n {
			return h
		}
		if time.Since(start) > wait {
			t.Fatalf("the %s processes did not start within %v", run, wait)
		}
	}
}

// finish tells the helpers to stop, waits for them, and returns each one's
// exit error and output.
func (h *helperProcs) finish() ([]error, []string) {
	os.WriteFile(h.stop, nil, 0o644)
	errs, outs := make([]error, len(h.cmds)), make([]string, len(h.cmds))
	for i, c := range h.cmds {
		errs[i] = c.Wait()
		outs[i] = h.outs[i].String()
	}
	h.cmds = nil
	return errs, outs
}

func (h *helperProcs) kill() {
	os.WriteFile(h.stop, nil, 0o644)
	for _, c := range h.cmds {
		c.Process.Kill()
		c.Wait()
	}
}
