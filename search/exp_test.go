package search

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"hwnas/nas"
	"hwnas/nas/compress"
	"hwnas/nas/data"
)

func TestExpCompress(t *testing.T) {
	if os.Getenv("EXP") == "" {
		t.Skip()
	}
	train, val, _, err := data.LoadDir("/work/main/data/mnist")
	if err != nil {
		t.Fatal(err)
	}
	train = train.Subset(10000)
	s := DefaultMNISTSpace()
	rng := rand.New(rand.NewPCG(5, 5))
	for i := 0; i < 2; i++ {
		c, _ := s.Decode(uniform(rng, s.Sizes()))
		cand, _ := BuildCandidate(c)
		m, _ := nas.NewModel(cand.Arch, 1)
		k, cl, _ := nas.DefaultKernels(1)
		m.Kernels = k
		t0 := time.Now()
		_, err = nas.Train(context.Background(), m, train, nil, nas.TrainConfig{Epochs: 1, Optimizer: "adam", LR: 0.02, BatchSize: 32, Seed: 1}, nil)
		acc, _, _ := nas.Evaluate(m, val)
		fmt.Printf("cand %d train acc %.3f %.1fs\n", i, acc, time.Since(t0).Seconds())
		rj, _ := json.Marshal(CompressRecipe(cand.Layers, nil))
		fmt.Println(string(rj))
		cfg := compress.Config{Train: nas.TrainConfig{Optimizer: "adam", LR: 0.004, BatchSize: 32, Seed: 1}, PruneRounds: 2, Threads: 1, Log: os.Stdout}
		r, err := compress.Apply(context.Background(), m, CompressRecipe(cand.Layers, nil), train, val, cfg)
		if err != nil {
			fmt.Println("ERR", err)
			continue
		}
		fmt.Printf("bytes %d acc %.3f\n", r.Bytes, r.ValAccAfter)
		for _, l := range r.Layers {
			fmt.Printf("  %+v\n", l)
		}
		cl()
	}
}
