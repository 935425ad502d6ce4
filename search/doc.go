// Package search is hwnas's search loop: the space of categorical
// decisions (architecture per stage plus a compression recipe per stage),
// the strategies that propose decisions (rl, random, evolution), the
// MnasNet reward, the worker protocol that evaluates one trial in a child
// process, and the coordinator that runs a study with resume.
//
// A strategy sees only the cardinalities of the decisions; the Space turns
// an index vector into a typed Config, and the model package maps a Config
// to an architecture and a compression recipe.
package search
