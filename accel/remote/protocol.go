// Package remote is an accel backend that runs plans in a worker process:
// the CPU binary reaches a GPU through it by starting the CUDA-enabled
// binary (`hwnas-cuda cuda-worker`), because gorgonia.org/cu exits any
// process that imports it on a machine without an NVIDIA driver.
//
// The CPU binary registers Registration("cuda", CUDAConfig) (see CUDAConfig
// for how the worker binary is found); Serve is the worker side. The
// package registers nothing itself, so the CUDA-enabled binary, which
// registers the real "cuda" backend, can serve through it.
//
// # Protocol
//
// The client writes requests to the worker's stdin and reads responses
// from its stdout, one response per request, in order. Every message is a
// frame: a 4-byte big-endian length n (at most maxFrame) followed by n
// bytes of one gob-encoded value. The worker's first frame is a hello that
// carries the protocol magic, so a binary that prints anything else first
// (gorgonia.org/cu's "Error in initialization" before it exits) is
// recognised and its output reported as the reason the device is
// unavailable.
package remote

import (
	"bytes"
	"encoding/binary"
	"encoding/gob"
	"fmt"
	"io"
	"time"

	"hwnas/accel"
)

// magic identifies the protocol and its version in the worker's hello.
const magic = "hwnas-worker/1"

// maxFrame bounds a frame's length (1 GiB): larger lengths mean the stream
// is not speaking this protocol.
const maxFrame = 1 << 30

// maxHello bounds the first frame: a longer "length" is text, not a hello.
const maxHello = 4096

// Request kinds.
const (
	kindDevices = "devices" // list the backend's devices
	kindOpen    = "open"    // open the backend with Options
	kindCompile = "compile" // compile Plan for Batch → Program id
	kindRun     = "run"     // run Program on In → Out (and the device time when Timed)
	kindMeasure = "measure" // accel.Measure Program on In with Latency options
	kindOpTimed = "optimed" // RunOpTimed of Program on In → Out, PerOp
	kindFree    = "free"    // close Program
	kindClose   = "close"   // close the backend and exit
)

// request is one message from client to worker. Only the fields its Kind
// uses are set.
type request struct {
	Kind    string
	Options accel.Options
	Plan    *accel.Plan
	Batch   int
	Program int
	In      []float32
	Timed   bool
	Latency accel.LatencyOptions
	Ops     int // optimed: the plan's op count
}

// response is the worker's answer to one request. Err, when not empty,
// is the error the worker met; the other fields are then unset.
type response struct {
	Err         string
	Magic       string // hello only
	Devices     []accel.Device
	Device      accel.Device
	Program     int
	Batch       int
	InputSize   int
	OutputSize  int
	OpTimed     bool // compile: the program implements accel.OpTimedProgram
	Out         []float32
	PerOp       []time.Duration
	Elapsed     time.Duration
	Measurement accel.Measurement
}

// writeFrame gob-encodes v into one frame on w.
func writeFrame(w io.Writer, v any) error {
	var buf bytes.Buffer
	buf.Write(make([]byte, 4))
	if err := gob.NewEncoder(&buf).Encode(v); err != nil {
		return fmt.Errorf("encode frame: %w", err)
	}
	b := buf.Bytes()
	if len(b)-4 > maxFrame {
		return fmt.Errorf("frame of %d bytes exceeds the %d-byte limit", len(b)-4, maxFrame)
	}
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	_, err := w.Write(b)
	return err
}

// frameError reports a stream that does not carry frames of this protocol;
// Data holds the bytes read so far.
type frameError struct {
	Data []byte
	Msg  string
}

func (e *frameError) Error() string { return e.Msg }

// readFrame reads one frame of at most limit bytes from r into v.
func readFrame(r io.Reader, v any, limit int) error {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if int64(n) > int64(limit) {
		return &frameError{Data: hdr[:], Msg: fmt.Sprintf("frame length %d exceeds %d", n, limit)}
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	if err := gob.NewDecoder(bytes.NewReader(body)).Decode(v); err != nil {
		return &frameError{Data: append(hdr[:], body...), Msg: fmt.Sprintf("decode frame: %v", err)}
	}
	return nil
}
