package compress

import (
	"math"
	"math/rand"
	"testing"
)

func TestQuantizePerChannel(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	const ch, per = 6, 50
	w := make([]float32, ch*per)
	for i := range w {
		w[i] = float32(rng.NormFloat64()) * float32(1+i/per) // channels of different range
	}
	for _, bits := range []int{8, 4, 2} {
		q, s, err := QuantizePerChannel(w, ch, bits)
		if err != nil {
			t.Fatal(err)
		}
		qmax := int8(1<<(bits-1) - 1)
		d := Dequantize(q, s)
		for i := range w {
			if q[i] > qmax || q[i] < -qmax {
				t.Fatalf("bits=%d: q=%d outside ±%d", bits, q[i], qmax)
			}
			if err := math.Abs(float64(d[i] - w[i])); err > float64(s[i/per])/2+1e-6 {
				t.Fatalf("bits=%d: error %g exceeds half a step %g", bits, err, s[i/per]/2)
			}
		}
	}
	q, s, err := QuantizePerChannel(w, ch, 1)
	if err != nil {
		t.Fatal(err)
	}
	for o := 0; o < ch; o++ {
		mean := 0.0
		for i := 0; i < per; i++ {
			mean += math.Abs(float64(w[o*per+i])) / per
			if (q[o*per+i] > 0) != (w[o*per+i] >= 0) || (q[o*per+i] != 1 && q[o*per+i] != -1) {
				t.Fatalf("1-bit: q=%d for w=%g", q[o*per+i], w[o*per+i])
			}
		}
		if math.Abs(mean-float64(s[o])) > 1e-5*mean {
			t.Errorf("1-bit scale %g, want mean |w| %g", s[o], mean)
		}
	}
	for _, bad := range []struct{ ch, bits int }{{7, 8}, {6, 3}, {6, 16}, {6, 0}} {
		if _, _, err := QuantizePerChannel(w, bad.ch, bad.bits); err == nil {
			t.Errorf("channels=%d bits=%d accepted", bad.ch, bad.bits)
		}
	}
}

func TestFakeQuantLevels(t *testing.T) {
	rng := rand.New(rand.NewSource(6))
	for _, bits := range []int{2, 4, 8} {
		w := make([]float32, 200)
		for i := range w {
			w[i] = float32(rng.NormFloat64())
		}
		if err := FakeQuant(w, 2, bits); err != nil {
			t.Fatal(err)
		}
		for c := 0; c < 2; c++ {
			levels := map[float32]bool{}
			for _, v := range w[c*100 : (c+1)*100] {
				levels[v] = true
			}
			if len(levels) > 1<<bits-1 {
				t.Errorf("bits=%d: %d levels in channel %d", bits, len(levels), c)
			}
		}
	}
	if err := FakeQuant([]float32{1}, 1, 5); err == nil {
		t.Error("5 bits accepted")
	}
}

func TestActRangeParams(t *testing.T) {
	cases := []struct {
		x     []float32
		scale float32
		zero  int32
	}{
		{[]float32{0, 2.55, 1}, 0.01, 0},      // ReLU output
		{[]float32{-1.275, 1.275}, 0.01, 128}, // symmetric
		{[]float32{-2.55, -1}, 0.01, 255},     // all negative: 0 still representable
	}
	for _, c := range cases {
		var r ActRange
		r.Observe(c.x)
		s, z := r.Params()
		if math.Abs(float64(s-c.scale)) > 1e-6 || z != c.zero {
			t.Errorf("%v: scale %g zero %d, want %g %d", c.x, s, z, c.scale, c.zero)
		}
		q := make([]uint8, len(c.x))
		QuantizeActs(c.x, s, z, q)
		for i, v := range c.x {
			back := s * float32(int32(q[i])-z)
			if math.Abs(float64(back-v)) > float64(s)/2+1e-6 {
				t.Errorf("%g → %d → %g: more than half a step off", v, q[i], back)
			}
		}
	}
}

func TestFloat16(t *testing.T) {
	cases := []struct {
		f float32
		h uint16
	}{
		{0, 0}, {1, 0x3c00}, {-2, 0xc000}, {65504, 0x7bff}, {65536, 0x7c00},
		{float32(math.Inf(-1)), 0xfc00}, {5.960464477539063e-08, 0x0001}, {6.103515625e-05, 0x0400},
		{1.0009765625, 0x3c01}, {1.00048828125, 0x3c00} /* tie → even */, {1.00146484375, 0x3c02},
	}
	for _, c := range cases {
		if got := Float32ToFloat16(c.f); got != c.h {
			t.Errorf("Float32ToFloat16(%g) = %#04x, want %#04x", c.f, got, c.h)
		}
	}
	for h := 0; h < 0x10000; h++ {
		if h&0x7c00 == 0x7c00 && h&0x3ff != 0 {
			continue // NaN
		}
		if back := Float32ToFloat16(Float16ToFloat32(uint16(h))); back != uint16(h) {
			t.Fatalf("fp16 %#04x → %g → %#04x", h, Float16ToFloat32(uint16(h)), back)
		}
	}
	if f := Float16ToFloat32(Float32ToFloat16(float32(math.NaN()))); !math.IsNaN(float64(f)) {
		t.Errorf("NaN became %g", f)
	}
}
