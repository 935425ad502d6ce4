// Package search is hwnas's search loop: the space of categorical
// decisions (architecture per stage plus a compression recipe per stage),
// the strategies that propose decisions (rl, random, evolution), the
// MnasNet reward, the worker protocol that evaluates one trial in a child
// process, and the coordinator that runs a study with resume.
//
// A strategy sees only the cardinalities of the decisions; the Space turns
// an index vector into a typed Config, and BuildCandidate maps a Config to
// an architecture (nas.Builder's compact blocks) and per-layer compression
// choices (CompressRecipe turns them into a compress.Recipe).
//
// Files: space.go (Space, JSON space files), strategy.go (Strategy,
// random), rl.go + lstm.go (REINFORCE with an LSTM controller),
// evolution.go (regularized evolution), reward.go (MnasNet reward),
// model.go (decisions → network + recipe), protocol.go (TrialSpec,
// TrialResult), worker.go (ServeWorker, EvaluateTrial), proc.go (RunWorker:
// a child process with time and memory limits), run.go (Run: the
// coordinator), final.go (final training of the winner), optable.go (the
// per-op latency table), measure.go (MeasureStudy), weights.go (the stored
// weights blob), bench.go (Benchmark of the strategies).
//
// Every trial runs in its own process (`hwnas worker`), so a crash, a NaN,
// a hang or an allocation storm fails that trial only; the coordinator
// records each trial in one transaction and checkpoints the strategy after
// every update, so `kill -9` at any moment loses nothing finished.
package search
