package search

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"hwnas/accel"
)

// OpKey names what determines an op's latency on one device: its kind,
// input and output shapes, convolution or pooling geometry, fused
// activation, the weight form it runs on (fp32, int8 with its bits, or
// CSR with its density in percent), and what produced each input (the
// producing op's kind and weight form, or the plan input). The last is
// nn-Meter's lesson that a device runs kernels, not ops: hwnas's CPU
// programs keep feature maps in a blocked layout where an op has blocked
// kernels and convert where a consumer needs the other layout, charging
// the conversion to the consumer, so a depthwise convolution after an
// int8 one costs twice what it costs after a float one. Two ops with the
// same key cost the same, so a table of key → time predicts a plan's
// latency.
func OpKey(p *accel.Plan, op *accel.Op) string {
	var b strings.Builder
	b.WriteString(string(op.Kind))
	for _, t := range op.In {
		b.WriteString("|in" + p.Tensors[t].String())
	}
	for _, t := range op.Out {
		b.WriteString("|out" + p.Tensors[t].String())
	}
	switch op.Kind {
	case accel.OpConv:
		c := op.Conv.Norm()
		fmt.Fprintf(&b, "|k%dx%d|s%d|p%d|d%d|g%d", c.KH, c.KW, c.StrideH, c.PadH, c.DilH, c.Groups)
	case accel.OpMaxPool, accel.OpAvgPool:
		q := op.Pool
		fmt.Fprintf(&b, "|k%dx%d|s%d|p%d", q.KH, q.KW, q.StrideH, q.PadH)
	case accel.OpShuffle:
		fmt.Fprintf(&b, "|g%d", op.Groups)
	}
	if op.Act != accel.ActNone {
		b.WriteString("|" + op.Act.String())
	}
	b.WriteString(weightForm(op))
	for _, t := range op.In {
		b.WriteString("|from:" + producer(p, t))
	}
	return b.String()
}

// weightForm is "|int<bits>", "|csr<density %>" or "" (fp32).
func weightForm(op *accel.Op) string {
	switch {
	case op.Quant != nil:
		return fmt.Sprintf("|int%d", op.Quant.Bits)
	case op.Sparse != nil:
		dense := op.Sparse.Rows * op.Sparse.Cols
		return fmt.Sprintf("|csr%d", int(math.Round(100*float64(len(op.Sparse.Val))/float64(max(dense, 1)))))
	}
	return ""
}

// producer names what wrote tensor t: "input" for the plan input, else
// the producing op's kind, "-int" or "-csr" for its weight form and "-g"
// for a grouped (not depthwise) convolution.
func producer(p *accel.Plan, t int) string {
	if t == p.Input {
		return "input"
	}
	for i := range p.Ops {
		op := &p.Ops[i]
		if !slices.Contains(op.Out, t) {
			continue
		}
		s := string(op.Kind)
		switch {
		case op.Quant != nil:
			s += "-int"
		case op.Sparse != nil:
			s += "-csr"
		}
		if op.Kind == accel.OpConv {
			if c := op.Conv.Norm(); c.Groups > 1 && c.Groups != c.C {
				s += "-g"
			}
		}
		return s
	}
	return "input"
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// MergeOpTimes folds a trial's per-op times into a device's table and
// returns the entries it changed. Ops of one trial that share a key are
// averaged first; a known entry then moves a quarter of the way to the new
// time (an exponential moving average, so the table follows the device
// without one noisy trial dominating), an unknown one takes it.
func MergeOpTimes(table map[string]time.Duration, ops []OpTime) map[string]time.Duration {
	sum := map[string]float64{}
	n := map[string]int{}
	for _, o := range ops {
		if o.Ns > 0 && !math.IsNaN(o.Ns) && !math.IsInf(o.Ns, 0) {
			sum[o.Key] += o.Ns
			n[o.Key]++
		}
	}
	out := make(map[string]time.Duration, len(sum))
	for k, s := range sum {
		m := s / float64(n[k])
		if old, ok := table[k]; ok && old > 0 {
			m = float64(old) + 0.25*(m-float64(old))
		}
		out[k] = time.Duration(math.Round(m))
	}
	return out
}
