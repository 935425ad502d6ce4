//go:build cuda

package cuda

import (
	_ "embed"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"
	"unsafe"

	"gorgonia.org/cu"

	"hwnas/accel"
)

// kernelImage is kernels.cu compiled by `make cuda` (SASS for sm_80 and
// sm_90, PTX for later GPUs); a build output, not in git.
//
//go:embed kernels.fatbin
var kernelImage string

// Built reports whether this binary contains the CUDA backend.
const Built = true

func init() {
	accel.Register(accel.Registration{Name: "cuda", Open: Open, Devices: Devices})
}

// devCtx runs every driver call of one backend on one goroutine locked to
// its OS thread, where the backend's context is current: CUDA contexts are
// per thread, and Go moves goroutines between threads.
type devCtx struct {
	mu     sync.RWMutex // held for reading by Do, for writing by close
	closed bool
	work   chan func()
	done   chan struct{}
}

// errClosed is returned by calls on a closed backend.
var errClosed = errors.New("cuda: backend is closed")

// startCtx creates a context on device ordinal on a new locked goroutine.
func startCtx(ordinal int) (*devCtx, error) {
	d := &devCtx{work: make(chan func()), done: make(chan struct{})}
	started := make(chan error)
	go func() {
		// The thread stays locked until the goroutine ends, which
		// retires it with the context.
		runtime.LockOSThread()
		defer close(d.done)
		dev, err := cu.GetDevice(ordinal)
		var ctx cu.CUContext
		if err == nil {
			ctx, err = dev.MakeContext(cu.SchedAuto)
		}
		started <- err
		if err != nil {
			return
		}
		for f := range d.work {
			f()
		}
		ctx.Destroy()
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("cuda:%d: create context: %w", ordinal, err)
	}
	return d, nil
}

// Do runs fn on the context's thread and returns its error.
func (d *devCtx) Do(fn func() error) error {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return errClosed
	}
	errc := make(chan error, 1)
	d.work <- func() { errc <- fn() }
	return <-errc
}

// close waits for the calls in flight, ends the thread and destroys the
// context.
func (d *devCtx) close() {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return
	}
	d.closed = true
	close(d.work)
	d.mu.Unlock()
	<-d.done
}

// cuMemory is the device side of the pool; called on the context thread.
type cuMemory struct{}

func (cuMemory) alloc(n int64) (uintptr, error) {
	p, err := cu.MemAlloc(n)
	return uintptr(p), err
}

func (cuMemory) free(p uintptr) error { return cu.MemFree(cu.DevicePtr(p)) }

// Backend runs plans on one NVIDIA GPU. It implements accel.Backend and
// accel.PowerMeter (through NVML).
type Backend struct {
	mu     sync.Mutex
	ctx    *devCtx
	mod    cu.Module
	fns    map[string]cu.Function
	stream cu.Stream
	pool   *pool
	lim    deviceLimits
	dev    accel.Device
	power  *powerMeter
	closed bool
}

// Devices lists the GPUs the driver sees.
func Devices() ([]accel.Device, error) {
	n, err := cu.NumDevices()
	if err != nil {
		return nil, fmt.Errorf("cuda: count devices: %w", err)
	}
	if n == 0 {
		return nil, errors.New("cuda: the driver sees no GPU")
	}
	out := make([]accel.Device, 0, n)
	for i := 0; i < n; i++ {
		d, _, err := describe(i)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// describe fills an accel.Device for ordinal i from the driver and NVML.
func describe(i int) (accel.Device, deviceLimits, error) {
	dev, err := cu.GetDevice(i)
	if err != nil {
		return accel.Device{}, deviceLimits{}, fmt.Errorf("cuda:%d: %w", i, err)
	}
	d := accel.Device{Backend: "cuda", Index: i}
	if d.Name, err = dev.Name(); err != nil {
		return d, deviceLimits{}, fmt.Errorf("cuda:%d: name: %w", i, err)
	}
	d.MemoryBytes, _ = dev.TotalMem()
	maj, _ := dev.Attribute(cu.ComputeCapabilityMajor)
	minor, _ := dev.Attribute(cu.ComputeCapabilityMinor)
	d.ComputeCapability = fmt.Sprintf("%d.%d", maj, minor)
	sms, _ := dev.Attribute(cu.MultiprocessorCount)
	if clk, err := dev.Attribute(cu.ClockRate); err == nil {
		d.SMClockMHz = clk / 1000
	}
	if u, err := dev.UUID(); err == nil {
		d.UUID = "GPU-" + u.String()
	}
	d.Driver = fmt.Sprintf("CUDA %d.%d", cu.Version()/1000, cu.Version()%1000/10)
	nvmlFacts(&d) // NVML's driver version, clock and name, where it answers
	d.Fingerprint = d.ComputeFingerprint()
	return d, deviceLimits{SMs: sms}, nil
}

// Open opens GPU opt.Index: a context on its own thread, the kernel image
// loaded, one stream.
func Open(opt accel.Options) (accel.Backend, error) {
	d, lim, err := describe(opt.Index)
	if err != nil {
		return nil, err
	}
	ctx, err := startCtx(opt.Index)
	if err != nil {
		return nil, err
	}
	b := &Backend{ctx: ctx, fns: map[string]cu.Function{}, lim: lim, dev: d, pool: newPool(cuMemory{})}
	err = ctx.Do(func() error {
		var err error
		if b.mod, err = cu.LoadData(kernelImage); err != nil {
			return fmt.Errorf("load kernel image (%d bytes): %w", len(kernelImage), err)
		}
		b.stream, err = cu.MakeStream(cu.NonBlocking)
		return err
	})
	if err != nil {
		ctx.close()
		return nil, fmt.Errorf("cuda:%d: %w", opt.Index, err)
	}
	b.power = openPowerMeter(d.UUID)
	return b, nil
}

// Name is "cuda".
func (b *Backend) Name() string { return "cuda" }

// Device describes the GPU.
func (b *Backend) Device() accel.Device { return b.dev }

// SamplePower implements accel.PowerMeter with NVML.
func (b *Backend) SamplePower(fn func() error) (accel.PowerStats, error) {
	if b.power == nil {
		return accel.PowerStats{}, errors.New("cuda: NVML cannot read this GPU's power")
	}
	return b.power.sample(fn)
}

// function returns kernel name from the image; on the context thread.
func (b *Backend) function(name string) (cu.Function, error) {
	if f, ok := b.fns[name]; ok {
		return f, nil
	}
	f, err := b.mod.Function(name)
	if err != nil {
		return cu.Function{}, fmt.Errorf("kernel %s: %w", name, err)
	}
	b.fns[name] = f
	return f, nil
}

// Close frees the backend's memory and context. Programs must be closed
// first.
func (b *Backend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	err := b.ctx.Do(func() error {
		b.pool.trim()
		b.stream.Destroy()
		return b.mod.Unload()
	})
	b.ctx.close()
	if b.power != nil {
		b.power.close()
	}
	return err
}

// boundLaunch is a launch with its arguments resolved to values.
type boundLaunch struct {
	fn    cu.Function
	l     launch
	vals  []uint64
	ptrs  []unsafe.Pointer
	label string
}

func (bl *boundLaunch) run(s cu.Stream) error {
	if err := bl.fn.Launch(bl.l.Grid[0], bl.l.Grid[1], bl.l.Grid[2], bl.l.Block[0], bl.l.Block[1], bl.l.Block[2], 0, s, bl.ptrs); err != nil {
		return fmt.Errorf("launch %s: %w", bl.label, err)
	}
	return nil
}

// Program is a plan compiled for the GPU: weights uploaded, activations in
// pooled buffers, every launch captured once into a CUDA graph that Run
// replays. It implements accel.TimedProgram (CUDA events around the graph)
// and accel.OpTimedProgram (events around each op's launches, outside the
// graph).
type Program struct {
	b                      *Backend
	lp                     *launchPlan
	nOps, input, output    int
	batch, inSize, outSize int
	bufs                   []uintptr // every pooled buffer, for Close
	inPtr, outPtr          uintptr
	launches               []*boundLaunch
	graph                  graphExec
	hin, hout              hostBuf
	start, stop            cu.Event
	opEvents               []cu.Event
	closed                 bool
}

// Compile plans p's launches for batch, uploads its weights, assigns its
// activations to reused buffers and captures the graph.
func (b *Backend) Compile(p *accel.Plan, batch int) (accel.Program, error) {
	lp, err := planLaunches(p, batch, b.lim)
	if err != nil {
		return nil, err
	}
	arena := planArena(lp, len(p.Ops), p.Input, p.Output)
	pr := &Program{b: b, lp: lp, nOps: len(p.Ops), input: p.Input, output: p.Output, batch: batch, inSize: p.Tensors[p.Input].Size(), outSize: p.Tensors[p.Output].Size()}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, errors.New("cuda: compile on a closed backend")
	}
	err = b.ctx.Do(func() error { return pr.build(arena) })
	if err != nil {
		b.ctx.Do(pr.release)
		return nil, fmt.Errorf("cuda: compile %q for batch %d: %w", p.Name, batch, err)
	}
	return pr, nil
}

// get takes a pooled buffer for the program; on the context thread.
func (pr *Program) get(n int64) (uintptr, error) {
	p, err := pr.b.pool.get(n)
	if err == nil {
		pr.bufs = append(pr.bufs, p)
	}
	return p, err
}

func (pr *Program) build(arena arenaPlan) error {
	b, lp := pr.b, pr.lp
	slots := make([]uintptr, len(arena.SlotBytes))
	for i, n := range arena.SlotBytes {
		var err error
		if slots[i], err = pr.get(max(n, 4)); err != nil {
			return err
		}
	}
	consts := make([]uintptr, len(lp.Consts))
	for i, c := range lp.Consts {
		p, err := pr.get(c.Bytes())
		if err != nil {
			return err
		}
		src := unsafe.Pointer(nil)
		if c.F32 != nil {
			src = unsafe.Pointer(&c.F32[0])
		} else {
			src = unsafe.Pointer(&c.I32[0])
		}
		if err := cu.MemcpyHtoD(cu.DevicePtr(p), src, c.Bytes()); err != nil {
			return fmt.Errorf("upload %s: %w", c.Name, err)
		}
		consts[i] = p
	}
	// Synchronous copies from pageable memory may return before their DMA
	// lands, and the program's stream does not wait for the null stream.
	if err := cu.Synchronize(); err != nil {
		return fmt.Errorf("upload weights: %w", err)
	}
	var scratch uintptr
	if lp.Scratch > 0 {
		var err error
		if scratch, err = pr.get(lp.Scratch); err != nil {
			return err
		}
	}
	tensorPtr := func(t int) (uintptr, error) {
		s := arena.Slot[t]
		if s < 0 {
			return 0, fmt.Errorf("tensor %d has no buffer", t)
		}
		return slots[s], nil
	}
	for _, l := range lp.Launches {
		fn, err := b.function(l.Kernel)
		if err != nil {
			return err
		}
		bl := &boundLaunch{fn: fn, l: l, vals: make([]uint64, len(l.Args)), label: fmt.Sprintf("%s (op %d)", l.Kernel, l.Op)}
		for i, a := range l.Args {
			switch a.Kind {
			case argInt:
				bl.vals[i] = uint64(a.V)
			case argTensor:
				p, err := tensorPtr(int(a.V))
				if err != nil {
					return err
				}
				bl.vals[i] = uint64(p)
			case argConst:
				bl.vals[i] = uint64(consts[a.V])
			case argScratch:
				bl.vals[i] = uint64(scratch) + uint64(a.V)
			case argNull:
			}
		}
		bl.ptrs = make([]unsafe.Pointer, len(bl.vals))
		for i := range bl.vals {
			bl.ptrs[i] = unsafe.Pointer(&bl.vals[i])
		}
		pr.launches = append(pr.launches, bl)
	}
	return pr.finish(tensorPtr)
}

func (pr *Program) finish(tensorPtr func(int) (uintptr, error)) error {
	var err error
	if pr.inPtr, err = tensorPtr(pr.input); err != nil {
		return err
	}
	if pr.outPtr, err = tensorPtr(pr.output); err != nil {
		return err
	}
	if pr.hin, err = allocHost(pr.batch * pr.inSize); err != nil {
		return err
	}
	if pr.hout, err = allocHost(pr.batch * pr.outSize); err != nil {
		return err
	}
	if pr.start, err = cu.MakeEvent(cu.DefaultEvent); err != nil {
		return err
	}
	if pr.stop, err = cu.MakeEvent(cu.DefaultEvent); err != nil {
		return err
	}
	pr.graph, err = captureGraph(pr.b.stream, func() error {
		for _, bl := range pr.launches {
			if err := bl.run(pr.b.stream); err != nil {
				return err
			}
		}
		return nil
	})
	return err
}

// release gives everything back; on the context thread.
func (pr *Program) release() error {
	err := pr.graph.destroy()
	pr.graph = graphExec{}
	for _, p := range pr.bufs {
		if e := pr.b.pool.put(p); e != nil && err == nil {
			err = e
		}
	}
	pr.bufs = nil
	pr.hin.free()
	pr.hout.free()
	pr.hin, pr.hout = hostBuf{}, hostBuf{}
	for _, e := range append([]cu.Event{pr.start, pr.stop}, pr.opEvents...) {
		if e != (cu.Event{}) {
			cu.DestroyEvent(&e)
		}
	}
	pr.opEvents = nil
	return err
}

func (pr *Program) Batch() int      { return pr.batch }
func (pr *Program) InputSize() int  { return pr.inSize }
func (pr *Program) OutputSize() int { return pr.outSize }

func (pr *Program) check(in, out []float32) error {
	if pr.closed {
		return errors.New("cuda: run of a closed program")
	}
	if len(in) != pr.batch*pr.inSize || len(out) != pr.batch*pr.outSize {
		return fmt.Errorf("cuda: run with %d inputs and %d outputs, want %d and %d", len(in), len(out), pr.batch*pr.inSize, pr.batch*pr.outSize)
	}
	return nil
}

// exec copies in to the device, runs body on the stream, copies the
// output back and waits; on the context thread.
func (pr *Program) exec(in, out []float32, body func() error) error {
	s := pr.b.stream
	copy(pr.hin.floats(), in)
	if err := copyHtoDAsync(pr.inPtr, pr.hin, s); err != nil {
		return err
	}
	if err := body(); err != nil {
		s.Synchronize()
		return err
	}
	if err := copyDtoHAsync(pr.hout, pr.outPtr, s); err != nil {
		return err
	}
	if err := s.Synchronize(); err != nil {
		return fmt.Errorf("cuda: run: %w", err)
	}
	copy(out, pr.hout.floats())
	return nil
}

// Run replays the graph on in.
func (pr *Program) Run(in, out []float32) error {
	if err := pr.check(in, out); err != nil {
		return err
	}
	return pr.b.ctx.Do(func() error {
		return pr.exec(in, out, func() error { return pr.graph.launch(pr.b.stream) })
	})
}

// RunTimed replays the graph and returns the time between CUDA events
// recorded before and after it: the kernels only, not the copies of the
// input and output.
func (pr *Program) RunTimed(in, out []float32) (time.Duration, error) {
	if err := pr.check(in, out); err != nil {
		return 0, err
	}
	var ms float64
	err := pr.b.ctx.Do(func() error {
		s := pr.b.stream
		err := pr.exec(in, out, func() error {
			if err := pr.start.Record(s); err != nil {
				return err
			}
			if err := pr.graph.launch(s); err != nil {
				return err
			}
			return pr.stop.Record(s)
		})
		if err != nil {
			return err
		}
		ms, err = pr.start.Elapsed(pr.stop)
		return err
	})
	return time.Duration(ms * float64(time.Millisecond)), err
}

// RunOpTimed launches the ops one by one (not as a graph) with events
// between them and writes each op's time to perOp.
func (pr *Program) RunOpTimed(in, out []float32, perOp []time.Duration) error {
	if err := pr.check(in, out); err != nil {
		return err
	}
	if len(perOp) != pr.nOps {
		return fmt.Errorf("cuda: %d per-op durations for %d ops", len(perOp), pr.nOps)
	}
	return pr.b.ctx.Do(func() error {
		s := pr.b.stream
		for len(pr.opEvents) < pr.nOps+1 {
			e, err := cu.MakeEvent(cu.DefaultEvent)
			if err != nil {
				return err
			}
			pr.opEvents = append(pr.opEvents, e)
		}
		err := pr.exec(in, out, func() error {
			next := 0
			for op := 0; op < pr.nOps; op++ {
				if err := pr.opEvents[op].Record(s); err != nil {
					return err
				}
				for ; next < len(pr.launches) && pr.launches[next].l.Op == op; next++ {
					if err := pr.launches[next].run(s); err != nil {
						return err
					}
				}
			}
			return pr.opEvents[pr.nOps].Record(s)
		})
		if err != nil {
			return err
		}
		for op := 0; op < pr.nOps; op++ {
			ms, err := pr.opEvents[op].Elapsed(pr.opEvents[op+1])
			if err != nil {
				return err
			}
			perOp[op] = time.Duration(ms * float64(time.Millisecond))
		}
		return nil
	})
}

// Close frees the program's graph and returns its buffers to the pool.
func (pr *Program) Close() error {
	if pr.closed {
		return nil
	}
	pr.closed = true
	if err := pr.b.ctx.Do(pr.release); err != errClosed {
		return err
	}
	return nil // the backend's context went, and the program's memory with it
}
