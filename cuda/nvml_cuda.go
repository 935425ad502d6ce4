//go:build cuda

package cuda

import (
	"fmt"
	"sync"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"hwnas/accel"
)

// NVML is loaded at run time (libnvidia-ml.so.1 comes with the driver);
// where it is missing the device facts come from the driver API alone and
// power is not measured.
var (
	nvmlOnce sync.Once
	nvmlErr  error
)

func nvmlInit() error {
	nvmlOnce.Do(func() {
		if r := nvml.Init(); r != nvml.SUCCESS {
			nvmlErr = fmt.Errorf("nvml: %s", nvml.ErrorString(r))
		}
	})
	return nvmlErr
}

// nvmlFacts fills d's driver version, SM clock, name and memory from NVML,
// found by the UUID the driver API reported.
func nvmlFacts(d *accel.Device) {
	if nvmlInit() != nil || d.UUID == "" {
		return
	}
	h, r := nvml.DeviceGetHandleByUUID(d.UUID)
	if r != nvml.SUCCESS {
		return
	}
	if v, r := nvml.SystemGetDriverVersion(); r == nvml.SUCCESS {
		d.Driver = v
	}
	if name, r := h.GetName(); r == nvml.SUCCESS && name != "" {
		d.Name = name
	}
	if clk, r := h.GetMaxClockInfo(nvml.CLOCK_SM); r == nvml.SUCCESS && clk > 0 {
		d.SMClockMHz = int(clk)
	}
	if mem, r := h.GetMemoryInfo(); r == nvml.SUCCESS && mem.Total > 0 {
		d.MemoryBytes = int64(mem.Total)
	}
	if maj, min, r := h.GetCudaComputeCapability(); r == nvml.SUCCESS {
		d.ComputeCapability = fmt.Sprintf("%d.%d", maj, min)
	}
}

// powerMeter samples one GPU's power with NVML.
type powerMeter struct {
	h nvml.Device
}

// openPowerMeter returns nil when NVML cannot read the GPU's power.
func openPowerMeter(uuid string) *powerMeter {
	if nvmlInit() != nil || uuid == "" {
		return nil
	}
	h, r := nvml.DeviceGetHandleByUUID(uuid)
	if r != nvml.SUCCESS {
		return nil
	}
	if _, r := h.GetPowerUsage(); r != nvml.SUCCESS {
		return nil
	}
	return &powerMeter{h: h}
}

// powerPeriod is how often power is read while a measurement runs (NVML
// refreshes its reading every few to 100 ms depending on the GPU).
const powerPeriod = 5 * time.Millisecond

// sample reads the power every powerPeriod while fn runs; the energy comes
// from the GPU's energy counter (Volta and later) when it has one.
func (m *powerMeter) sample(fn func() error) (accel.PowerStats, error) {
	e0, er0 := m.h.GetTotalEnergyConsumption()
	t0 := time.Now()
	stop := make(chan struct{})
	var st accel.PowerStats
	var sum float64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(powerPeriod)
		defer tick.Stop()
		read := func() {
			if mw, r := m.h.GetPowerUsage(); r == nvml.SUCCESS {
				w := float64(mw) / 1000
				st.Samples++
				sum += w
				st.MaxWatts = max(st.MaxWatts, w)
			}
		}
		read()
		for {
			select {
			case <-stop:
				read()
				return
			case <-tick.C:
				read()
			}
		}
	}()
	err := fn()
	close(stop)
	wg.Wait()
	st.Duration = time.Since(t0)
	if err != nil {
		return st, err
	}
	if st.Samples > 0 {
		st.MeanWatts = sum / float64(st.Samples)
	}
	st.Joules = st.MeanWatts * st.Duration.Seconds()
	if e1, er1 := m.h.GetTotalEnergyConsumption(); er0 == nvml.SUCCESS && er1 == nvml.SUCCESS && e1 > e0 {
		st.Joules = float64(e1-e0) / 1000 // millijoules
		st.MeanWatts = st.Joules / st.Duration.Seconds()
	}
	return st, nil
}

func (m *powerMeter) close() {}
