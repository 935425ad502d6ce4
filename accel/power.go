package accel

import (
	"fmt"
	"time"
)

// PowerStats summarise a device's power draw over a time window: the mean
// and maximum of the instantaneous readings, and the energy the device used
// in the window (from its energy counter when it has one, otherwise
// MeanWatts·Duration).
type PowerStats struct {
	Samples   int           `json:"samples"`
	MeanWatts float64       `json:"mean_watts"`
	MaxWatts  float64       `json:"max_watts"`
	Joules    float64       `json:"joules"`
	Duration  time.Duration `json:"duration_ns"`
}

// PowerMeter is implemented by backends that can read their device's power
// draw (NVML for NVIDIA GPUs). SamplePower calls fn and samples the power
// while it runs.
type PowerMeter interface {
	SamplePower(fn func() error) (PowerStats, error)
}

// Measurement is the result of Measure: latency of one Run and, when the
// backend has a PowerMeter, the power during the measurement and the energy
// of one inference (one sample of the batch):
//
//	JoulesPerInference = MeanWatts · Latency.Mean / Batch
type Measurement struct {
	Latency            LatencyStats `json:"latency"`
	Batch              int          `json:"batch"`
	Power              *PowerStats  `json:"power,omitempty"`
	JoulesPerInference float64      `json:"joules_per_inference,omitempty"`
}

// ProgramMeasurer is implemented by programs that measure themselves where
// they run (a program in a worker process measures there, so the protocol's
// round trips do not enter the timings).
type ProgramMeasurer interface {
	Measure(in []float32, opt LatencyOptions) (Measurement, error)
}

// Measure times p on in (Batch()·InputSize() floats) with MeasureProgram
// and, when b is a PowerMeter, samples the device's power meanwhile. A
// program that is a ProgramMeasurer measures itself.
func Measure(b Backend, p Program, in []float32, opt LatencyOptions) (Measurement, error) {
	if want := p.Batch() * p.InputSize(); len(in) != want {
		return Measurement{}, fmt.Errorf("measure: input has %d floats, want %d (batch %d × %d)", len(in), want, p.Batch(), p.InputSize())
	}
	if pm, ok := p.(ProgramMeasurer); ok {
		return pm.Measure(in, opt)
	}
	m := Measurement{Batch: p.Batch()}
	meter, ok := b.(PowerMeter)
	if !ok {
		st, err := MeasureProgram(p, in, opt)
		m.Latency = st
		return m, err
	}
	var st LatencyStats
	pw, err := meter.SamplePower(func() error {
		var err error
		st, err = MeasureProgram(p, in, opt)
		return err
	})
	if err != nil {
		return Measurement{}, err
	}
	m.Latency, m.Power = st, &pw
	if m.Batch > 0 {
		m.JoulesPerInference = pw.MeanWatts * st.Mean.Seconds() / float64(m.Batch)
	}
	return m, nil
}
