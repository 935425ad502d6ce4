package cuda

import (
	"fmt"
	"sync"
)

// devMemory is what the pool needs of a device: allocate and free raw
// buffers. The cuda build backs it with cuMemAlloc/cuMemFree.
type devMemory interface {
	alloc(bytes int64) (uintptr, error)
	free(ptr uintptr) error
}

// pool is the one device allocator of a backend. Buffers are rounded up to
// a size class and, when released, kept on the class's free list for the
// next request of that class instead of being freed: compiling and closing
// programs (a search compiles thousands) then stops calling cuMemAlloc once
// the working set is reached. When the device is out of memory, the pool
// frees every cached buffer and retries once.
type pool struct {
	mu    sync.Mutex
	dev   devMemory
	free  map[int64][]uintptr // size class → cached buffers
	live  map[uintptr]int64   // buffer → its size class
	stats poolStats
}

// poolStats count the pool's work.
type poolStats struct {
	Allocs, Reuses, Frees  int   // device allocations, requests served from cache, device frees
	LiveBytes, CachedBytes int64 // in use, and kept for reuse
}

func newPool(dev devMemory) *pool {
	return &pool{dev: dev, free: map[int64][]uintptr{}, live: map[uintptr]int64{}}
}

// sizeClass rounds n up: to a power of two from 256 B up to 1 MiB, to a
// multiple of 1 MiB above, so reuse finds buffers while wasting at most
// half of a small one or 1 MiB of a large one.
func sizeClass(n int64) int64 {
	const small, big = 256, 1 << 20
	if n <= small {
		return small
	}
	if n <= big {
		c := int64(small)
		for c < n {
			c <<= 1
		}
		return c
	}
	return (n + big - 1) / big * big
}

// get returns a buffer of at least n bytes.
func (p *pool) get(n int64) (uintptr, error) {
	if n <= 0 {
		return 0, fmt.Errorf("cuda: allocate %d bytes", n)
	}
	c := sizeClass(n)
	p.mu.Lock()
	defer p.mu.Unlock()
	if l := p.free[c]; len(l) > 0 {
		ptr := l[len(l)-1]
		p.free[c] = l[:len(l)-1]
		p.live[ptr] = c
		p.stats.Reuses++
		p.stats.CachedBytes -= c
		p.stats.LiveBytes += c
		return ptr, nil
	}
	ptr, err := p.dev.alloc(c)
	if err != nil && p.stats.CachedBytes > 0 {
		p.trimLocked()
		ptr, err = p.dev.alloc(c)
	}
	if err != nil {
		return 0, fmt.Errorf("cuda: allocate %d bytes (%d in use): %w", c, p.stats.LiveBytes, err)
	}
	p.live[ptr] = c
	p.stats.Allocs++
	p.stats.LiveBytes += c
	return ptr, nil
}

// put returns a buffer from get to the cache.
func (p *pool) put(ptr uintptr) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	c, ok := p.live[ptr]
	if !ok {
		return fmt.Errorf("cuda: release of %#x, which the pool did not hand out (or already took back)", ptr)
	}
	delete(p.live, ptr)
	p.free[c] = append(p.free[c], ptr)
	p.stats.LiveBytes -= c
	p.stats.CachedBytes += c
	return nil
}

// trim frees every cached buffer.
func (p *pool) trim() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.trimLocked()
}

func (p *pool) trimLocked() error {
	var first error
	for c, l := range p.free {
		for _, ptr := range l {
			if err := p.dev.free(ptr); err != nil && first == nil {
				first = err
			}
			p.stats.Frees++
			p.stats.CachedBytes -= c
		}
		delete(p.free, c)
	}
	return first
}

// Stats returns the pool's counters.
func (p *pool) Stats() poolStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}
