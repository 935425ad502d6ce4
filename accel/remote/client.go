package remote

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"hwnas/accel"
)

// Config says how to start a worker: Path with Args (e.g. "cuda-worker",
// "--backend", "cuda"), plus Env entries appended to this process's
// environment.
type Config struct {
	Path string
	Args []string
	Env  []string
	// HelloTimeout bounds the wait for the worker's hello (default 2 min:
	// creating a CUDA context can take seconds).
	HelloTimeout time.Duration
}

// Conn is a running worker process. Its methods are safe for concurrent
// use; requests are answered one at a time. Once the stream fails (the
// worker crashed or was killed) every call returns the same error, which
// names the worker, its exit status and the tail of its stderr.
type Conn struct {
	cfg    Config
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout io.ReadCloser
	stderr *tailBuffer
	waited chan struct{} // closed when the process has exited
	werr   error         // Wait's result, set before waited is closed

	mu     sync.Mutex
	broken error
}

// Start starts the worker and reads its hello.
func Start(cfg Config) (*Conn, error) {
	if cfg.HelloTimeout <= 0 {
		cfg.HelloTimeout = 2 * time.Minute
	}
	cmd := exec.Command(cfg.Path, cfg.Args...)
	cmd.Env = append(append(os.Environ(), cfg.Env...), workerEnv+"=1")
	c := &Conn{cfg: cfg, cmd: cmd, stderr: &tailBuffer{max: 4096}, waited: make(chan struct{})}
	cmd.Stderr = c.stderr
	var err error
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	// An os.Pipe rather than StdoutPipe: Wait closes StdoutPipe's reader,
	// and the output of a worker that exits at once must stay readable.
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	c.stdout, cmd.Stdout = pr, pw
	err = cmd.Start()
	pw.Close()
	if err != nil {
		pr.Close()
		return nil, fmt.Errorf("start worker %s: %w", cfg.Path, err)
	}
	go func() {
		err := cmd.Wait()
		c.werr = err
		close(c.waited)
	}()

	hello := make(chan error, 1)
	var resp response
	go func() { hello <- readFrame(c.stdout, &resp, maxHello) }()
	select {
	case err = <-hello:
	case <-time.After(cfg.HelloTimeout):
		cmd.Process.Kill()
		err = fmt.Errorf("no hello within %v", cfg.HelloTimeout)
		<-hello
	}
	if err == nil && resp.Magic != magic {
		err = fmt.Errorf("hello %q, want %q", resp.Magic, magic)
	}
	if err != nil {
		var fe *frameError
		var text []byte
		if errors.As(err, &fe) {
			// Not our protocol: whatever it prints until it exits is
			// the reason (gorgonia.org/cu prints and exits 1).
			err = errors.New("printed text instead of the protocol's hello")
			select {
			case <-c.waited:
			case <-time.After(2 * time.Second):
			}
			cmd.Process.Kill()
			<-c.waited
			text = fe.Data
			rest, _ := io.ReadAll(io.LimitReader(c.stdout, 4096))
			text = append(text, rest...)
		} else {
			cmd.Process.Kill()
			<-c.waited
		}
		c.stdout.Close()
		return nil, c.failure("did not start", err, text)
	}
	return c, nil
}

// failure builds the error for a worker that stopped speaking the protocol.
func (c *Conn) failure(what string, err error, stdout []byte) error {
	var b strings.Builder
	fmt.Fprintf(&b, "worker %s %s: %v", c.cfg.Path, what, err)
	select {
	case <-c.waited:
		if c.werr != nil {
			fmt.Fprintf(&b, " (%v)", c.werr)
		} else {
			b.WriteString(" (exited with status 0)")
		}
	case <-time.After(2 * time.Second):
	}
	out := strings.TrimSpace(string(stdout) + "\n" + c.stderr.String())
	if out != "" {
		fmt.Fprintf(&b, ": %s", out)
	}
	return errors.New(b.String())
}

// call sends req and reads its response; an error the worker reports comes
// back as an error, the stream's failure as a sticky one.
func (c *Conn) call(req *request) (*response, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken != nil {
		return nil, c.broken
	}
	var resp response
	err := writeFrame(c.stdin, req)
	if err == nil {
		err = readFrame(c.stdout, &resp, maxFrame)
	}
	if err != nil {
		switch {
		case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, os.ErrClosed):
			// os.ErrClosed: cmd.Wait already closed the pipes of a worker that died.
			err = errors.New("worker exited")
		case errors.Is(err, syscall.EPIPE):
			err = errors.New("worker exited (its stdin is closed)")
		}
		c.stdin.Close()
		c.cmd.Process.Kill()
		c.broken = c.failure("failed during "+req.Kind, err, nil)
		return nil, c.broken
	}
	if resp.Err != "" {
		return nil, errors.New(resp.Err)
	}
	return &resp, nil
}

// Devices asks the worker for its backend's devices.
func (c *Conn) Devices() ([]accel.Device, error) {
	resp, err := c.call(&request{Kind: kindDevices})
	if err != nil {
		return nil, err
	}
	return resp.Devices, nil
}

// Close asks the worker to exit and waits for it (killing it after 10 s).
func (c *Conn) Close() error {
	c.mu.Lock()
	broken := c.broken
	c.mu.Unlock()
	if broken == nil {
		c.call(&request{Kind: kindClose})
	}
	c.stdin.Close()
	select {
	case <-c.waited:
	case <-time.After(10 * time.Second):
		c.cmd.Process.Kill()
		<-c.waited
	}
	c.stdout.Close()
	return nil
}

// Pid is the worker's process id.
func (c *Conn) Pid() int { return c.cmd.Process.Pid }

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(bytes.ToValidUTF8(t.buf, []byte("?")))
}
