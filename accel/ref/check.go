package ref

import (
	"fmt"

	"hwnas/accel"
)

// The argument checks of the reference kernels, exported so that other
// implementations of accel.Kernels (package cpu, the int8 and sparse
// kernels) reject bad input with the same messages. kernel names the
// caller in the error.

// CheckMin returns an error when a slice named name has fewer than want
// elements.
func CheckMin(kernel, name string, got, want int) error {
	if got < want {
		return fmt.Errorf("%s: %s has %d elements, want at least %d", kernel, name, got, want)
	}
	return nil
}

// CheckLen returns an error when a slice named name does not have exactly
// want elements.
func CheckLen(kernel, name string, got, want int) error {
	if got != want {
		return fmt.Errorf("%s: %s has %d elements, want %d", kernel, name, got, want)
	}
	return nil
}

// CheckAct returns an error for an activation outside the accel.Act values.
func CheckAct(kernel string, a accel.Act) error {
	if a < accel.ActNone || a > accel.ActHardSwish {
		return fmt.Errorf("%s: unknown activation %v", kernel, a)
	}
	return nil
}

// CheckActBackward checks the arguments of ActBackward and returns the
// values act' is taken at: pre, or post when pre is nil for ReLU and ReLU6
// (both tests agree on either side of those monotone functions); nil for
// ActNone, whose dx is dy itself. Hard-swish needs pre.
func CheckActBackward(act accel.Act, pre, post, dy, dx []float32) ([]float32, error) {
	const kernel = "act backward"
	if err := CheckAct(kernel, act); err != nil {
		return nil, err
	}
	if err := CheckLen(kernel, "dx", len(dx), len(dy)); err != nil {
		return nil, err
	}
	src := pre
	switch act {
	case accel.ActNone:
		return nil, nil
	case accel.ActReLU, accel.ActReLU6:
		if src == nil {
			src = post
		}
		if src == nil {
			return nil, fmt.Errorf("%s: %v needs pre or post", kernel, act)
		}
	case accel.ActHardSwish:
		if pre == nil {
			return nil, fmt.Errorf("%s: hardswish needs pre (the activation's input)", kernel)
		}
	}
	if err := CheckLen(kernel, "pre/post", len(src), len(dy)); err != nil {
		return nil, err
	}
	return src, nil
}

// CheckConv validates p and the lengths of x, w and y (a length of −1 is
// not checked) and returns p normalised (accel.ConvParams.Norm).
func CheckConv(kernel string, p accel.ConvParams, lx, lw, ly int) (accel.ConvParams, error) {
	if err := p.Validate(); err != nil {
		return p, fmt.Errorf("%s: %w", kernel, err)
	}
	p = p.Norm()
	nx, nw, ny := p.Sizes()
	for _, c := range []struct {
		name      string
		got, want int
	}{{"x", lx, nx}, {"w", lw, nw}, {"y", ly, ny}} {
		if c.got >= 0 {
			if err := CheckLen(kernel, c.name, c.got, c.want); err != nil {
				return p, err
			}
		}
	}
	return p, nil
}

// CheckPool validates p and the lengths of x and y.
func CheckPool(kernel string, p accel.PoolParams, lx, ly int) error {
	if err := p.Validate(); err != nil {
		return fmt.Errorf("%s: %w", kernel, err)
	}
	if err := CheckLen(kernel, "x", lx, p.N*p.C*p.H*p.W); err != nil {
		return err
	}
	return CheckLen(kernel, "y", ly, p.N*p.C*p.OutH()*p.OutW())
}

// CheckPlanes validates the n×c×hw shape of the element-wise kernels.
func CheckPlanes(kernel string, n, c, hw int) error {
	if n <= 0 || c <= 0 || hw <= 0 {
		return fmt.Errorf("%s: sizes must be positive (n=%d c=%d hw=%d)", kernel, n, c, hw)
	}
	return nil
}

// CheckSoftmax validates the arguments of SoftmaxCrossEntropy, labels
// included.
func CheckSoftmax(n, k int, logits []float32, labels []int32, probs, dlogits []float32) error {
	const kernel = "softmax cross-entropy"
	if n <= 0 || k <= 0 {
		return fmt.Errorf("%s: sizes must be positive (n=%d k=%d)", kernel, n, k)
	}
	if err := CheckLen(kernel, "logits", len(logits), n*k); err != nil {
		return err
	}
	if err := CheckLen(kernel, "labels", len(labels), n); err != nil {
		return err
	}
	if err := CheckLen(kernel, "probs", len(probs), n*k); err != nil {
		return err
	}
	if dlogits != nil {
		if err := CheckLen(kernel, "dlogits", len(dlogits), n*k); err != nil {
			return err
		}
	}
	for r, l := range labels {
		if l < 0 || int(l) >= k {
			return fmt.Errorf("%s: label[%d]=%d outside [0,%d)", kernel, r, l, k)
		}
	}
	return nil
}
