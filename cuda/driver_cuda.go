//go:build cuda

package cuda

// Driver API calls that gorgonia.org/cu does not wrap: stream capture and
// CUDA graphs, page-locked host memory. Handles cross as unsafe.Pointer.

/*
#cgo LDFLAGS: -lcuda
#include <cuda.h>

static CUresult hw_begin_capture(void *s) {
	return cuStreamBeginCapture((CUstream)s, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL);
}
static CUresult hw_end_capture(void *s, void **g) { return cuStreamEndCapture((CUstream)s, (CUgraph *)g); }
static CUresult hw_instantiate(void **exec, void *g) {
	return cuGraphInstantiateWithFlags((CUgraphExec *)exec, (CUgraph)g, 0);
}
static CUresult hw_graph_launch(void *exec, void *s) { return cuGraphLaunch((CUgraphExec)exec, (CUstream)s); }
static CUresult hw_graph_destroy(void *g) { return cuGraphDestroy((CUgraph)g); }
static CUresult hw_exec_destroy(void *e) { return cuGraphExecDestroy((CUgraphExec)e); }
static CUresult hw_host_alloc(void **p, size_t n) { return cuMemAllocHost(p, n); }
static CUresult hw_host_free(void *p) { return cuMemFreeHost(p); }
static CUresult hw_htod_async(CUdeviceptr dst, const void *src, size_t n, void *s) {
	return cuMemcpyHtoDAsync(dst, src, n, (CUstream)s);
}
static CUresult hw_dtoh_async(void *dst, CUdeviceptr src, size_t n, void *s) {
	return cuMemcpyDtoHAsync(dst, src, n, (CUstream)s);
}
static const char *hw_error_name(CUresult r) {
	const char *s = 0;
	if (cuGetErrorName(r, &s) != CUDA_SUCCESS || !s) return "unknown CUDA error";
	return s;
}
*/
import "C"

import (
	"fmt"
	"unsafe"

	"gorgonia.org/cu"
)

// cuError is a driver API status other than CUDA_SUCCESS.
type cuError struct {
	call string
	code C.CUresult
}

func (e cuError) Error() string {
	return fmt.Sprintf("%s: %s (%d)", e.call, C.GoString(C.hw_error_name(e.code)), int(e.code))
}

func result(call string, r C.CUresult) error {
	if r == C.CUDA_SUCCESS {
		return nil
	}
	return cuError{call, r}
}

// streamHandle is the CUstream of a gorgonia stream.
func streamHandle(s cu.Stream) unsafe.Pointer { return unsafe.Pointer(s.C()) }

// graphExec is an instantiated CUDA graph.
type graphExec struct{ p unsafe.Pointer }

// captureGraph records what launch enqueues on s into a graph and
// instantiates it.
func captureGraph(s cu.Stream, launch func() error) (graphExec, error) {
	h := streamHandle(s)
	if err := result("cuStreamBeginCapture", C.hw_begin_capture(h)); err != nil {
		return graphExec{}, err
	}
	lerr := launch()
	var g unsafe.Pointer
	if err := result("cuStreamEndCapture", C.hw_end_capture(h, &g)); err != nil {
		if lerr != nil {
			return graphExec{}, lerr
		}
		return graphExec{}, err
	}
	defer C.hw_graph_destroy(g)
	if lerr != nil {
		return graphExec{}, lerr
	}
	var e unsafe.Pointer
	if err := result("cuGraphInstantiateWithFlags", C.hw_instantiate(&e, g)); err != nil {
		return graphExec{}, err
	}
	return graphExec{e}, nil
}

func (g graphExec) launch(s cu.Stream) error {
	return result("cuGraphLaunch", C.hw_graph_launch(g.p, streamHandle(s)))
}

func (g graphExec) destroy() error {
	if g.p == nil {
		return nil
	}
	return result("cuGraphExecDestroy", C.hw_exec_destroy(g.p))
}

// hostBuf is page-locked host memory, so copies are truly asynchronous.
type hostBuf struct {
	p unsafe.Pointer
	n int // float32 elements
}

func allocHost(n int) (hostBuf, error) {
	var p unsafe.Pointer
	if err := result("cuMemAllocHost", C.hw_host_alloc(&p, C.size_t(4*max(n, 1)))); err != nil {
		return hostBuf{}, err
	}
	return hostBuf{p, n}, nil
}

func (h hostBuf) floats() []float32 { return unsafe.Slice((*float32)(h.p), h.n) }

func (h hostBuf) free() error {
	if h.p == nil {
		return nil
	}
	return result("cuMemFreeHost", C.hw_host_free(h.p))
}

func copyHtoDAsync(dst uintptr, src hostBuf, s cu.Stream) error {
	return result("cuMemcpyHtoDAsync", C.hw_htod_async(C.CUdeviceptr(dst), src.p, C.size_t(4*src.n), streamHandle(s)))
}

func copyDtoHAsync(dst hostBuf, src uintptr, s cu.Stream) error {
	return result("cuMemcpyDtoHAsync", C.hw_dtoh_async(dst.p, C.CUdeviceptr(src), C.size_t(4*dst.n), streamHandle(s)))
}
