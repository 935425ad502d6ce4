package compress

import (
	"fmt"
	"math"

	"hwnas/accel"
)

// SupportedBits lists the weight bit widths quantization accepts: 1 (sign ×
// per-channel scale), 2, 4, 7, 8 (symmetric uniform) and 16 (fp16
// storage). 7 bits is onnxruntime's reduce_range for x86 CPUs without VNNI:
// weights within ±63 run exactly on the 16-bit pair sums of vpmaddubsw,
// hwnas's fastest int8 path on AVX2 (accel.PairSafe), at the cost of one
// bit of weight precision.
var SupportedBits = []int{1, 2, 4, 7, 8, 16}

func checkBits(bits int) error {
	for _, b := range SupportedBits {
		if b == bits {
			return nil
		}
	}
	return fmt.Errorf("%d-bit quantization is not supported (supported: 1, 2, 4, 7, 8, 16)", bits)
}

// QuantizePerChannel quantizes w, laid out as channels rows of equal length
// (output channel first, as Conv and Linear weights are), symmetrically per
// row to bits ∈ {2, 4, 7, 8}:
//
//	scale[o] = max_i |w[o,i]| / (2^(bits−1) − 1),  q = clamp(round(w/scale), −qmax, qmax)
//
// so w ≈ scale[o]·q. A row of zeros gets scale 1 and q = 0. For bits = 1,
// q = sign(w) ∈ {−1, +1} and scale[o] = mean_i |w[o,i]| (the L2-optimal
// scale of a binary code, as in XNOR-Net).
func QuantizePerChannel(w []float32, channels, bits int) (q []int8, scale []float32, err error) {
	if channels <= 0 || len(w)%channels != 0 {
		return nil, nil, fmt.Errorf("quantize: %d weights do not split into %d channels", len(w), channels)
	}
	if bits < 1 || bits > 8 {
		return nil, nil, fmt.Errorf("quantize: %d-bit integer weights are not supported (1..8)", bits)
	}
	if err := checkBits(bits); err != nil {
		return nil, nil, err
	}
	per := len(w) / channels
	q = make([]int8, len(w))
	scale = make([]float32, channels)
	for o := 0; o < channels; o++ {
		row := w[o*per : (o+1)*per]
		if bits == 1 {
			sum := 0.0
			for _, v := range row {
				sum += math.Abs(float64(v))
			}
			scale[o] = float32(sum / float64(max(per, 1)))
			if scale[o] == 0 {
				scale[o] = 1
			}
			for i, v := range row {
				if v < 0 {
					q[o*per+i] = -1
				} else {
					q[o*per+i] = 1
				}
			}
			continue
		}
		qmax := float32(int(1)<<(bits-1) - 1)
		m := float32(0)
		for _, v := range row {
			m = max(m, float32(math.Abs(float64(v))))
		}
		s := m / qmax
		if s == 0 {
			s = 1
		}
		scale[o] = s
		for i, v := range row {
			r := float32(math.RoundToEven(float64(v / s)))
			q[o*per+i] = int8(min(max(r, -qmax), qmax))
		}
	}
	return q, scale, nil
}

// Dequantize returns scale[o]·q[o,i].
func Dequantize(q []int8, scale []float32) []float32 {
	return (&accel.QuantWeights{Q: q, Scale: scale}).Float()
}

// FakeQuant replaces w in place by its quantize–dequantize image at bits
// (per channel, as QuantizePerChannel; 16 rounds through fp16). Used as the
// forward weight transform of quantization-aware training: the backward
// pass treats it as the identity (straight-through estimator), so gradients
// reach the float weights unchanged.
func FakeQuant(w []float32, channels, bits int) error {
	if err := checkBits(bits); err != nil {
		return err
	}
	if bits == 16 {
		for i, v := range w {
			w[i] = Float16ToFloat32(Float32ToFloat16(v))
		}
		return nil
	}
	q, s, err := QuantizePerChannel(w, channels, bits)
	if err != nil {
		return err
	}
	per := len(w) / channels
	for i := range w {
		w[i] = s[i/per] * float32(q[i])
	}
	return nil
}

// ActRange tracks the running minimum and maximum of activations seen
// during calibration (0 is always inside the range so that zero padding
// and ReLU outputs are exact).
type ActRange struct {
	Min, Max float32
	seen     bool
}

// Observe widens the range to cover x.
func (r *ActRange) Observe(x []float32) {
	if !r.seen {
		r.Min, r.Max, r.seen = 0, 0, true
	}
	for _, v := range x {
		r.Min, r.Max = min(r.Min, v), max(r.Max, v)
	}
}

// Params returns the asymmetric per-tensor uint8 quantization of the range:
// x ≈ scale·(q − zero) with q ∈ [0, 255],
//
//	scale = (max − min)/255,  zero = round(−min/scale) ∈ [0, 255].
func (r *ActRange) Params() (scale float32, zero int32) {
	lo, hi := min(r.Min, 0), max(r.Max, 0)
	if hi-lo < 1e-12 {
		return 1, 0
	}
	scale = (hi - lo) / 255
	zero = int32(math.Round(float64(-lo / scale)))
	return scale, min(max(zero, 0), 255)
}

// QuantizeActs maps x to uint8 with scale and zero (rounding to nearest,
// saturating).
func QuantizeActs(x []float32, scale float32, zero int32, q []uint8) {
	inv := 1 / scale
	for i, v := range x {
		r := int32(math.RoundToEven(float64(v*inv))) + zero
		q[i] = uint8(min(max(r, 0), 255))
	}
}

// Float32ToFloat16 converts f to IEEE 754 binary16 with round-to-nearest-even;
// values beyond the fp16 range become ±Inf, NaN stays NaN.
func Float32ToFloat16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23&0xff) - 127 + 15
	mant := b & 0x7fffff
	switch {
	case b&0x7fffffff > 0x7f800000: // NaN
		return sign | 0x7e00
	case b&0x7fffffff == 0x7f800000: // Inf
		return sign | 0x7c00
	case exp >= 31:
		return sign | 0x7c00
	case exp <= 0: // subnormal or zero in fp16
		if exp < -10 {
			return sign
		}
		mant |= 0x800000
		shift := uint32(14 - exp)
		h := mant >> shift
		rem := mant & (1<<shift - 1)
		half := uint32(1) << (shift - 1)
		if rem > half || (rem == half && h&1 == 1) {
			h++
		}
		return sign | uint16(h)
	}
	h := uint32(exp)<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && h&1 == 1) {
		h++ // may carry into the exponent, which rounds up to Inf correctly
	}
	return sign | uint16(h)
}

// Float16ToFloat32 converts an IEEE 754 binary16 value to float32 exactly.
func Float16ToFloat32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch {
	case exp == 0 && mant == 0:
		return math.Float32frombits(sign)
	case exp == 0: // subnormal
		e := uint32(127 - 15 + 1)
		for mant&0x400 == 0 {
			mant <<= 1
			e--
		}
		return math.Float32frombits(sign | e<<23 | (mant&0x3ff)<<13)
	case exp == 31:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
}
