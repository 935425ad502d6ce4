package cuda

// arenaPlan assigns every activation tensor of a launchPlan to a slot, a
// device buffer that tensors whose lifetimes do not overlap share, so a
// deep network needs a few buffers of its widest layers instead of one per
// tensor.
type arenaPlan struct {
	Slot      []int   // tensor → slot (tensors sharing a root share a slot)
	SlotBytes []int64 // bytes of each slot
}

// TotalBytes is the device memory the slots take.
func (a arenaPlan) TotalBytes() int64 {
	var s int64
	for _, b := range a.SlotBytes {
		s += b
	}
	return s
}

// planArena computes tensor lifetimes (in launch order) over the roots of
// lp and assigns slots greedily: at each op the outputs take the smallest
// free slot that fits (else the largest free slot, grown, else a new one)
// before the inputs whose last use it is are released, so no kernel reads
// and writes the same slot. The plan's input and output tensors are never
// released: the input is written before a run, the output read after.
func planArena(lp *launchPlan, nOps int, input, output int) arenaPlan {
	nt := len(lp.Root)
	first := make([]int, nt) // op that defines each root (-1: the input)
	last := make([]int, nt)  // last op that reads it
	for t := range first {
		first[t], last[t] = nOps, -1
	}
	root := func(t int) int { return lp.Root[t] }
	first[root(input)] = -1
	for _, l := range lp.Launches {
		for _, a := range l.Args {
			if a.Kind != argTensor {
				continue
			}
			r := root(int(a.V))
			if first[r] > l.Op {
				first[r] = l.Op
			}
			if last[r] < l.Op {
				last[r] = l.Op
			}
		}
	}
	last[root(input)], last[root(output)] = nOps, nOps

	// Roots defined and last read by each op.
	born := make([][]int, nOps)
	dies := make([][]int, nOps)
	for r := 0; r < nt; r++ {
		if root(r) != r || last[r] < 0 || r == root(input) {
			continue // an alias, a tensor no launch touches, or the input
		}
		born[first[r]] = append(born[first[r]], r)
		if last[r] < nOps {
			dies[last[r]] = append(dies[last[r]], r)
		}
	}
	a := arenaPlan{Slot: make([]int, nt)}
	for t := range a.Slot {
		a.Slot[t] = -1
	}
	var free []int
	take := func(r int) {
		need := lp.Bytes[r]
		best := -1
		for i, s := range free {
			if a.SlotBytes[s] >= need && (best < 0 || a.SlotBytes[s] < a.SlotBytes[free[best]]) {
				best = i
			}
		}
		if best < 0 && len(free) > 0 {
			// Grow the largest free slot rather than add one.
			for i, s := range free {
				if best < 0 || a.SlotBytes[s] > a.SlotBytes[free[best]] {
					best = i
				}
			}
			a.SlotBytes[free[best]] = need
		}
		if best < 0 {
			a.SlotBytes = append(a.SlotBytes, need)
			a.Slot[r] = len(a.SlotBytes) - 1
			return
		}
		a.Slot[r] = free[best]
		free = append(free[:best], free[best+1:]...)
	}
	take(root(input))
	for i := 0; i < nOps; i++ {
		for _, r := range born[i] {
			take(r)
		}
		for _, r := range dies[i] {
			free = append(free, a.Slot[r])
		}
	}
	for t := range a.Slot {
		if r := root(t); a.Slot[r] >= 0 {
			a.Slot[t] = a.Slot[r]
		}
	}
	return a
}
