// Package nas is what a model is in hwnas: the versioned JSON architecture
// format (Arch), the graph with shape inference and parameter/MAC counts
// (Graph), models with parameters and training on accel kernels (Model,
// Train), the weights file, the built-in reference models, compact blocks
// (Builder) and the lowering of a trained model into an accel inference
// Plan (Lower).
package nas
