package remote

import (
	"errors"
	"fmt"
	"io"
	"time"

	"hwnas/accel"
)

// Remote is implemented by backends that forward to a worker process. Serve
// refuses to serve one, so a worker never starts a worker of its own.
type Remote interface {
	RemoteWorker() string
}

// Serve is the worker side of the protocol: it writes the hello to w, then
// answers the requests it reads from r with the backend reg opens, until a
// close request or the end of r. Errors of single requests (a bad plan, a
// failed run) go back to the client and serving goes on; Serve returns an
// error only when the stream itself fails.
func Serve(r io.Reader, w io.Writer, reg accel.Registration) error {
	if err := writeFrame(w, &response{Magic: magic}); err != nil {
		return fmt.Errorf("worker hello: %w", err)
	}
	s := &server{reg: reg, programs: map[int]accel.Program{}}
	defer s.shutdown()
	for {
		var req request
		if err := readFrame(r, &req, maxFrame); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("worker: read request: %w", err)
		}
		resp, err := s.handle(&req)
		if err != nil {
			resp = &response{Err: err.Error()}
		}
		if err := writeFrame(w, resp); err != nil {
			return fmt.Errorf("worker: write %s response: %w", req.Kind, err)
		}
		if req.Kind == kindClose {
			return nil
		}
	}
}

type server struct {
	reg      accel.Registration
	backend  accel.Backend
	programs map[int]accel.Program
	next     int
}

func (s *server) shutdown() {
	for id, p := range s.programs {
		p.Close()
		delete(s.programs, id)
	}
	if s.backend != nil {
		s.backend.Close()
		s.backend = nil
	}
}

func (s *server) program(id int) (accel.Program, error) {
	p, ok := s.programs[id]
	if !ok {
		return nil, fmt.Errorf("no program %d (closed or never compiled)", id)
	}
	return p, nil
}

func (s *server) handle(req *request) (*response, error) {
	switch req.Kind {
	case kindDevices:
		if s.reg.Devices == nil {
			return nil, fmt.Errorf("backend %s cannot list devices", s.reg.Name)
		}
		d, err := s.reg.Devices()
		if err != nil {
			return nil, err
		}
		return &response{Devices: d}, nil
	case kindOpen:
		if s.backend != nil {
			return nil, fmt.Errorf("backend %s is already open", s.reg.Name)
		}
		b, err := s.reg.Open(req.Options)
		if err != nil {
			return nil, err
		}
		if rb, ok := b.(Remote); ok {
			b.Close()
			return nil, fmt.Errorf("backend %s is itself a worker client (%s): this binary cannot serve it", s.reg.Name, rb.RemoteWorker())
		}
		s.backend = b
		return &response{Device: b.Device()}, nil
	case kindClose:
		s.shutdown()
		return &response{}, nil
	}
	if s.backend == nil {
		return nil, fmt.Errorf("%s: backend %s is not open", req.Kind, s.reg.Name)
	}
	switch req.Kind {
	case kindCompile:
		if req.Plan == nil {
			return nil, errors.New("compile: no plan")
		}
		p, err := s.backend.Compile(req.Plan, req.Batch)
		if err != nil {
			return nil, err
		}
		s.next++
		s.programs[s.next] = p
		_, opTimed := p.(accel.OpTimedProgram)
		return &response{Program: s.next, Batch: p.Batch(), InputSize: p.InputSize(), OutputSize: p.OutputSize(), OpTimed: opTimed}, nil
	case kindRun:
		p, err := s.program(req.Program)
		if err != nil {
			return nil, err
		}
		out := make([]float32, p.Batch()*p.OutputSize())
		resp := &response{Out: out}
		if tp, ok := p.(accel.TimedProgram); ok && req.Timed {
			resp.Elapsed, err = tp.RunTimed(req.In, out)
		} else {
			t0 := time.Now()
			err = p.Run(req.In, out)
			if req.Timed {
				resp.Elapsed = time.Since(t0)
			}
		}
		if err != nil {
			return nil, err
		}
		return resp, nil
	case kindOpTimed:
		p, err := s.program(req.Program)
		if err != nil {
			return nil, err
		}
		ot, ok := p.(accel.OpTimedProgram)
		if !ok {
			return nil, fmt.Errorf("program %d cannot time its ops", req.Program)
		}
		if req.Ops < 0 || req.Ops > 1<<20 {
			return nil, fmt.Errorf("optimed: %d ops", req.Ops)
		}
		resp := &response{Out: make([]float32, p.Batch()*p.OutputSize()), PerOp: make([]time.Duration, req.Ops)}
		if err := ot.RunOpTimed(req.In, resp.Out, resp.PerOp); err != nil {
			return nil, err
		}
		return resp, nil
	case kindMeasure:
		p, err := s.program(req.Program)
		if err != nil {
			return nil, err
		}
		m, err := accel.Measure(s.backend, p, req.In, req.Latency)
		if err != nil {
			return nil, err
		}
		return &response{Measurement: m}, nil
	case kindFree:
		p, err := s.program(req.Program)
		if err != nil {
			return nil, err
		}
		delete(s.programs, req.Program)
		return &response{}, p.Close()
	}
	return nil, fmt.Errorf("unknown request kind %q", req.Kind)
}
