package search

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

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

// PredictLatency sums the table's time of each op of p. An op whose key
// the table lacks is estimated by the median time of the table's entries
// of the same kind and weight form (fp32, int, csr), else of the same
// weight form, else of all entries. It returns the prediction in ns (0 for an empty table)
// and the fraction of ops the table knew exactly.
func PredictLatency(table map[string]float64, p *accel.Plan) (ns, coverage float64) {
	if len(p.Ops) == 0 || len(table) == 0 {
		return 0, 0
	}
	byClass := map[string][]float64{}
	byForm := map[string][]float64{}
	var all []float64
	for k, v := range table {
		kind, form := keyClass(k)
		byClass[kind+"|"+form] = append(byClass[kind+"|"+form], v)
		byForm[form] = append(byForm[form], v)
		all = append(all, v)
	}
	known := 0
	for i := range p.Ops {
		key := OpKey(p, &p.Ops[i])
		if t, ok := table[key]; ok {
			ns += t
			known++
		} else if kind, form := keyClass(key); len(byClass[kind+"|"+form]) > 0 {
			ns += median(byClass[kind+"|"+form])
		} else if len(byForm[form]) > 0 {
			ns += median(byForm[form])
		} else {
			ns += median(all)
		}
	}
	return ns, float64(known) / float64(len(p.Ops))
}

// keyClass splits an op key into its kind and weight form: "int" for any
// bit width, "csr" for any density, "" for fp32.
func keyClass(key string) (kind, form string) {
	parts := strings.Split(key, "|")
	switch last := parts[len(parts)-1]; {
	case strings.HasPrefix(last, "int"):
		form = "int"
	case strings.HasPrefix(last, "csr"):
		form = "csr"
	}
	return parts[0], form
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
