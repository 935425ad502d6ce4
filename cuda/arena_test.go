package cuda

import (
	"errors"
	"fmt"
	"testing"

	"hwnas/accel"
)

// checkArena asserts the arena's contract on lp: every tensor a launch
// touches has a slot as large as it; tensors whose lifetimes overlap
// (defined no later than the other's last use, both ways) have different
// slots; aliases share their root's slot.
func checkArena(t *testing.T, name string, lp *launchPlan, a arenaPlan, nOps, input, output int) {
	t.Helper()
	first := map[int]int{lp.Root[input]: -1}
	last := map[int]int{lp.Root[input]: nOps, lp.Root[output]: nOps}
	for _, l := range lp.Launches {
		for _, g := range l.Args {
			if g.Kind != argTensor {
				continue
			}
			r := lp.Root[int(g.V)]
			if f, ok := first[r]; !ok || l.Op < f {
				first[r] = l.Op
			}
			if l.Op > last[r] {
				last[r] = l.Op
			}
		}
	}
	for r := range first {
		s := a.Slot[r]
		if s < 0 || a.SlotBytes[s] < lp.Bytes[r] {
			t.Fatalf("%s: tensor %d (%d bytes) in slot %d of %v", name, r, lp.Bytes[r], s, a.SlotBytes)
		}
		for q := range first {
			if q != r && a.Slot[q] == s && first[q] <= last[r] && first[r] <= last[q] {
				t.Errorf("%s: tensors %d [%d,%d] and %d [%d,%d] overlap in slot %d", name, r, first[r], last[r], q, first[q], last[q], s)
			}
		}
	}
	for tt := range lp.Root {
		if a.Slot[tt] != a.Slot[lp.Root[tt]] {
			t.Errorf("%s: tensor %d in slot %d, its root %d in %d", name, tt, a.Slot[tt], lp.Root[tt], a.Slot[lp.Root[tt]])
		}
	}
}

func TestArenaLeNet(t *testing.T) {
	p := lenet5()
	for _, batch := range []int{1, 256} {
		lp, err := planLaunches(p, batch, h100)
		if err != nil {
			t.Fatal(err)
		}
		a := planArena(lp, len(p.Ops), p.Input, p.Output)
		checkArena(t, fmt.Sprintf("lenet batch %d", batch), lp, a, len(p.Ops), p.Input, p.Output)
		// The input is pinned; the intermediate maps live one op each
		// and ping-pong between two slots, the output takes one of them.
		if len(a.SlotBytes) != 3 {
			t.Errorf("batch %d: %d slots %v, want 3 (input, two ping-pong)", batch, len(a.SlotBytes), a.SlotBytes)
		}
		if a.Slot[4] != a.Slot[5] {
			t.Errorf("batch %d: flatten output in slot %d, its input in %d", batch, a.Slot[5], a.Slot[4])
		}
		var sum int64
		for i := 1; i < 7; i++ {
			if lp.Root[i] == i {
				sum += lp.Bytes[i]
			}
		}
		if a.TotalBytes() >= sum+lp.Bytes[0]+lp.Bytes[7] {
			t.Errorf("batch %d: arena %d bytes, no less than one buffer per tensor (%d)", batch, a.TotalBytes(), sum+lp.Bytes[0]+lp.Bytes[7])
		}
	}
}

func TestArenaBranches(t *testing.T) {
	// blockPlan keeps tensor 1 alive across six ops for its residual add,
	// and split/concat read and write several tensors at once.
	for _, quant := range []bool{false, true} {
		p := blockPlan(quant)
		lp, err := planLaunches(p, 3, h100)
		if err != nil {
			t.Fatal(err)
		}
		a := planArena(lp, len(p.Ops), p.Input, p.Output)
		checkArena(t, fmt.Sprintf("block quant=%v", quant), lp, a, len(p.Ops), p.Input, p.Output)
	}
	// A chain of 12 equal activations needs the input and two more.
	chain := &accel.Plan{Name: "chain", Input: 0, Output: 12}
	for i := 0; i <= 12; i++ {
		chain.Tensors = append(chain.Tensors, accel.Shape{4, 5, 5})
	}
	for i := 0; i < 12; i++ {
		chain.Ops = append(chain.Ops, accel.Op{Kind: accel.OpAct, Act: accel.ActReLU, In: []int{i}, Out: []int{i + 1}})
	}
	lp, err := planLaunches(chain, 2, h100)
	if err != nil {
		t.Fatal(err)
	}
	a := planArena(lp, len(chain.Ops), 0, 12)
	checkArena(t, "chain", lp, a, len(chain.Ops), 0, 12)
	if len(a.SlotBytes) != 3 {
		t.Errorf("chain of 12: %d slots, want 3", len(a.SlotBytes))
	}
}

// hostMemory stands in for the device in the pool's tests: addresses from
// a counter, a capacity that makes allocations fail.
type hostMemory struct {
	next, capacity, used int64
	sizes                map[uintptr]int64
	allocs, frees        int
}

var errOutOfMemory = errors.New("out of memory")

func (h *hostMemory) alloc(n int64) (uintptr, error) {
	if h.used+n > h.capacity {
		return 0, errOutOfMemory
	}
	h.next += 1 << 32
	h.used += n
	h.sizes[uintptr(h.next)] = n
	h.allocs++
	return uintptr(h.next), nil
}

func (h *hostMemory) free(p uintptr) error {
	n, ok := h.sizes[p]
	if !ok {
		return fmt.Errorf("double free of %#x", p)
	}
	delete(h.sizes, p)
	h.used -= n
	h.frees++
	return nil
}

func TestSizeClass(t *testing.T) {
	for _, tc := range []struct{ n, want int64 }{
		{1, 256}, {256, 256}, {257, 512}, {1000, 1024}, {1 << 20, 1 << 20}, {1<<20 + 1, 2 << 20}, {5<<20 - 3, 5 << 20},
	} {
		if got := sizeClass(tc.n); got != tc.want {
			t.Errorf("sizeClass(%d) = %d, want %d", tc.n, got, tc.want)
		}
	}
}

func TestPoolReuse(t *testing.T) {
	dev := &hostMemory{capacity: 8 << 20, sizes: map[uintptr]int64{}}
	p := newPool(dev)
	a, err := p.get(1000)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := p.get(3 << 20)
	if err := p.put(a); err != nil {
		t.Fatal(err)
	}
	// Same class (1 KiB): the cached buffer comes back, no allocation.
	c, _ := p.get(900)
	if c != a || dev.allocs != 2 {
		t.Errorf("get(900) after put(get(1000)): %#x (first %#x), %d device allocations, want reuse", c, a, dev.allocs)
	}
	// A different class allocates.
	d, _ := p.get(2000)
	if d == a || dev.allocs != 3 {
		t.Errorf("get(2000): %#x, %d allocations", d, dev.allocs)
	}
	st := p.Stats()
	if st.Allocs != 3 || st.Reuses != 1 || st.LiveBytes != 1024+3<<20+2048 || st.CachedBytes != 0 {
		t.Errorf("stats %+v", st)
	}
	if err := p.put(a); err != nil {
		t.Fatal(err)
	}
	if err := p.put(a); err == nil {
		t.Error("second put of the same buffer accepted")
	}
	if err := p.put(12345); err == nil {
		t.Error("put of a foreign pointer accepted")
	}
	// Out of memory: 3 MiB live + 1 KiB cached of 8 MiB; 5 MiB more fails
	// until the cache is dropped, then still fails, and says how much is in use.
	p.put(b) // 3 MiB cached now
	e, err := p.get(5 << 20)
	if err != nil {
		t.Fatalf("get(5 MiB) with 3 MiB cached: %v", err)
	}
	if st := p.Stats(); st.CachedBytes != 0 || st.Frees != 2 || dev.used != 5<<20+2048 {
		t.Errorf("after the retry: stats %+v, device has %d bytes in use", st, dev.used)
	}
	if _, err := p.get(4 << 20); !errors.Is(err, errOutOfMemory) {
		t.Errorf("get beyond capacity: %v, want the device's out-of-memory error", err)
	}
	p.put(e)
	p.put(d)
	if err := p.trim(); err != nil || dev.used != 0 || len(dev.sizes) != 0 {
		t.Errorf("trim: %v, device still has %d bytes", err, dev.used)
	}
	if _, err := p.get(0); err == nil {
		t.Error("get(0) accepted")
	}
}
