package accel

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Registration describes a backend to the registry.
type Registration struct {
	// Name is how users select it ("cpu", "cuda").
	Name string
	// Open opens the backend.
	Open func(Options) (Backend, error)
	// Devices lists the devices the backend can open, or says why none.
	Devices func() ([]Device, error)
}

var (
	regMu    sync.RWMutex
	registry = map[string]Registration{}
)

// Register makes a backend available by name. Backend packages call it from
// init; registering a name twice panics, as image.RegisterFormat would
// silently shadow.
func Register(r Registration) {
	regMu.Lock()
	defer regMu.Unlock()
	if _, dup := registry[r.Name]; dup {
		panic("accel: backend " + r.Name + " registered twice")
	}
	registry[r.Name] = r
}

// Registered returns the names of the registered backends, sorted.
func Registered() []string {
	regMu.RLock()
	defer regMu.RUnlock()
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// ParseSpec splits a device spec such as "cpu" or "cuda:1" into the backend
// name and device index.
func ParseSpec(spec string) (name string, index int, err error) {
	name, idx, found := strings.Cut(strings.TrimSpace(spec), ":")
	if name == "" {
		return "", 0, fmt.Errorf("empty device name (known: %s)", strings.Join(Registered(), ", "))
	}
	if found {
		index, err = strconv.Atoi(idx)
		if err != nil || index < 0 {
			return "", 0, fmt.Errorf("device %q: index %q is not a non-negative integer", spec, idx)
		}
	}
	return name, index, nil
}

// Lookup returns the registration of a backend name.
func Lookup(name string) (Registration, error) {
	regMu.RLock()
	r, ok := registry[name]
	regMu.RUnlock()
	if !ok {
		return Registration{}, fmt.Errorf("unknown device %q (registered backends: %s)", name, strings.Join(Registered(), ", "))
	}
	return r, nil
}

// Open opens the backend named by spec ("cpu", "cuda:0"); opt.Index is
// taken from the spec.
func Open(spec string, opt Options) (Backend, error) {
	name, index, err := ParseSpec(spec)
	if err != nil {
		return nil, err
	}
	r, err := Lookup(name)
	if err != nil {
		return nil, err
	}
	opt.Index = index
	return r.Open(opt)
}
