// Package testproc runs copies of the test binary as helper processes (a
// reader querying a database in a loop while the test writes, say), for
// the tests of cmd/hwnas and store. A helper is the same binary started
// with arguments that select its role (a -test.run pattern, an environment
// variable the test's TestMain reads); it calls Ready once it runs and
// stops when the stop file appears (Stopped).
package testproc

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// Procs are running helper processes.
type Procs struct {
	stop string
	cmds []*exec.Cmd
	outs []*bytes.Buffer
}

// Start starts n copies of this test binary with args (such as
// "-test.run=^TestHelper$") and the extra environment env, and waits up to
// wait until every one has called Ready(stop). They are killed when the
// test ends unless Finish stopped them first.
func Start(t testing.TB, n int, args, env []string, stop string, wait time.Duration) *Procs {
	t.Helper()
	p := &Procs{stop: stop}
	t.Cleanup(p.kill)
	for range n {
		cmd := exec.Command(os.Args[0], args...)
		cmd.Env = append(os.Environ(), env...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		p.cmds, p.outs = append(p.cmds, cmd), append(p.outs, &out)
	}
	for start := time.Now(); ; time.Sleep(20 * time.Millisecond) {
		ready, _ := filepath.Glob(stop + ".ready.*")
		if len(ready) == n {
			return p
		}
		if time.Since(start) > wait {
			t.Fatalf("%d of %d helper processes %v started within %v", len(ready), n, args, wait)
		}
	}
}

// Ready is called by a helper once it runs: it creates stop+".ready.PID".
func Ready(stop string) {
	os.WriteFile(stop+".ready."+strconv.Itoa(os.Getpid()), nil, 0o644)
}

// Stopped reports whether the helpers were told to stop.
func Stopped(stop string) bool {
	_, err := os.Stat(stop)
	return err == nil
}

// Finish tells the helpers to stop, waits for them, and returns each one's
// exit error and output.
func (p *Procs) Finish() ([]error, []string) {
	os.WriteFile(p.stop, nil, 0o644)
	errs, outs := make([]error, len(p.cmds)), make([]string, len(p.cmds))
	for i, c := range p.cmds {
		errs[i] = c.Wait()
		outs[i] = p.outs[i].String()
	}
	p.cmds = nil
	return errs, outs
}

func (p *Procs) kill() {
	os.WriteFile(p.stop, nil, 0o644)
	for _, c := range p.cmds {
		c.Process.Kill()
		c.Wait()
	}
}
