package search

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"hwnas/accel"
	"hwnas/store"
)

// PredictLatency predicts plan p's latency from a device's per-op table
// (NewPredictor(table).Predict(p)).
func PredictLatency(table map[string]float64, p *accel.Plan) (ns, coverage float64) {
	return NewPredictor(table).Predict(p)
}

// Predictor predicts a plan's latency on a device from the device's per-op
// table, as nn-Meter does with per-kernel predictors: the latency is the
// sum of the ops' times (the table's times are shares of measured figures,
// layout conversions charged to the op that needs them, so they add up to
// a model's figure); an op whose key the table holds takes the table's
// time, any other op an estimate from the table's entries of its kernel
// class. Classes are the op kind and weight form (fp32, int, csr), for
// convolutions also depthwise, grouped, 1×1 or k×k and stride 1 or 2,
// each also split by what produced the op's input (see OpKey).
//
// The estimate comes from the narrowest class with at least two entries:
// the mean of its three entries nearest in size (distance: the sum of the
// absolute log ratios of multiply-adds and of elements), each scaled to
// the op by its multiply-adds (elements for ops without them), or, for an
// entry more than twice as large or small, shifted by what the class model
// puts between the two (see nearest). The class model, fitted over every
// entry of the class,
//
//	t = a + b·MACs + c·elements
//
// (elements: the op's input and output elements; MACs: its multiply-adds,
// scaled by the density of a sparse layer; least squares on the relative
// error, non-negative coefficients), is also the whole estimate when no
// class but every op's has two entries.
//
// Measured on the development VM, each trial predicted from the other
// trials' stored op times (StudyHeldOut): in a 50-trial study of the
// default space, the class models alone put 43 of 50 within ±10% and the
// neighbours 44–47; over six study–device pairs (225 trials: the default space, the
// quick start, Fashion-MNIST on AVX-512 and AVX2 kernels, two rl runs)
// neighbours scaled by multiply-adds alone put 198 within ±10% with a
// worst error of +237%, and the shift for far neighbours 197 with a worst
// of +84% (mean error on the quick start's 20 trials 24.5% → 11.3%).
type Predictor struct {
	table   map[string]float64
	models  map[string]opModel
	entries map[string][]classEntry
}

// classEntry is a table entry of a class: its features and time.
type classEntry struct {
	f  [3]float64
	ns float64
}

// neighbours is how many of a class's entries an estimate averages.
const neighbours = 3

// opModel is a fitted class model: coefficients of [1, MACs, elements]
// and the entries it was fitted on.
type opModel struct {
	coef [3]float64
	n    int
}

func (m opModel) at(f [3]float64) float64 {
	return m.coef[0]*f[0] + m.coef[1]*f[1] + m.coef[2]*f[2]
}

// NewPredictor fits the class models on table (op key → ns).
func NewPredictor(table map[string]float64) *Predictor {
	p := &Predictor{table: table, models: map[string]opModel{}, entries: map[string][]classEntry{}}
	xs := map[string][][3]float64{}
	ys := map[string][]float64{}
	for k, v := range table {
		sig, ok := parseOpKey(k)
		if !ok || !(v > 0) {
			continue
		}
		f := sig.features()
		for _, c := range sig.classes() {
			xs[c], ys[c] = append(xs[c], f), append(ys[c], v)
			p.entries[c] = append(p.entries[c], classEntry{f, v})
		}
	}
	for c := range xs {
		p.models[c] = fitOpModel(xs[c], ys[c])
	}
	return p
}

// Predict returns p's predicted latency in ns (0 when the table is empty)
// and the fraction of its ops the table knew exactly.
func (pr *Predictor) Predict(p *accel.Plan) (ns, coverage float64) {
	keys := make([]string, len(p.Ops))
	for i := range p.Ops {
		keys[i] = OpKey(p, &p.Ops[i])
	}
	return pr.predictKeys(keys)
}

// predictKeys is Predict for the ops' keys.
func (pr *Predictor) predictKeys(keys []string) (ns, coverage float64) {
	if len(keys) == 0 || len(pr.table) == 0 {
		return 0, 0
	}
	known := 0
	for _, key := range keys {
		if t, ok := pr.table[key]; ok {
			ns += t
			known++
			continue
		}
		ns += pr.estimate(key)
	}
	return ns, float64(known) / float64(len(keys))
}

// OpRun is one trial's measured figure and per-op times, as a table
// learns them. A sweep run (Sweep) is learnt from and never predicted:
// it is no trial.
type OpRun struct {
	Trial  int
	Figure float64 // ns
	Ops    []OpTime
	Sweep  bool
}

// opRuns decodes stored per-op times (rows whose JSON does not decode, or
// holds no op, are left out).
func opRuns(rows []store.TrialOps, sweep bool) []OpRun {
	runs := make([]OpRun, 0, len(rows))
	for _, r := range rows {
		var ops []OpTime
		if json.Unmarshal(r.Ops, &ops) != nil || len(ops) == 0 {
			continue
		}
		runs = append(runs, OpRun{Trial: r.Number, Figure: float64(r.Figure), Ops: ops, Sweep: sweep})
	}
	return runs
}

// StudyHeldOut is HeldOut over the per-op times stored with a study's
// latencies on a device (hwnas's kernels, at batch), after the device's
// predictor sweep runs: the predictor after the study's trials, each
// predicted from the others and the sweep.
func StudyHeldOut(ctx context.Context, db *store.DB, studyID int64, fingerprint string, batch int) (PredictorReport, error) {
	rows, err := db.StudyOpTimes(ctx, studyID, fingerprint, max(1, batch), maxHeldOut)
	if err != nil {
		return PredictorReport{}, err
	}
	runs, err := sweepOps(ctx, db, fingerprint, batch)
	if err != nil {
		return PredictorReport{}, err
	}
	return HeldOut(append(runs, opRuns(rows, false)...)), nil
}

// maxHeldOut bounds the runs HeldOut predicts (the latest ones): each is
// predicted from a table of all the others.
const maxHeldOut = 200

// HeldOut reports how well the predictor does after the runs: each trial
// run (of the latest maxHeldOut) is predicted from a table learnt from
// every other run's op times, the sweep runs first (as the device's table
// learnt them before the study's first trial), merged in order as the
// device's table is (MergeOpTimes), and compared with its figure.
func HeldOut(runs []OpRun) PredictorReport {
	var rep PredictorReport
	var sweeps, trials []OpRun
	for _, r := range runs {
		if r.Sweep {
			sweeps = append(sweeps, r)
		} else {
			trials = append(trials, r)
		}
	}
	runs = append(sweeps, trials[max(0, len(trials)-maxHeldOut):]...)
	if len(runs) < 2 {
		return rep
	}
	for i, r := range runs {
		if r.Sweep || !(r.Figure > 0) || len(r.Ops) == 0 {
			continue
		}
		table := map[string]time.Duration{}
		for j, o := range runs {
			if j != i {
				maps.Copy(table, MergeOpTimes(table, o.Ops))
			}
		}
		ft := make(map[string]float64, len(table))
		for k, v := range table {
			ft[k] = float64(v)
		}
		keys := make([]string, len(r.Ops))
		for k, o := range r.Ops {
			keys[k] = o.Key
		}
		ns, _ := NewPredictor(ft).predictKeys(keys)
		if ns > 0 {
			rep.add(r.Trial, ns/r.Figure-1)
		}
	}
	return rep
}

// estimate is the time of an op the table does not hold: from its
// nearest neighbours in the narrowest class with at least two entries,
// or from the broadest class model when no class but every op's has.
func (pr *Predictor) estimate(key string) float64 {
	sig, ok := parseOpKey(key)
	if !ok {
		return max(pr.models[classAll].at([3]float64{1, 0, 0}), 0)
	}
	f, cs := sig.features(), sig.classes()
	for _, c := range cs[:len(cs)-1] { // every class but every op's
		if es := pr.entries[c]; len(es) >= 2 {
			return nearest(es, f, pr.models[c])
		}
	}
	return pr.models[classAll].at(f)
}

// nearest is the mean of the neighbours entries of es nearest to an op of
// features f, each carried over to f: scaled by multiply-adds (by
// elements when the op has none) when the entry has between half and
// twice the op's, otherwise shifted by the difference the class model m
// gives between the two (and kept at no less than a quarter of the
// entry). Scaling a small op's time by its multiply-adds charges its
// fixed cost again and again: from 3×3 first layers of a few channels a
// 5×5 one of 12 was estimated at 6× its time.
func nearest(es []classEntry, f [3]float64, m opModel) float64 {
	type cand struct{ d, ns float64 }
	cs := make([]cand, len(es))
	for i, e := range es {
		d := math.Abs(math.Log((f[1]+1)/(e.f[1]+1))) + math.Abs(math.Log((f[2]+1)/(e.f[2]+1)))
		scale := (f[1] + 1) / (e.f[1] + 1)
		if f[1] == 0 {
			scale = (f[2] + 1) / (e.f[2] + 1)
		}
		ns := e.ns * scale
		if scale > 2 || scale < 0.5 {
			ns = max(e.ns+m.at(f)-m.at(e.f), e.ns/4)
		}
		cs[i] = cand{d, ns}
	}
	slices.SortFunc(cs, func(a, b cand) int { return cmp.Or(cmp.Compare(a.d, b.d), cmp.Compare(a.ns, b.ns)) })
	k := min(neighbours, len(cs))
	t := 0.0
	for _, c := range cs[:k] {
		t += c.ns
	}
	return t / float64(k)
}

// fitOpModel fits t = a + b·MACs + c·elements to (xs, ys), minimising the
// sum of squared relative errors ((t − y)/y)² with non-negative
// coefficients: every subset of the coefficients no larger than the
// number of samples is fitted unconstrained, and the best fit without a
// negative coefficient is kept.
func fitOpModel(xs [][3]float64, ys []float64) opModel {
	best, bestErr := opModel{n: len(ys), coef: [3]float64{median(ys), 0, 0}}, math.Inf(1)
	for mask := 1; mask < 8; mask++ {
		var idx []int
		for j := 0; j < 3; j++ {
			if mask&(1<<j) != 0 {
				idx = append(idx, j)
			}
		}
		if len(idx) > len(ys) {
			continue
		}
		// Normal equations of the weighted problem: rows x/y, targets 1.
		k := len(idx)
		var a [3][4]float64
		for i, x := range xs {
			w := 1 / ys[i]
			for r := 0; r < k; r++ {
				for c := 0; c < k; c++ {
					a[r][c] += x[idx[r]] * w * x[idx[c]] * w
				}
				a[r][k] += x[idx[r]] * w
			}
		}
		sol, ok := solveSmall(a, k)
		if !ok {
			continue
		}
		m := opModel{n: len(ys)}
		neg := false
		for r, j := range idx {
			neg = neg || sol[r] < 0
			m.coef[j] = sol[r]
		}
		if neg {
			continue
		}
		e := 0.0
		for i, x := range xs {
			d := (m.at(x) - ys[i]) / ys[i]
			e += d * d
		}
		if e < bestErr*(1-1e-9) {
			best, bestErr = m, e
		}
	}
	return best
}

// solveSmall solves the k×k system a (column k the right-hand side) by
// Gaussian elimination with partial pivoting; false when it is singular.
func solveSmall(a [3][4]float64, k int) ([3]float64, bool) {
	var x [3]float64
	for c := 0; c < k; c++ {
		p := c
		for r := c + 1; r < k; r++ {
			if math.Abs(a[r][c]) > math.Abs(a[p][c]) {
				p = r
			}
		}
		if math.Abs(a[p][c]) < 1e-300 {
			return x, false
		}
		a[c], a[p] = a[p], a[c]
		for r := c + 1; r < k; r++ {
			f := a[r][c] / a[c][c]
			for j := c; j <= k; j++ {
				a[r][j] -= f * a[c][j]
			}
		}
	}
	for r := k - 1; r >= 0; r-- {
		v := a[r][k]
		for j := r + 1; j < k; j++ {
			v -= a[r][j] * x[j]
		}
		x[r] = v / a[r][r]
		if math.IsNaN(x[r]) || math.IsInf(x[r], 0) || math.Abs(a[r][r]) < 1e-12*math.Abs(a[0][0]) {
			return x, false
		}
	}
	return x, true
}

// opSig is an op key read back: what the predictor's features come from.
type opSig struct {
	kind           string
	in, out        [][]int
	kh, kw, stride int
	groups         int
	form           string  // "" (fp32), "int", "csr"
	density        float64 // csr: fraction of the weights kept
	from           string  // producer of the first input
}

// classAll is the class of every op.
const classAll = "*"

// parseOpKey reads a key OpKey wrote.
func parseOpKey(key string) (opSig, bool) {
	parts := strings.Split(key, "|")
	sig := opSig{kind: parts[0], groups: 1, stride: 1, density: 1}
	shape := func(s string) ([]int, bool) {
		s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
		var dims []int
		for _, d := range strings.Split(s, "×") {
			n, err := strconv.Atoi(d)
			if err != nil {
				return nil, false
			}
			dims = append(dims, n)
		}
		return dims, true
	}
	num := func(p, prefix string) bool {
		return strings.HasPrefix(p, prefix) && len(p) > len(prefix) && p[len(prefix)] >= '0' && p[len(prefix)] <= '9'
	}
	for _, p := range parts[1:] {
		var err error
		switch {
		case strings.HasPrefix(p, "in["):
			d, ok := shape(p[2:])
			if !ok {
				return sig, false
			}
			sig.in = append(sig.in, d)
		case strings.HasPrefix(p, "out["):
			d, ok := shape(p[3:])
			if !ok {
				return sig, false
			}
			sig.out = append(sig.out, d)
		case num(p, "k"):
			_, err = fmt.Sscanf(p, "k%dx%d", &sig.kh, &sig.kw)
		case num(p, "s"):
			_, err = fmt.Sscanf(p, "s%d", &sig.stride)
		case num(p, "g"):
			_, err = fmt.Sscanf(p, "g%d", &sig.groups)
		case strings.HasPrefix(p, "from:"):
			if sig.from == "" {
				sig.from = p[5:]
			}
		case num(p, "int"):
			sig.form = "int"
		case num(p, "csr"):
			var pct int
			_, err = fmt.Sscanf(p, "csr%d", &pct)
			sig.form, sig.density = "csr", float64(pct)/100
		}
		if err != nil {
			return sig, false
		}
	}
	return sig, len(sig.out) > 0
}

func elements(d []int) float64 {
	n := 1.0
	for _, x := range d {
		n *= float64(x)
	}
	return n
}

// features are [1, MACs, elements] of the op.
func (s opSig) features() [3]float64 {
	var in, out float64
	for _, d := range s.in {
		in += elements(d)
	}
	for _, d := range s.out {
		out += elements(d)
	}
	var macs float64
	switch accel.OpKind(s.kind) {
	case accel.OpConv:
		if len(s.in) > 0 && len(s.in[0]) > 0 && s.groups > 0 {
			macs = out * float64(s.in[0][0]/s.groups*s.kh*s.kw)
		}
	case accel.OpLinear:
		macs = in * out
	case accel.OpMaxPool, accel.OpAvgPool:
		macs = out * float64(s.kh*s.kw)
	default:
		macs = in
	}
	return [3]float64{1, macs * s.density, in + out}
}

// classes are the op's kernel classes, narrowest first.
func (s opSig) classes() []string {
	kf := s.kind + "|" + s.form
	var cs []string
	if accel.OpKind(s.kind) == accel.OpConv && len(s.in) > 0 && len(s.in[0]) > 0 {
		var sub string
		switch cin := s.in[0][0]; {
		case s.groups > 1 && s.groups == cin:
			sub = "dw"
		case s.groups > 1:
			sub = "grouped"
		case s.kh == 1 && s.kw == 1:
			sub = "1x1"
		default:
			sub = "kxk"
		}
		cs = append(cs, fmt.Sprintf("%s|%s|s%d", kf, sub, min(s.stride, 2)), kf+"|"+sub)
	}
	cs = append(cs, kf, s.kind, classAll)
	// The same classes after this producer first: a layout conversion
	// charged to the op changes its cost.
	out := make([]string, 0, 2*len(cs))
	for _, c := range cs[:len(cs)-1] {
		out = append(out, c+"|from:"+s.from)
	}
	return append(out, cs...)
}
