package search

import (
	"fmt"
	"math"
	"strings"

	"hwnas/accel"
)

// OpKey names what determines an op's latency on one device: its kind,
// input and output shapes, convolution or pooling geometry, fused
// activation and the weight form it runs on (fp32, int8 with its bits, or
// CSR with its density in percent). Two ops with the same key cost the
// same, so a table of key → time predicts a plan's latency.
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
	switch {
	case op.Quant != nil:
		fmt.Fprintf(&b, "|int%d", op.Quant.Bits)
	case op.Sparse != nil:
		dense := op.Sparse.Rows * op.Sparse.Cols
		fmt.Fprintf(&b, "|csr%d", int(math.Round(100*float64(len(op.Sparse.Val))/float64(max(dense, 1)))))
	}
	return b.String()
}

// PredictLatency sums the table's time of each op of p. It returns the
// prediction in ns and the fraction of ops the table knew; the prediction
// is only meaningful when that fraction is 1.
func PredictLatency(table map[string]float64, p *accel.Plan) (ns, coverage float64) {
	if len(p.Ops) == 0 {
		return 0, 0
	}
	known := 0
	for i := range p.Ops {
		if t, ok := table[OpKey(p, &p.Ops[i])]; ok {
			ns += t
			known++
		}
	}
	return ns, float64(known) / float64(len(p.Ops))
}

// OpTableEntry is one row of a device's per-op latency table: the running
// mean of Count measurements of ops with this key.
type OpTableEntry struct {
	Key   string  `json:"key"`
	Ns    float64 `json:"ns"`
	Count int     `json:"count"`
}

// MergeOpTimes folds a trial's per-op times into table entries (running
// means; Count saturates at 1000 so the table follows drift slowly) and
// returns the updated entries by key.
func MergeOpTimes(table map[string]OpTableEntry, ops []OpTime) map[string]OpTableEntry {
	if table == nil {
		table = map[string]OpTableEntry{}
	}
	for _, o := range ops {
		if o.Ns <= 0 || math.IsNaN(o.Ns) {
			continue
		}
		e := table[o.Key]
		e.Key = o.Key
		n := float64(min(e.Count, 999))
		e.Ns = (e.Ns*n + o.Ns) / (n + 1)
		e.Count++
		table[o.Key] = e
	}
	return table
}
