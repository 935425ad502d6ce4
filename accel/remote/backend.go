package remote

import (
	"fmt"
	"time"

	"hwnas/accel"
)

// Backend is an accel.Backend whose programs run in a worker process. It
// implements Remote.
type Backend struct {
	name   string
	conn   *Conn
	device accel.Device
}

// Open starts a worker with cfg and opens its backend with opt. name is what
// Name reports (the backend the worker serves, e.g. "cuda").
func Open(name string, cfg Config, opt accel.Options) (*Backend, error) {
	c, err := Start(cfg)
	if err != nil {
		return nil, err
	}
	resp, err := c.call(&request{Kind: kindOpen, Options: opt})
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("open %s:%d in worker: %w", name, opt.Index, err)
	}
	return &Backend{name: name, conn: c, device: resp.Device}, nil
}

// Name is the name of the backend the worker serves.
func (b *Backend) Name() string { return b.name }

// Device describes the worker's device.
func (b *Backend) Device() accel.Device { return b.device }

// RemoteWorker names the worker binary and its process id.
func (b *Backend) RemoteWorker() string {
	return fmt.Sprintf("%s (pid %d)", b.conn.cfg.Path, b.conn.Pid())
}

// Conn is the worker connection.
func (b *Backend) Conn() *Conn { return b.conn }

// Compile sends p to the worker, which compiles it for batch samples.
func (b *Backend) Compile(p *accel.Plan, batch int) (accel.Program, error) {
	if p == nil {
		return nil, fmt.Errorf("compile: nil plan")
	}
	resp, err := b.conn.call(&request{Kind: kindCompile, Plan: p, Batch: batch})
	if err != nil {
		return nil, err
	}
	prog := &Program{conn: b.conn, id: resp.Program, batch: resp.Batch, inSize: resp.InputSize, outSize: resp.OutputSize}
	if resp.OpTimed {
		return &OpTimedProgram{prog}, nil
	}
	return prog, nil
}

// Close closes the backend and its programs and ends the worker.
func (b *Backend) Close() error { return b.conn.Close() }

// Program is a program compiled in a worker. It implements
// accel.TimedProgram (the worker's device timing when its program has one,
// otherwise the worker's host clock around Run, so the protocol's transfer
// is never counted) and accel.ProgramMeasurer.
type Program struct {
	conn                   *Conn
	id                     int
	batch, inSize, outSize int
}

func (p *Program) Batch() int      { return p.batch }
func (p *Program) InputSize() int  { return p.inSize }
func (p *Program) OutputSize() int { return p.outSize }

func (p *Program) check(in, out []float32) error {
	if len(in) != p.batch*p.inSize {
		return fmt.Errorf("run: input has %d floats, want %d", len(in), p.batch*p.inSize)
	}
	if out != nil && len(out) != p.batch*p.outSize {
		return fmt.Errorf("run: output has %d floats, want %d", len(out), p.batch*p.outSize)
	}
	return nil
}

func (p *Program) run(in, out []float32, timed bool) (time.Duration, error) {
	if err := p.check(in, out); err != nil {
		return 0, err
	}
	resp, err := p.conn.call(&request{Kind: kindRun, Program: p.id, In: in, Timed: timed})
	if err != nil {
		return 0, err
	}
	if len(resp.Out) != len(out) {
		return 0, fmt.Errorf("run: worker returned %d floats, want %d", len(resp.Out), len(out))
	}
	copy(out, resp.Out)
	return resp.Elapsed, nil
}

// Run runs the program in the worker.
func (p *Program) Run(in, out []float32) error {
	_, err := p.run(in, out, false)
	return err
}

// RunTimed runs the program and returns the worker's timing of the run.
func (p *Program) RunTimed(in, out []float32) (time.Duration, error) {
	return p.run(in, out, true)
}

// Measure runs accel.Measure in the worker.
func (p *Program) Measure(in []float32, opt accel.LatencyOptions) (accel.Measurement, error) {
	if err := p.check(in, nil); err != nil {
		return accel.Measurement{}, err
	}
	resp, err := p.conn.call(&request{Kind: kindMeasure, Program: p.id, In: in, Latency: opt})
	if err != nil {
		return accel.Measurement{}, err
	}
	return resp.Measurement, nil
}

// Close frees the program in the worker.
func (p *Program) Close() error {
	_, err := p.conn.call(&request{Kind: kindFree, Program: p.id})
	return err
}

// OpTimedProgram is a Program whose program in the worker times its ops:
// it implements accel.OpTimedProgram too.
type OpTimedProgram struct{ *Program }

// RunOpTimed runs the program in the worker, which times each op.
func (p *OpTimedProgram) RunOpTimed(in, out []float32, perOp []time.Duration) error {
	if err := p.check(in, out); err != nil {
		return err
	}
	resp, err := p.conn.call(&request{Kind: kindOpTimed, Program: p.id, In: in, Ops: len(perOp)})
	if err != nil {
		return err
	}
	if len(resp.Out) != len(out) || len(resp.PerOp) != len(perOp) {
		return fmt.Errorf("run op-timed: worker returned %d floats and %d op times, want %d and %d", len(resp.Out), len(resp.PerOp), len(out), len(perOp))
	}
	copy(out, resp.Out)
	copy(perOp, resp.PerOp)
	return nil
}
