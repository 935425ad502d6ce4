package compress

import (
	"fmt"
	"math"

	"hwnas/accel"
	"hwnas/nas"
)

// quantizeWeights quantizes a conv or linear weight tensor per output
// channel to bits ∈ {1, 2, 4, 8} with fp16-representable scales (rounded
// up, so no weight leaves the integer range; fp16 is how Encode stores
// them), replaces w.Data by its dequantized values Scale·Q, and returns the
// integer form with the layer's input quantization (inScale, inZero).
func quantizeWeights(w *nas.Param, bits int, inScale float32, inZero int32) (*accel.QuantWeights, error) {
	rows := w.Shape[0]
	q, scale, err := QuantizePerChannel(w.Data, rows, bits)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", w.Name, err)
	}
	per := len(w.Data) / rows
	for o, s := range scale {
		h := Float32ToFloat16(s)
		if Float16ToFloat32(h) < s {
			h++ // next fp16 up (s > 0)
		}
		s16 := Float16ToFloat32(h)
		if bits > 1 && s16 != s {
			// Requantize the row with the stored scale.
			qmax := float64(int(1)<<(bits-1) - 1)
			for i := o * per; i < (o+1)*per; i++ {
				r := math.RoundToEven(float64(w.Data[i]) / float64(s16))
				q[i] = int8(math.Max(-qmax, math.Min(qmax, r)))
			}
		}
		scale[o] = s16
	}
	qw := &accel.QuantWeights{Bits: bits, Q: q, Scale: scale, InScale: inScale, InZero: inZero}
	copy(w.Data, qw.Float())
	return qw, nil
}
