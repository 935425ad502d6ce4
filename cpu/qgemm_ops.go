package cpu

/*
#include "qgemm.h"
*/
import "C"

import (
	"fmt"
	"runtime"
	"sync"
	"unsafe"
	"weak"

	"hwnas/accel"
	"hwnas/accel/ref"
)

// checkBiasAct validates an optional bias of k entries and the activation.
func checkBiasAct(kernel string, bias []float32, k int, act accel.Act) error {
	if bias != nil {
		if err := ref.CheckLen(kernel, "bias", len(bias), k); err != nil {
			return err
		}
	}
	return ref.CheckAct(kernel, act)
}

// quantPrep is what the int8 kernels derive once from a QuantWeights:
// Σ_i Q[o,i] per output channel (for the zero-point correction) and, for
// convolutions over several input channels, Q reordered from (channel, ky,
// kx) to (ky, kx, channel) columns to match the channels-last patches.
type quantPrep struct {
	q0     *int8
	n      int
	sums   []int32
	kh, kw int
	hwc    []int8
	// packed holds, per group, the weights packed for hw_qgemm_packed_vnni
	// (from hwc when set, else Q); groups is the group count it was made for.
	packed []int8
	// packed16 holds, per group, the weights widened and packed for
	// hw_qgemm_packed16_avx2 (from hwc when set, else Q).
	packed16 []int16
	// tail16 holds the last rows mod 8 rows alone, packed as packed16
	// (one group only), for hw_qconv_pairs_avx2: their pairs of a step
	// then share a cache line rather than one line a step; tailQuads the
	// last rows mod 16 packed as packed, for hw_qconv_quads_vnni.
	tail16    []int16
	tailQuads []int8
	pack      packing
	groups    int
	// pairSafe: every weight lies in [−64, 64] (accel.PairSafe).
	pairSafe bool
	// fw holds Scale[o]·Q[o,i] as float for qConv2DGrid (made on first use).
	fw     []float32
	fwOnce sync.Once
}

// packing is the form prepareQuant packs the weights in for the
// broadcast GEMMs of qConv2DInt: none, VNNI's (hw_qgemm_packed_vnni), or
// AVX2's (the VNNI packing for hw_qgemm_packed_pairsafe_avx2 when the
// weights are pair-safe, else the int16 one of hw_qgemm_packed16_avx2).
type packing int

const (
	packNone packing = iota
	packVNNI
	packAVX2
)

// wide reports whether prep's broadcast GEMM is AVX2's vpmaddwd form,
// which reads the patches as uint16.
func (p *quantPrep) wide() bool { return p.pack == packAVX2 && !p.pairSafe }

// patches is an im2col buffer for broadcastGemm: bytes, or uint16 values
// (u16 set) that the im2col widened as it copied them, for the vpmaddwd
// form.
type patches struct {
	u8  *[]uint8
	u16 *[]uint16
}

// getPatches returns a buffer of n patch values, uint16 when wide.
func getPatches(wide bool, n int) patches {
	if wide {
		return patches{u16: getU16(n)}
	}
	return patches{u8: getU8(n)}
}

func (p patches) put() {
	if p.u16 != nil {
		u16Pool.Put(p.u16)
	} else {
		u8Pool.Put(p.u8)
	}
}

// im2colHWC writes group g's patch matrix of the channels-last uint8
// image xt into col (hw_im2col_hwc: widened to uint16 when col holds
// them), rows ld values apart.
func im2colHWC(xt []uint8, pn accel.ConvParams, g, oh, ow int, zero int32, col patches, ld int) {
	cg := pn.C / pn.Groups
	var dst unsafe.Pointer
	if col.u16 != nil {
		dst = unsafe.Pointer(&(*col.u16)[0])
	} else {
		dst = unsafe.Pointer(&(*col.u8)[0])
	}
	C.hw_im2col_hwc(cISA(), cbool(col.u16 != nil), (*C.uint8_t)(&xt[0]), C.int(pn.C), C.int(g*cg), C.int(cg), C.int(pn.H), C.int(pn.W),
		C.int(pn.KH), C.int(pn.KW), C.int(pn.StrideH), C.int(pn.StrideW), C.int(pn.PadH), C.int(pn.PadW), C.int(pn.DilH), C.int(pn.DilW),
		C.int(oh), C.int(ow), C.uint8_t(zero), dst, C.int(ld))
}

// broadcastGemm computes acc[i·ldc + j] = Σ_p a[i·lda + p]·W_g[j][p] for
// i < m, j < n (a: m rows of k4 patch values, zero beyond the reduction;
// W_g: group g of the weights prepareQuant packed for prep.pack, n rows
// of them) on the level's broadcast GEMM, its rows split across threads:
// VNNI's vpdpbusd, AVX2's vpmaddubsw for pair-safe weights, else AVX2's
// vpmaddwd on a as uint16 (widened here when a holds bytes).
func broadcastGemm(threads int, prep *quantPrep, g, m, n, k4 int, a patches, lda int, acc []int32, ldc int) {
	psize := packedSize(n, k4)
	work := int64(m) * int64(n) * int64(k4)
	if prep.wide() {
		a16 := a.u16
		if a16 == nil {
			a16 = getU16(m * lda)
			defer u16Pool.Put(a16)
			C.hw_widen_u8_u16(cISA(), C.long(m*lda), (*C.uint8_t)(&(*a.u8)[0]), (*C.uint16_t)(&(*a16)[0]))
		}
		bp := prep.packed16[g*psize : (g+1)*psize]
		parallel(threads, m, work, func(i0, i1 int) {
			C.hw_qgemm_packed16_avx2(C.int(i1-i0), C.int(n), C.int(k4), (*C.uint16_t)(&(*a16)[i0*lda]), C.int(lda),
				(*C.int16_t)(unsafe.Pointer(&bp[0])), (*C.int32_t)(&acc[i0*ldc]), C.int(ldc))
		})
		return
	}
	bp := prep.packed[g*psize : (g+1)*psize]
	parallel(threads, m, work, func(i0, i1 int) {
		ap, bq, cp := (*C.uint8_t)(&(*a.u8)[i0*lda]), (*C.int8_t)(unsafe.Pointer(&bp[0])), (*C.int32_t)(&acc[i0*ldc])
		if prep.pack == packAVX2 {
			C.hw_qgemm_packed_pairsafe_avx2(C.int(i1-i0), C.int(n), C.int(k4), ap, C.int(lda), bq, cp, C.int(ldc))
			return
		}
		C.hw_qgemm_packed_vnni(C.int(i1-i0), C.int(n), C.int(k4), ap, C.int(lda), bq, cp, C.int(ldc))
	})
}

// valueBytes is the size of one patch value of prep's broadcast GEMM: 2
// for AVX2's widened vpmaddwd form, else 1.
func (p *quantPrep) valueBytes() int {
	if p.wide() {
		return 2
	}
	return 1
}

// directConv reports whether convolution pn (normalised) runs its
// integer GEMM straight from the channels-last image (convDirect) rather
// than through im2col patches: a broadcast GEMM (VNNI's, AVX2's), one
// group, and a pixel's channels filling whole 4-byte steps (a multiple of
// 4 channels for the uint8 forms, of 2 for AVX2's widened one), so that
// each tap is a run of whole steps.
func directConv(prep *quantPrep, pn accel.ConvParams) bool {
	return prep.pack != packNone && pn.Groups == 1 && pn.C*prep.valueBytes()%4 == 0
}

// convDirect computes the accumulators of channels-last uint8 images
// (h×w×c) of convolution pn, acc[pixel·K + channel], on the level's
// direct broadcast GEMM (hw_qconv_direct_vnni, hw_qconv_direct_avx2) with
// the weights prepareQuant packed (directConv must hold). Each image is
// copied into a buffer whose border holds the zero point when pn pads (and
// widened to uint16 for AVX2's vpmaddwd form); each output pixel then
// reads its taps in place, where im2col would copy kh·kw of them per
// pixel. The reduction order per pixel is that of the patches (ky, kx,
// channel): the sums are the same integers. The offsets and the border are
// made once, by newConvDirect, for all the images of a call.
type convDirect struct {
	prep           *quantPrep
	pn             accel.ConvParams
	pix            int
	u8             *[]uint8  // the padded image, when pn pads and the form is uint8
	u16            *[]uint16 // the widened (and padded) image, for vpmaddwd
	offs           *[]int64
	rowoff, tapoff []int64 // per output pixel and per tap, in bytes
	tsteps         int     // 4-byte steps per tap
	// planes, when set, computes the last channels past a whole vector
	// (K mod 8 on AVX2's widened form, K mod 16 on VNNI) on
	// hw_qconv_pairs_avx2 or hw_qconv_quads_vnni from the image laid out
	// by hw_step_planes (useStepPlanes); the broadcast tiles then stop at
	// the multiple of the vector below K.
	planes *stepPlanes
}

// stepPlanes is the planar layout of convDirect's image (one plane per
// 4-byte step of a pixel's channels) and the offsets the tail kernels read
// it with.
type stepPlanes struct {
	buf     *[]int32 // nsteps planes of plane steps
	plane   int64
	nsteps  int     // 4-byte steps per pixel
	rowstep int64   // elements from one output row's first pixel to the next's
	toff    []int64 // per kernel position (ky, kx), in elements
	sw, ow  int
	lanes   int // the vector's width in channels: 8 (AVX2) or 16 (VNNI)
}

// useStepPlanes reports whether the tail kernels pay for the last nt = K
// mod lanes channels of a convolution with rows of ow output pixels: their
// nt multiplies per (up to) lanes pixels of a row, against one per pixel
// in the broadcast tiles, whose vector of lanes channels holds nt; at most
// three quarters as many, for their extra loads and stores and the
// relayout of the image.
func useStepPlanes(nt, ow, lanes int) bool {
	return nt > 0 && 4*((ow+lanes-1)/lanes)*nt <= 3*ow
}

// newConvDirect prepares convDirect for images of pn (oh×ow outputs) on
// the grid of zero point zero; put returns its buffers.
func newConvDirect(prep *quantPrep, pn accel.ConvParams, oh, ow int, zero int32) *convDirect {
	d := &convDirect{prep: prep, pn: pn, pix: oh * ow}
	hp, wp := pn.H+2*pn.PadH, pn.W+2*pn.PadW
	padded := pn.PadH > 0 || pn.PadW > 0
	switch {
	case prep.wide():
		d.u16 = getU16(hp * wp * pn.C)
		if padded {
			fill(*d.u16, uint16(zero))
		}
	case padded:
		d.u8 = getU8(hp * wp * pn.C)
		fill(*d.u8, uint8(zero))
	}
	px := pn.C * prep.valueBytes() // bytes per pixel
	// A tap is one kernel position, or without dilation along x a whole
	// kernel row (its positions are adjacent pixels: one run of steps).
	tw, ntaps := 1, pn.KH*pn.KW
	if pn.DilW == 1 {
		tw, ntaps = pn.KW, pn.KH
	}
	d.tsteps = tw * px / 4
	d.offs = getI64(d.pix + ntaps)
	d.rowoff, d.tapoff = (*d.offs)[:d.pix], (*d.offs)[d.pix:]
	for oy := 0; oy < oh; oy++ {
		for ox := 0; ox < ow; ox++ {
			d.rowoff[oy*ow+ox] = int64((oy*pn.StrideH*wp + ox*pn.StrideW) * px)
		}
	}
	for t := range d.tapoff {
		ky, kx := t*tw/pn.KW, t*tw%pn.KW
		d.tapoff[t] = int64((ky*pn.DilH*wp + kx*pn.DilW) * px)
	}
	lanes := 0
	switch {
	case prep.wide() && prep.tail16 != nil:
		lanes = 8
	case prep.pack == packVNNI && prep.tailQuads != nil:
		lanes = 16
	}
	if lanes > 0 && useStepPlanes(pn.K%lanes, ow, lanes) {
		sw := pn.StrideW
		wq := (wp + sw - 1) / sw
		sp := &stepPlanes{plane: int64(hp*sw*wq + 16), nsteps: px / 4, rowstep: int64(pn.StrideH * sw * wq), sw: sw, ow: ow, lanes: lanes}
		sp.buf = getI32(sp.nsteps * int(sp.plane))
		sp.toff = make([]int64, pn.KH*pn.KW)
		for ky := range pn.KH {
			for kx := range pn.KW {
				x := kx * pn.DilW
				sp.toff[ky*pn.KW+kx] = int64((ky*pn.DilH*sw+x%sw)*wq + x/sw)
			}
		}
		d.planes = sp
	}
	return d
}

func (d *convDirect) put() {
	if d.u8 != nil {
		u8Pool.Put(d.u8)
	}
	if d.u16 != nil {
		u16Pool.Put(d.u16)
	}
	i64Pool.Put(d.offs)
	if d.planes != nil {
		i32Pool.Put(d.planes.buf)
	}
}

// run computes the accumulators of the image xt into acc, its output
// pixels split across threads.
func (d *convDirect) run(threads int, xt []uint8, acc []int32) {
	pn := d.pn
	wp, row := pn.W+2*pn.PadW, pn.W*pn.C
	img := unsafe.Pointer(&xt[0])
	switch {
	case d.u16 != nil && pn.PadH == 0 && pn.PadW == 0:
		C.hw_widen_u8_u16(cISA(), C.long(pn.H*row), (*C.uint8_t)(img), (*C.uint16_t)(&(*d.u16)[0]))
		img = unsafe.Pointer(&(*d.u16)[0])
	case d.u16 != nil:
		for y := 0; y < pn.H; y++ {
			C.hw_widen_u8_u16(cISA(), C.long(row), (*C.uint8_t)(&xt[y*row]), (*C.uint16_t)(&(*d.u16)[((y+pn.PadH)*wp+pn.PadW)*pn.C]))
		}
		img = unsafe.Pointer(&(*d.u16)[0])
	case d.u8 != nil:
		for y := 0; y < pn.H; y++ {
			copy((*d.u8)[((y+pn.PadH)*wp+pn.PadW)*pn.C:], xt[y*row:(y+1)*row])
		}
		img = unsafe.Pointer(&(*d.u8)[0])
	}
	var bp unsafe.Pointer
	if d.u16 != nil {
		bp = unsafe.Pointer(&d.prep.packed16[0])
	} else {
		bp = unsafe.Pointer(&d.prep.packed[0])
	}
	ntaps, ncols := C.int(len(d.tapoff)), pn.K
	sp := d.planes
	var planes *C.uint32_t
	if sp != nil {
		ncols = pn.K &^ (sp.lanes - 1)
		planes = (*C.uint32_t)(unsafe.Pointer(&(*sp.buf)[0]))
		C.hw_step_planes((*C.uint32_t)(img), C.int(pn.H+2*pn.PadH), C.int(wp), C.int(sp.nsteps), C.int(sp.sw), planes, C.long(sp.plane))
	}
	parallel(threads, d.pix, int64(d.pix)*int64(pn.K)*int64(pn.C*pn.KH*pn.KW), func(i0, i1 int) {
		ro, to, c := (*C.long)(unsafe.Pointer(&d.rowoff[i0])), (*C.long)(unsafe.Pointer(&d.tapoff[0])), (*C.int32_t)(&acc[i0*pn.K])
		vnni := d.prep.pack == packVNNI
		if vnni {
			C.hw_qconv_direct_vnni(C.int(i1-i0), C.int(pn.K), C.int(ncols), (*C.uint8_t)(img), ro, to, ntaps, C.int(d.tsteps), (*C.int8_t)(bp), c, C.int(pn.K))
		} else {
			C.hw_qconv_direct_avx2(cbool(d.u16 != nil), C.int(i1-i0), C.int(pn.K), C.int(ncols), img, ro, to, ntaps, C.int(d.tsteps), bp, c, C.int(pn.K))
		}
		if sp == nil {
			return
		}
		p0, p1, ow, rs, nt := C.int(i0), C.int(i1), C.int(sp.ow), C.long(sp.rowstep), C.int(pn.K-ncols)
		toff, nk, ns, tail := (*C.long)(unsafe.Pointer(&sp.toff[0])), C.int(len(sp.toff)), C.int(sp.nsteps), (*C.int32_t)(&acc[ncols])
		if vnni {
			C.hw_qconv_quads_vnni(p0, p1, ow, rs, nt, planes, C.long(sp.plane), ns, toff, nk, (*C.int8_t)(&d.prep.tailQuads[0]), tail, C.int(pn.K))
		} else {
			C.hw_qconv_pairs_avx2(p0, p1, ow, rs, nt, planes, C.long(sp.plane), ns, toff, nk, (*C.int16_t)(&d.prep.tail16[0]), tail, C.int(pn.K))
		}
	})
}

// convDirect passes its []int64 offsets as C long arrays.
var _ [unsafe.Sizeof(C.long(0)) - 8]byte

// fill sets every element of b to v.
func fill[T any](b []T, v T) {
	for i := range b {
		b[i] = v
	}
}

// levelPacking is the packing qConv2DInt uses at the current level.
func levelPacking() packing {
	return map[C.int]packing{C.HW_QISA_VNNI: packVNNI, C.HW_ISA_AVX2: packAVX2}[qisa()]
}

// qconvForm names the integer kernel qConv2D runs for p (normalised) on
// weights q at the current level: the float kernels on grid values
// ("grid", shapes where the integer GEMM does not pay), or the integer
// GEMM in its level's form: "vnni" (vpdpbusd), "avx2-u8s8" (vpmaddubsw,
// pair-safe weights), "avx2-s16" (vpmaddwd) or the level's dot-product
// GEMM ("dot-" and the level).
func qconvForm(p accel.ConvParams, q *accel.QuantWeights) string {
	kk := p.C / p.Groups * p.KH * p.KW
	if !intGemmPays(p.K/p.Groups, kk) {
		return "grid"
	}
	switch levelPacking() {
	case packVNNI:
		return "vnni"
	case packAVX2:
		if accel.PairSafe(q.Q) {
			return "avx2-u8s8"
		}
		return "avx2-s16"
	}
	return "dot-" + ISA()
}

// qlinearForm names the integer GEMM qLinear runs at the current level
// for n rows and weights q: AVX2's broadcast forms ("avx2-s16",
// "avx2-u8s8", see qLinearBroadcast) or the level's dot-product GEMM.
func qlinearForm(n int, q *accel.QuantWeights) string {
	if qisa() == C.HW_QISA_VNNI {
		return "vnni"
	}
	if ps := accel.PairSafe(q.Q); qLinearBroadcast(n, ps) {
		return map[bool]string{true: "avx2-u8s8", false: "avx2-s16"}[ps]
	}
	return "dot-" + ISA()
}

// qLinearBroadcast reports whether qLinear runs n rows against weights
// (pair-safe or not, accel.PairSafe) on AVX2's broadcast GEMM rather than
// the dot-product one (see qLinearBroadcastMinRows).
func qLinearBroadcast(n int, pairSafe bool) bool {
	if levelPacking() != packAVX2 {
		return false
	}
	if pairSafe {
		return n >= qLinearPairSafeMinRows
	}
	return n >= qLinearBroadcastMinRows
}

// quantPreps maps weak.Pointer[accel.QuantWeights] to *quantPrep. Computing
// the row sums reads the weights a second time, which halves the speed of
// batch-1 Linear, so they are kept while the QuantWeights lives (a weak key
// and a cleanup drop them after). Q must not be modified in place after its
// first use; replacing the slice is noticed.
var quantPreps sync.Map

// prepareQuant returns the cached quantPrep of q (rows output channels of
// cols weights), with the channels-last copy for a kh×kw kernel when
// kh·kw > 1 and cols > kh·kw, packed for pack's broadcast GEMM. Asked
// for packNone (the sums and channels-last copy only), it returns the
// cached entry whatever its packing: its pack and wide() then describe
// that packing, not the caller's.
func prepareQuant(q *accel.QuantWeights, rows, cols, kh, kw, groups int, pack packing) *quantPrep {
	key := weak.Make(q)
	needHWC := kh*kw > 1 && cols > kh*kw
	if v, ok := quantPreps.Load(key); ok {
		e := v.(*quantPrep)
		if e.q0 == &q.Q[0] && e.n == len(q.Q) && (!needHWC || (e.hwc != nil && e.kh == kh && e.kw == kw)) &&
			(pack == packNone || (e.pack == pack && e.groups == groups)) {
			return e
		}
	}
	e := &quantPrep{q0: &q.Q[0], n: len(q.Q), sums: make([]int32, rows), kh: kh, kw: kw, pack: pack, pairSafe: accel.PairSafe(q.Q)}
	for o := 0; o < rows; o++ {
		s := int32(0)
		for _, v := range q.Q[o*cols : (o+1)*cols] {
			s += int32(v)
		}
		e.sums[o] = s
	}
	if needHWC {
		e.hwc = channelsLast(q.Q, rows, cols, kh*kw)
	}
	w := q.Q
	if e.hwc != nil {
		w = e.hwc
	}
	e.groups = groups
	kg := rows / groups
	packed := pack == packVNNI || (pack == packAVX2 && e.pairSafe)
	packed16 := pack == packAVX2 && !e.pairSafe
	for g := 0; packed && g < groups; g++ {
		e.packed = append(e.packed, packB(w[g*kg*cols:(g+1)*kg*cols], kg, cols)...)
	}
	for g := 0; packed16 && g < groups; g++ {
		e.packed16 = append(e.packed16, packB16(w[g*kg*cols:(g+1)*kg*cols], kg, cols)...)
	}
	if packed16 && groups == 1 && rows%8 != 0 {
		e.tail16 = packB16(w[rows&^7*cols:], rows%8, cols)
	}
	if pack == packVNNI && groups == 1 && rows%16 != 0 {
		e.tailQuads = packB(w[rows&^15*cols:], rows%16, cols)
	}
	if _, loaded := quantPreps.Swap(key, e); !loaded {
		runtime.AddCleanup(q, func(k weak.Pointer[accel.QuantWeights]) { quantPreps.Delete(k) }, key)
	}
	return e
}

// channelsLast returns rows rows of cols weights with each row's columns
// moved from (channel, position) order, position < kk, to (position,
// channel): column c·kk + t becomes t·(cols/kk) + c. A convolution's
// weights so match its channels-last patches, a linear layer's those of
// a channels-last feature map (kk pixels).
func channelsLast(w []int8, rows, cols, kk int) []int8 {
	cg := cols / kk
	out := make([]int8, rows*cols)
	for o := 0; o < rows; o++ {
		for c := 0; c < cg; c++ {
			for t := 0; t < kk; t++ {
				out[o*cols+t*cg+c] = w[o*cols+c*kk+t]
			}
		}
	}
	return out
}

// packedSize is the length, in elements, of n rows of k weights packed by
// packB or packB16: k rounded up to 4, times n rounded up to 16.
func packedSize(n, k int) int { return (k + 3) / 4 * 4 * ((n + 15) &^ 15) }

// packB packs n rows of k int8 weights for hw_qgemm_packed_vnni (and
// hw_qgemm_packed_pairsafe_avx2): column j (a row of w) contributes 4
// k-consecutive bytes per quad p/4 at 4·(p/4)·np + 4·j + p%4, np = n
// rounded up to 16; the padding is zero.
func packB(w []int8, n, k int) []int8 { return packInterleaved[int8](w, n, k, 4) }

// packB16 packs n rows of k int8 weights, widened to int16, for
// hw_qgemm_packed16_avx2: the same layout with pairs, 2 k-consecutive
// values of column j per pair p/2 at 2·(p/2)·np + 2·j + p%2.
func packB16(w []int8, n, k int) []int16 { return packInterleaved[int16](w, n, k, 2) }

// packInterleaved lays out n rows of k weights as groups of g
// k-consecutive values per column, columns side by side (np = n rounded up
// to 16), one row of groups after another; the padding is zero.
func packInterleaved[T int8 | int16](w []int8, n, k, g int) []T {
	np := (n + 15) &^ 15
	out := make([]T, packedSize(n, k))
	for j := 0; j < n; j++ {
		for p := 0; p < k; p++ {
			out[(p/g)*g*np+g*j+p%g] = T(w[j*k+p])
		}
	}
	return out
}

// Scratch buffers of the int8 and sparse kernels, reused across calls:
// getBuf returns one of at least n elements from pool (of *[]T), put back
// with pool.Put when done.
var (
	u16Pool = sync.Pool{New: func() any { return new([]uint16) }}
	u8Pool  = sync.Pool{New: func() any { return new([]uint8) }}
	i32Pool = sync.Pool{New: func() any { return new([]int32) }}
	i64Pool = sync.Pool{New: func() any { return new([]int64) }}
	f32Pool = sync.Pool{New: func() any { return new([]float32) }}
)

func getBuf[T any](pool *sync.Pool, n int) *[]T {
	p := pool.Get().(*[]T)
	if cap(*p) < n {
		*p = make([]T, n)
	}
	*p = (*p)[:n]
	return p
}

func getU16(n int) *[]uint16  { return getBuf[uint16](&u16Pool, n) }
func getU8(n int) *[]uint8    { return getBuf[uint8](&u8Pool, n) }
func getI32(n int) *[]int32   { return getBuf[int32](&i32Pool, n) }
func getI64(n int) *[]int64   { return getBuf[int64](&i64Pool, n) }
func getF32(n int) *[]float32 { return getBuf[float32](&f32Pool, n) }

// The batch from which qLinear runs AVX2's broadcast GEMM (each weight
// then serves that many rows) instead of the dot-product one: for
// vpmaddwd, whose weights are read as int16, and for pair-safe weights
// (vpmaddubsw). fc 800→500 on AMD EPYC Zen 3, dot/broadcast time: int8
// 0.46 at 1 row, 0.97 at 4, 1.18 at 8, 1.16 at 64; pair-safe 1.09 at 1,
// 1.25 at 2, 1.5–1.8 from 8.
var (
	qLinearBroadcastMinRows = 8
	qLinearPairSafeMinRows  = 2
)

// qLinear computes y[n×out] = act(x̂·(Scale·Q)ᵀ + bias), where x̂ is x on
// q's uint8 input grid: q_x = clamp(rint(x/InScale) + InZero, 0, 255),
// accumulating Σ(q_x − InZero)·Q exactly in int32 (qgemm) before scaling.
func qLinear(threads, n, in, out int, x []float32, q *accel.QuantWeights, bias []float32, act accel.Act, y []float32) error {
	return qLinearFrom(threads, n, in, out, x, linearInput{}, q, bias, act, y)
}

// linearInput says where qLinearFrom's n samples of in features lie in x:
// plain rows (the zero value: sample s at x[s·in:]), or, with c > 0, a
// feature map in the blocked layout of the compiled programs (c channels ×
// hw pixels in channel blocks of b lanes, sample s at x[s·stride:]), whose
// in = c·hw features are taken channels-last, feature p·c + ch for channel
// ch at pixel p (hw_quantize_hwc_u8), without the padding lanes of a last
// partial block. The weights' columns must be in the same order.
type linearInput struct{ stride, c, hw, b int }

// check reports whether li describes in features and x holds n samples.
func (li linearInput) check(n, in int, x []float32) error {
	if li.c == 0 {
		if len(x) != n*in {
			return fmt.Errorf("qlinear: x has %d elements, want %d", len(x), n*in)
		}
		return nil
	}
	if li.c*li.hw != in || li.b <= 0 || li.stride < blocks(li.c, li.b)*li.b*li.hw {
		return fmt.Errorf("qlinear: blocked input of %d channels × %d pixels (block %d, stride %d) does not hold %d features", li.c, li.hw, li.b, li.stride, in)
	}
	if len(x) < (n-1)*li.stride+blocks(li.c, li.b)*li.b*li.hw {
		return fmt.Errorf("qlinear: blocked input of %d floats is too short for %d samples", len(x), n)
	}
	return nil
}

// quantize writes n samples of in features of x on q's uint8 input grid
// into dst, rows ld ≥ in bytes apart, zero past in.
func (li linearInput) quantize(n, in int, x []float32, q *accel.QuantWeights, dst []uint8, ld int) {
	isa, scale, zero := cISA(), C.float(q.InScale), C.int(q.InZero)
	if li.c == 0 && ld == in { // all rows in one call
		C.hw_quantize_u8(isa, C.long(n*in), (*C.float)(&x[0]), scale, zero, (*C.uint8_t)(&dst[0]))
		return
	}
	for s := 0; s < n; s++ {
		row := dst[s*ld : (s+1)*ld]
		if li.c == 0 {
			C.hw_quantize_u8(isa, C.long(in), (*C.float)(&x[s*in]), scale, zero, (*C.uint8_t)(&row[0]))
		} else {
			C.hw_quantize_hwc_u8(isa, (*C.float)(&x[s*li.stride]), C.int(li.c), C.long(li.hw), C.int(li.b), scale, zero, (*C.uint8_t)(&row[0]))
		}
		clear(row[in:])
	}
}

// qLinearFrom is qLinear on samples laid out as li says.
func qLinearFrom(threads, n, in, out int, x []float32, li linearInput, q *accel.QuantWeights, bias []float32, act accel.Act, y []float32) error {
	const kernel = "qlinear"
	switch {
	case n <= 0 || in <= 0 || out <= 0:
		return fmt.Errorf("%s: sizes must be positive (n=%d in=%d out=%d)", kernel, n, in, out)
	case len(y) != n*out:
		return fmt.Errorf("%s: y has %d elements, want %d", kernel, len(y), n*out)
	}
	if err := li.check(n, in, x); err != nil {
		return err
	}
	if err := ref.CheckQuant(kernel, q, out, in); err != nil {
		return err
	}
	if err := checkBiasAct(kernel, bias, out, act); err != nil {
		return err
	}
	acc := getI32(n * out)
	defer i32Pool.Put(acc)
	prep := prepareQuant(q, out, in, 1, 1, 1, packNone) // cached: its row sums, and whether pair-safe
	if qLinearBroadcast(n, prep.pairSafe) {
		// Rows of k4 bytes, the padding zero, for the broadcast GEMM.
		k4 := (in + 3) &^ 3
		xq := getU8(n * k4)
		defer u8Pool.Put(xq)
		li.quantize(n, in, x, q, *xq, k4)
		prep = prepareQuant(q, out, in, 1, 1, 1, packAVX2)
		broadcastGemm(threads, prep, 0, n, out, k4, patches{u8: xq}, k4, *acc, out)
	} else {
		xq := getU8(n * in)
		defer u8Pool.Put(xq)
		li.quantize(n, in, x, q, *xq, in)
		if err := QGemm(n, out, in, *xq, in, q.Q, in, *acc, out, 1, threads); err != nil {
			return fmt.Errorf("%s: %w", kernel, err)
		}
	}
	C.hw_qepilogue(cISA(), C.int(out), C.int(n), (*C.int32_t)(&(*acc)[0]), 1, C.long(out), (*C.int32_t)(&prep.sums[0]), C.int(q.InZero),
		C.float(q.InScale), (*C.float)(&q.Scale[0]), cfloats(bias), C.int(act), (*C.float)(&y[0]), 1, C.long(out))
	return nil
}

// qConv2D computes act(conv(x̂, Scale·Q) + bias) with x̂ as in qLinear.
// Where the integer GEMM pays (intGemmPays), per image and group the uint8
// input is unrolled (im2col, padding taps take the zero point, which is
// float 0) and multiplied by the int8 filters (qConv2DInt); otherwise
// (depthwise, small grouped, 1×1 and stem convolutions) the same products
// are summed by the float kernels on the grid values (qConv2DGrid).
func qConv2D(threads int, p accel.ConvParams, x []float32, q *accel.QuantWeights, bias []float32, act accel.Act, y []float32) error {
	const kernel = "qconv2d"
	pn, err := ref.CheckConv(kernel, p, len(x), -1, len(y))
	if err != nil {
		return err
	}
	_, nw, _ := pn.Sizes()
	if err := ref.CheckQuant(kernel, q, pn.K, nw/pn.K); err != nil {
		return err
	}
	if err := checkBiasAct(kernel, bias, pn.K, act); err != nil {
		return err
	}
	kg, kk := pn.K/pn.Groups, nw/pn.K
	if !intGemmPays(kg, kk) {
		return qConv2DGrid(threads, pn, x, q, kk, bias, act, y)
	}
	return qConv2DInt(threads, pn, x, q, bias, act, y)
}

// qConv2DInt is the integer path of qConv2D (arguments checked, p
// normalised): per image and group, the uint8 input is unrolled and
// multiplied by the int8 filters with exact int32 accumulation.
func qConv2DInt(threads int, pn accel.ConvParams, x []float32, q *accel.QuantWeights, bias []float32, act accel.Act, y []float32) error {
	const kernel = "qconv2d"
	cg, kg := pn.C/pn.Groups, pn.K/pn.Groups
	kk := cg * pn.KH * pn.KW
	oh, ow := pn.OutH(), pn.OutW()
	hw, pix := pn.H*pn.W, oh*ow
	// With VNNI the filters are packed for the broadcast form (no
	// horizontal sums; best for the short reductions and many positions of
	// convolutions); otherwise the dot-product GEMM of QGemm runs.
	// On AVX2 they are widened to int16 and packed for the same form with
	// vpmaddwd (hw_qgemm_packed16_avx2), the patches widened to match.
	// Weights within ±64 (7 bits or fewer, as onnxruntime's reduce_range
	// makes them for CPUs without VNNI) keep the VNNI packing on AVX2 and
	// run on vpmaddubsw, whose pair sums cannot saturate then.
	pack := levelPacking()
	prep := prepareQuant(q, pn.K, kk, pn.KH, pn.KW, pn.Groups, pack)
	ld, k4 := kk, (kk+3)&^3
	if pack != packNone {
		ld = k4
	}
	xq := getU8(pn.C * hw)
	defer u8Pool.Put(xq)
	// Several input channels: go channels-last and copy each tap's cg
	// channels at once; the weights come reordered to match.
	hwc := prep.hwc != nil
	// Widened patches only for this level's broadcast GEMM: asked for
	// packNone, prepareQuant may return an entry packed for another level
	// (a process that switched levels), whose wide() does not apply here.
	var direct *convDirect
	if hwc && pack != packNone && directConv(prep, pn) {
		direct = newConvDirect(prep, pn, oh, ow, q.InZero)
		defer direct.put()
	}
	var col patches
	if direct == nil {
		col = getPatches(hwc && pack != packNone && prep.wide(), pix*ld)
		defer col.put()
	}
	acc := getI32(pn.K * pix)
	defer i32Pool.Put(acc)
	var xt *[]uint8
	if hwc {
		xt = getU8(pn.C * hw)
		defer u8Pool.Put(xt)
	}
	wq := q.Q
	if hwc {
		wq = prep.hwc
	}
	for img := 0; img < pn.N; img++ {
		C.hw_quantize_u8(cISA(), C.long(pn.C*hw), (*C.float)(&x[img*pn.C*hw]), C.float(q.InScale), C.int(q.InZero), (*C.uint8_t)(&(*xq)[0]))
		if hwc {
			C.hw_chw_to_hwc_u8((*C.uint8_t)(&(*xq)[0]), C.int(pn.C), C.int(hw), (*C.uint8_t)(&(*xt)[0]))
		}
		if direct != nil {
			direct.run(threads, *xt, *acc)
		}
		for g := 0; direct == nil && g < pn.Groups; g++ {
			if hwc {
				im2colHWC(*xt, pn, g, oh, ow, q.InZero, col, ld)
			} else {
				C.hw_im2col_u8((*C.uint8_t)(&(*xq)[g*cg*hw]), C.int(cg), C.int(pn.H), C.int(pn.W), C.int(pn.KH), C.int(pn.KW),
					C.int(pn.StrideH), C.int(pn.StrideW), C.int(pn.PadH), C.int(pn.PadW), C.int(pn.DilH), C.int(pn.DilW),
					C.int(oh), C.int(ow), C.uint8_t(q.InZero), (*C.uint8_t)(&(*col.u8)[0]), C.int(ld))
			}
			if pack != packNone {
				broadcastGemm(threads, prep, g, pix, kg, k4, col, ld, (*acc)[g*kg:], pn.K)
				continue
			}
			if err := QGemm(pix, kg, kk, *col.u8, ld, wq[g*kg*kk:(g+1)*kg*kk], kk, (*acc)[g*kg*pix:], 1, pix, threads); err != nil {
				return fmt.Errorf("%s: %w", kernel, err)
			}
		}
		// Element (channel r, position j) of the accumulators.
		ars, acs := C.long(pix), C.long(1)
		if pack != packNone {
			ars, acs = 1, C.long(pn.K)
		}
		C.hw_qepilogue(cISA(), C.int(pn.K), C.int(pix), (*C.int32_t)(&(*acc)[0]), ars, acs, (*C.int32_t)(&prep.sums[0]), C.int(q.InZero),
			C.float(q.InScale), (*C.float)(&q.Scale[0]), cfloats(bias), C.int(act), (*C.float)(&y[img*pn.K*pix]), C.long(pix), 1)
	}
	return nil
}

// qConv2DBlocked is qConv2DInt on tensors in the blocked layout of the
// compiled programs (channel blocks of `block` lanes, see nchwc.h), for
// levels with a broadcast GEMM (levelPacking() ≠ packNone): x holds pn.N
// images xstride floats apart, y receives them ystride apart. The input is
// quantized straight into channels-last order (hw_quantize_hwc_u8: no
// transpose, no conversion to the plain layout), and the epilogue writes
// each block of output channels into its blocked rows, so an int8
// convolution between blocked float ones costs no layout conversion. The
// integers, sums and epilogue are those of qConv2DInt: the results are the
// same, element for element. The padding lanes of y are not written (the
// program's buffers keep them zero).
func qConv2DBlocked(threads int, pn accel.ConvParams, block int, x []float32, xstride int, q *accel.QuantWeights, bias []float32, act accel.Act, y []float32, ystride int) error {
	const kernel = "qconv2d"
	pack := levelPacking()
	if pack == packNone {
		return fmt.Errorf("%s: the blocked int8 path needs a broadcast GEMM, which level %s lacks", kernel, ISA())
	}
	cg, kg := pn.C/pn.Groups, pn.K/pn.Groups
	kk := cg * pn.KH * pn.KW
	oh, ow := pn.OutH(), pn.OutW()
	hw, pix := pn.H*pn.W, oh*ow
	if pn.N > 0 && (len(x) < (pn.N-1)*xstride+blocks(pn.C, block)*block*hw || len(y) < (pn.N-1)*ystride+blocks(pn.K, block)*block*pix) {
		return fmt.Errorf("%s: blocked buffers of %d and %d floats are too short for %d images", kernel, len(x), len(y), pn.N)
	}
	prep := prepareQuant(q, pn.K, kk, pn.KH, pn.KW, pn.Groups, pack)
	k4 := (kk + 3) &^ 3
	xt := getU8(pn.C * hw)
	defer u8Pool.Put(xt)
	var direct *convDirect
	if directConv(prep, pn) {
		direct = newConvDirect(prep, pn, oh, ow, q.InZero)
		defer direct.put()
	}
	var col patches
	if direct == nil {
		col = getPatches(prep.wide(), pix*k4)
		defer col.put()
	}
	acc := getI32(pn.K * pix)
	defer i32Pool.Put(acc)
	isa := cISA()
	for img := 0; img < pn.N; img++ {
		C.hw_quantize_hwc_u8(isa, (*C.float)(&x[img*xstride]), C.int(pn.C), C.long(hw), C.int(block), C.float(q.InScale), C.int(q.InZero), (*C.uint8_t)(&(*xt)[0]))
		if direct != nil {
			direct.run(threads, *xt, *acc)
		}
		for g := 0; direct == nil && g < pn.Groups; g++ {
			im2colHWC(*xt, pn, g, oh, ow, q.InZero, col, k4)
			broadcastGemm(threads, prep, g, pix, kg, k4, col, k4, (*acc)[g*kg:], pn.K)
		}
		// Accumulator (channel r, pixel j) is acc[j·K + r]; block b of
		// the output holds channels b·block… as pixel-major rows of
		// `block` lanes.
		for r0 := 0; r0 < pn.K; r0 += block {
			rows := min(block, pn.K-r0)
			var bp *C.float
			if len(bias) > 0 {
				bp = (*C.float)(&bias[r0])
			}
			C.hw_qepilogue(isa, C.int(rows), C.int(pix), (*C.int32_t)(&(*acc)[r0]), 1, C.long(pn.K), (*C.int32_t)(&prep.sums[r0]), C.int(q.InZero),
				C.float(q.InScale), (*C.float)(&q.Scale[r0]), bp, C.int(act), (*C.float)(&y[img*ystride+r0*pix]), 1, C.long(block))
		}
	}
	return nil
}

// Minimum reduction length and output channels per group for which the
// integer GEMM of qConv2D beats the float convolution kernels at batch 1
// (BenchmarkQConvSmall): below them the im2col, the per-group calls and the
// dot-product tiles (whose horizontal sums dominate short reductions) cost
// more than the float kernels' direct depthwise and 1×1 paths save.
const (
	qIntMinReduce   = 64
	qIntMinChannels = 8
)

// intGemmPays reports whether a convolution with kg output channels per
// group and reductions of kk runs faster on the integer GEMM than on the
// float kernels: false for depthwise (kg = 1), small grouped and short
// 1×1 or single-channel stem convolutions.
func intGemmPays(kg, kk int) bool { return kk >= qIntMinReduce && kg >= qIntMinChannels }

var (
	// gridKernels holds one float Kernels per thread count for
	// qConv2DGrid (its scratch buffers are reused across calls).
	gridKernels sync.Map
)

// qConv2DGrid computes the same convolution as the integer path of
// qConv2D for shapes where the integer GEMM does not pay (intGemmPays):
// x is put on q's uint8 grid and back to float, x̂ = (q_x − InZero)·InScale
// (exact), and convolved by the float kernels (Conv2D: the depthwise and
// 1×1 paths) with the weights Scale[o]·Q[o,i] (exact in float32 for ≤ 8
// bits and fp16 scales). Every product is the one of the integer path; only
// the order of the float sums differs, so the result is within float32
// rounding of it, far inside one quantization step.
func qConv2DGrid(threads int, p accel.ConvParams, x []float32, q *accel.QuantWeights, kk int, bias []float32, act accel.Act, y []float32) error {
	prep := prepareQuant(q, p.K, kk, 1, 1, 1, packNone)
	prep.fwOnce.Do(func() { prep.fw = q.Float() })
	xf := getF32(len(x))
	defer f32Pool.Put(xf)
	C.hw_fakequant_f32(cISA(), C.long(len(x)), (*C.float)(&x[0]), C.float(q.InScale), C.int(q.InZero), (*C.float)(&(*xf)[0]))
	kv, ok := gridKernels.Load(threads)
	if !ok {
		kv, _ = gridKernels.LoadOrStore(threads, NewKernels(threads))
	}
	if err := kv.(*Kernels).Conv2D(p, *xf, prep.fw, bias, act, y); err != nil {
		return fmt.Errorf("qconv2d: %w", err)
	}
	return nil
}

// cfloats is a C pointer to s, or NULL when s is empty.
func cfloats(s []float32) *C.float {
	if len(s) == 0 {
		return nil
	}
	return (*C.float)(unsafe.Pointer(&s[0]))
}
