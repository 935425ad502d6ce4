package remote

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"hwnas/accel"
)

// CUDABinEnv names the environment variable that overrides where the
// CUDA-enabled binary is.
const CUDABinEnv = "HWNAS_CUDA_BIN"

// cudaBinName is the CUDA-enabled binary `make cuda` builds beside hwnas.
const cudaBinName = "hwnas-cuda"

// ErrNoCUDA is the reason the cuda device is unavailable when no
// CUDA-enabled binary is found.
var ErrNoCUDA = errors.New("built without CUDA support: run `make cuda` (needs the CUDA toolkit, scripts/install-cuda.sh) and run on a machine with an NVIDIA GPU")

// CUDAConfig finds the CUDA-enabled binary: $HWNAS_CUDA_BIN when set,
// otherwise hwnas-cuda beside this executable. The worker serves the
// backend "cuda" (`hwnas-cuda cuda-worker --backend cuda`).
func CUDAConfig() (Config, error) {
	args := []string{"cuda-worker", "--backend", "cuda"}
	if p := os.Getenv(CUDABinEnv); p != "" {
		if _, err := os.Stat(p); err != nil {
			return Config{}, fmt.Errorf("%s=%s: %w", CUDABinEnv, p, err)
		}
		return Config{Path: p, Args: args}, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return Config{}, fmt.Errorf("%w (cannot locate this executable: %v)", ErrNoCUDA, err)
	}
	p := filepath.Join(filepath.Dir(exe), cudaBinName)
	if _, err := os.Stat(p); err != nil {
		return Config{}, fmt.Errorf("%w (no %s beside %s; or set %s)", ErrNoCUDA, cudaBinName, exe, CUDABinEnv)
	}
	return Config{Path: p, Args: args}, nil
}

// Registration returns a registry entry named name whose devices and
// backends come from workers started with the configuration find returns.
// Devices starts a worker, asks, and ends it; Open keeps a worker per
// backend. The worker learns the device index from Options.
func Registration(name string, find func() (Config, error)) accel.Registration {
	return accel.Registration{
		Name: name,
		Open: func(opt accel.Options) (accel.Backend, error) {
			if err := notInWorker(name); err != nil {
				return nil, err
			}
			cfg, err := find()
			if err != nil {
				return nil, fmt.Errorf("%s:%d: %w", name, opt.Index, err)
			}
			return Open(name, cfg, opt)
		},
		Devices: func() ([]accel.Device, error) {
			if err := notInWorker(name); err != nil {
				return nil, err
			}
			cfg, err := find()
			if err != nil {
				return nil, err
			}
			c, err := Start(cfg)
			if err != nil {
				return nil, err
			}
			defer c.Close()
			return c.Devices()
		},
	}
}

// workerEnv is set in every worker's environment, so that a worker whose
// backend is itself remote (a binary built without CUDA asked to serve
// "cuda") fails instead of starting workers without end.
const workerEnv = "HWNAS_REMOTE_WORKER"

func notInWorker(name string) error {
	if os.Getenv(workerEnv) != "" {
		return fmt.Errorf("%s: this worker was %w", name, ErrNoCUDA)
	}
	return nil
}
