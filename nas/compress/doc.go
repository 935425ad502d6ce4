// Package compress makes trained models physically smaller: the
// compression families of DESIGN.md as passes over a nas.Model, the
// pipeline that applies a recipe of them, and the compressed model format.
//
// A Recipe (recipe.go: the short form "prune=0.9,share=5bit,huffman", JSON,
// per-layer overrides) chooses per conv or linear layer among channel
// pruning, low-rank factorisation, unstructured pruning, weight sharing and
// quantization, with optional distillation. Apply (apply.go) runs it as a
// sequence of named stages — channel pruning, low-rank, pruning,
// sharing/quantization, encoding — each followed by fine-tuning, and
// reports the accuracy after each.
//
// The passes, each usable alone:
//
//   - structure.go: RemoveChannels (physical channel pruning, carried
//     through every consumer by its layer type's nas.ChannelRule) and
//     Factorize (low-rank, a layer becomes two); scores.go ranks channels
//     (filter L1, batch-norm γ with the slimming penalty, first-order
//     Taylor);
//   - lowrank.go: the SVD and rank choices;
//   - prune.go: magnitude thresholds, masks, the gradual schedule;
//   - kmeans.go: weight sharing with a codebook and its gradients;
//   - quant.go, quantmodel.go: per-channel integer and fake quantization,
//     fp16, activation ranges; the int8 form of a layer (accel.QuantWeights);
//   - distill.go: the distillation loss;
//   - codec.go, huffman.go: Encode and Decode of the compressed model
//     format (sparse gaps, codebooks, packed integers, fp16, Huffman
//     coding): the byte count a trial reports is the length of Encode.
//
// A compressed model says what it is, not how to run it: Decode gives it
// its int8 forms (Model.Quant) and the CSR form of every layer at least
// SparseMin zero (Model.Sparse), and nas.Lower carries both into the plan.
// Which kernels run them is decided by each backend when it compiles the
// plan for its device. Nothing here times kernels, so the same model,
// recipe, data and seed give the same bytes and figures run after run.
package compress
