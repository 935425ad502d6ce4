package search

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// QuietSlot gives one trial process of this machine at a time a quiet
// moment to measure latency: while it measures, every other trial process
// started through the slot is stopped (SIGSTOP to its process group) and
// continued (SIGCONT) when the measurement ends. Training in parallel
// thus never shares the caches, memory bandwidth or cores of a
// measurement, and a trial measured during an 8-worker search gets the
// figure it gets alone. Stopping is cheap: a measurement takes well under
// a second; a process started while another measures is stopped at once.
type QuietSlot struct {
	turn sync.Mutex // held by the measuring process's relay for the whole measurement

	mu      sync.Mutex
	procs   map[int]bool // process groups of live trial processes
	holder  int          // process group measuring now (0: none)
	stopped []int
	// Measured counts measurements (a figure for tests and logs).
	Measured int
}

// NewQuietSlot returns an idle slot.
func NewQuietSlot() *QuietSlot { return &QuietSlot{procs: map[int]bool{}} }

func (q *QuietSlot) add(pg int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.procs[pg] = true
	if q.holder != 0 {
		if syscall.Kill(-pg, syscall.SIGSTOP) == nil {
			q.stopped = append(q.stopped, pg)
		}
	}
}

func (q *QuietSlot) remove(pg int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.procs, pg)
}

// begin waits for the turn, then stops every other trial process.
func (q *QuietSlot) begin(pg int) {
	q.turn.Lock()
	q.mu.Lock()
	defer q.mu.Unlock()
	q.holder = pg
	for p := range q.procs {
		if p != pg && syscall.Kill(-p, syscall.SIGSTOP) == nil {
			q.stopped = append(q.stopped, p)
		}
	}
}

// end continues the stopped processes and passes the turn on.
func (q *QuietSlot) end() {
	q.mu.Lock()
	for _, p := range q.stopped {
		syscall.Kill(-p, syscall.SIGCONT)
	}
	q.stopped, q.holder = nil, 0
	q.Measured++
	q.mu.Unlock()
	q.turn.Unlock()
}

// The child's side: QuietEnv names the descriptors of the two pipes to
// the parent ("REQUEST,GRANT"). The child writes 'b' and waits for a byte
// on GRANT before measuring, and writes 'e' after.
const QuietEnv = "HWNAS_QUIET_FDS"

// quietFiles are the child's ends of the pipes (the first two ExtraFiles,
// descriptors 3 and 4).
type quietPipes struct {
	reqR, reqW, grantR, grantW *os.File
}

func newQuietPipes() (*quietPipes, error) {
	reqR, reqW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	grantR, grantW, err := os.Pipe()
	if err != nil {
		reqR.Close()
		reqW.Close()
		return nil, err
	}
	return &quietPipes{reqR, reqW, grantR, grantW}, nil
}

// relay serves the child's requests until it exits (EOF), ending a turn
// it held when it dies mid-measurement.
func (p *quietPipes) relay(q *QuietSlot, pg int) {
	defer p.reqR.Close()
	defer p.grantW.Close()
	held := false
	buf := make([]byte, 1)
	for {
		if _, err := p.reqR.Read(buf); err != nil {
			if held {
				q.end()
			}
			return
		}
		switch buf[0] {
		case 'b':
			if !held {
				q.begin(pg)
				held = true
			}
			if _, err := p.grantW.Write([]byte{'g'}); err != nil {
				q.end()
				return
			}
		case 'e':
			if held {
				q.end()
				held = false
			}
		}
	}
}

// quietTurn, in a trial process started with QuietEnv, asks the parent
// for the quiet slot and returns the function that gives it back; without
// QuietEnv it does nothing.
func quietTurn() (func(), error) {
	v := os.Getenv(QuietEnv)
	if v == "" {
		return func() {}, nil
	}
	a, b, ok := strings.Cut(v, ",")
	rfd, err1 := strconv.Atoi(a)
	gfd, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil {
		return nil, fmt.Errorf("%s=%q: want two descriptors", QuietEnv, v)
	}
	req, grant := os.NewFile(uintptr(rfd), "quiet-request"), os.NewFile(uintptr(gfd), "quiet-grant")
	if _, err := req.Write([]byte{'b'}); err != nil {
		return nil, fmt.Errorf("quiet slot: %w", err)
	}
	if _, err := io.ReadFull(grant, make([]byte, 1)); err != nil {
		return nil, fmt.Errorf("quiet slot: %w", err)
	}
	return func() { req.Write([]byte{'e'}) }, nil
}

// QuietMode says when a machine's trial processes measure latency in one
// QuietSlot, the others stopped meanwhile.
type QuietMode string

const (
	// QuietAuto (the default): only when the slots share cores — not
	// pinned each to cores of its own (fewer cores than slots × threads,
	// or --no-pin), so that a measurement would share its core with a
	// training. Slots pinned to cores of their own share only caches,
	// memory and the clock, which the drift control (the probe measured
	// in the same rounds) divides out: on the 2-core development VM a
	// 2-worker search without the slot recorded every trial within ±5%
	// of a later quiet measure (24 of 24, median |difference| 0.4–0.7%,
	// as with the slot) and ran 4–8% more trials an hour, the slot's
	// pauses being 0.25 s of every trial for every other worker.
	QuietAuto QuietMode = "auto"
	// QuietOn: always (one measurement at a time, the others paused).
	QuietOn QuietMode = "on"
	// QuietOff: never.
	QuietOff QuietMode = "off"
)

// ParseQuietMode reads auto, on or off ("" is auto).
func ParseQuietMode(s string) (QuietMode, error) {
	switch m := QuietMode(s); m {
	case "", QuietAuto:
		return QuietAuto, nil
	case QuietOn, QuietOff:
		return m, nil
	}
	return "", fmt.Errorf("quiet mode %q: want auto, on or off", s)
}

// use says whether slots trial processes (pinned each to cores of its
// own or not) measure in a quiet slot, and why ("" is QuietAuto).
func (m QuietMode) use(slots int, pinned bool) (bool, string) {
	switch {
	case m == QuietOff:
		return false, "--quiet off"
	case m == QuietOn:
		return true, "--quiet on"
	case slots <= 1:
		return false, "one slot"
	case pinned:
		return false, "each slot pinned to cores of its own; the probe divides out what they share"
	}
	return true, "the slots share cores"
}
