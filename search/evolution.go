package search

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
)

// Evolution is regularized evolution (Real et al., AAAI 2019): a
// population of the last Population observed points in arrival order.
// While the population is not full it proposes uniform points; afterwards
// it samples Sample members without replacement (tournament), takes the
// one with the highest reward as parent and mutates one decision to a
// different value. Observe appends the child and removes the oldest member
// (ageing), so good but old points die out.
type Evolution struct {
	sizes      []int
	Population int      `json:"population"`
	Sample     int      `json:"sample"`
	Members    []Member `json:"members"`
}

// Member is one point of the population and its reward.
type Member struct {
	D      Decisions `json:"d"`
	Reward float64   `json:"reward"`
}

// NewEvolution returns regularized evolution with the given population and
// tournament sizes (sample is clamped to [1, population]).
func NewEvolution(sizes []int, population, sample int) *Evolution {
	if population < 2 {
		population = 2
	}
	if sample < 1 {
		sample = 1
	}
	if sample > population {
		sample = population
	}
	return &Evolution{sizes: append([]int(nil), sizes...), Population: population, Sample: sample}
}

func (e *Evolution) Name() string { return "evolution" }

// Propose returns a uniform point until the population is full, then a
// one-decision mutation of a tournament winner.
func (e *Evolution) Propose(rng *rand.Rand) (Decisions, error) {
	if len(e.Members) < e.Population {
		return uniform(rng, e.sizes), nil
	}
	idx := rng.Perm(len(e.Members))[:e.Sample]
	best := idx[0]
	for _, i := range idx[1:] {
		if e.Members[i].Reward > e.Members[best].Reward {
			best = i
		}
	}
	child := append(Decisions(nil), e.Members[best].D...)
	var mutable []int
	for i, n := range e.sizes {
		if n > 1 {
			mutable = append(mutable, i)
		}
	}
	if len(mutable) == 0 {
		return child, nil
	}
	k := mutable[rng.IntN(len(mutable))]
	v := rng.IntN(e.sizes[k] - 1)
	if v >= child[k] {
		v++
	}
	child[k] = v
	return child, nil
}

// Observe adds d to the population and ages out the oldest member.
func (e *Evolution) Observe(d Decisions, reward float64) error {
	if err := checkDecisions(e.sizes, d); err != nil {
		return err
	}
	e.Members = append(e.Members, Member{D: append(Decisions(nil), d...), Reward: reward})
	if len(e.Members) > e.Population {
		e.Members = append([]Member(nil), e.Members[len(e.Members)-e.Population:]...)
	}
	return nil
}

// Checkpoint serialises the population.
func (e *Evolution) Checkpoint() ([]byte, error) { return json.Marshal(e) }

// Restore replaces the state with a checkpoint taken from an Evolution of
// the same space.
func (e *Evolution) Restore(data []byte) error {
	var c Evolution
	if err := json.Unmarshal(data, &c); err != nil {
		return fmt.Errorf("evolution checkpoint: %w", err)
	}
	for i, m := range c.Members {
		if err := checkDecisions(e.sizes, m.D); err != nil {
			return fmt.Errorf("evolution checkpoint: member %d: %w", i, err)
		}
	}
	if c.Population < 2 || c.Sample < 1 || c.Sample > c.Population {
		return fmt.Errorf("evolution checkpoint: population %d, sample %d", c.Population, c.Sample)
	}
	e.Population, e.Sample, e.Members = c.Population, c.Sample, c.Members
	return nil
}
