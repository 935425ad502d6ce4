package nas

import (
	"fmt"
	"sort"
	"strings"
)

// builtins are the reference architectures, as JSON so that they go
// through the same decoder and validation as user files.
var builtins = map[string]string{
	// LeNet-5, Caffe variant (as in Deep Compression): 431,080 parameters.
	"lenet5": `{"version":1,"name":"lenet5","input":[1,28,28],"classes":10,"layers":[
		{"name":"conv1","type":"conv","out":20,"kernel":5},
		{"name":"pool1","type":"maxpool","size":2},
		{"name":"conv2","type":"conv","out":50,"kernel":5},
		{"name":"pool2","type":"maxpool","size":2},
		{"name":"fc1","type":"linear","out":500,"act":"relu"},
		{"name":"fc2","type":"linear","out":10}]}`,
	// LeNet-300-100: 784-300-100-10 with ReLU, 266,610 parameters.
	"lenet300": `{"version":1,"name":"lenet300","input":[1,28,28],"classes":10,"layers":[
		{"name":"fc1","type":"linear","out":300,"act":"relu"},
		{"name":"fc2","type":"linear","out":100,"act":"relu"},
		{"name":"fc3","type":"linear","out":10}]}`,
}

// BuiltinNames lists the built-in architectures, sorted.
func BuiltinNames() []string {
	n := make([]string, 0, len(builtins))
	for k := range builtins {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

// BuiltinArch returns a fresh copy of a built-in architecture.
func BuiltinArch(name string) (*Arch, error) {
	s, ok := builtins[name]
	if !ok {
		return nil, fmt.Errorf("unknown built-in architecture %q (built-in: %s)", name, strings.Join(BuiltinNames(), ", "))
	}
	return ParseArch([]byte(s))
}
