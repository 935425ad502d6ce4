package nas

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBuiltinParamCounts(t *testing.T) {
	for _, tc := range []struct {
		name   string
		params int64
		macs   int64
	}{
		// conv1 20·24·24·25 + conv2 50·8·8·500 + fc1 800·500 + fc2 500·10
		{"lenet5", 431080, 288000 + 1600000 + 400000 + 5000},
		{"lenet300", 266610, 784*300 + 300*100 + 100*10},
		// At 3×32×32, the papers' figures: VGG-16 15.0 M parameters and
		// 313 M MACs (Li et al. 2017, Table 2: 1.5×10⁷, 3.13×10⁸),
		// ResNet-20 0.27 M and 41 M (He et al. 2016; 1×1 shortcuts add
		// 2,816), MobileNetV2 2.24 M (CIFAR strides, 1280-wide head).
		{"vgg16", 14987210, 313463808},
		{"resnet20", 272474, 40813184},
		{"mobilenetv2", 2236682, 87976448},
	} {
		a, err := BuiltinArch(tc.name)
		if err != nil {
			t.Fatal(err)
		}
		g, err := NewGraph(a)
		if err != nil {
			t.Fatal(err)
		}
		if g.Params() != tc.params || g.MACs() != tc.macs {
			t.Errorf("%s: %d params, %d MACs; want %d, %d", tc.name, g.Params(), g.MACs(), tc.params, tc.macs)
		}
	}
}

func TestLeNet5Shapes(t *testing.T) {
	a, _ := BuiltinArch("lenet5")
	g, err := NewGraph(a)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"[1×28×28]", "[20×24×24]", "[20×12×12]", "[50×8×8]", "[50×4×4]", "[500]", "[10]"}
	for i, s := range g.Tensors {
		if s.String() != want[i] {
			t.Errorf("tensor %d: %v, want %s", i, s, want[i])
		}
	}
}

func TestParseArchErrors(t *testing.T) {
	for _, tc := range []struct {
		name, json, want string
	}{
		{"syntax", "{\"version\":1,\n \"name\":\"x\",,}", "line 2, column 13"},
		{"type", `{"version":1,"name":"x","input":"a"}`, "line 1, column 36"},
		{"unknown field", `{"version":1,"name":"x","inptu":[1]}`, `unknown field "inptu"`},
		{"version", `{"version":2,"name":"x","input":[4],"classes":2,"layers":[{"name":"f","type":"linear","out":2}]}`, "unsupported version 2"},
		{"trailing", `{"version":1,"name":"x","input":[4],"classes":2,"layers":[{"name":"f","type":"linear","out":2}]} {}`, "after the object"},
		{"empty", ``, "empty input"},
		{"truncated", `{"version":1,"name":"x"`, "unexpected end"},
		{"no layers", `{"version":1,"name":"x","input":[4],"classes":2,"layers":[]}`, "no layers"},
		{"bad input", `{"version":1,"name":"x","input":[1,2],"classes":2,"layers":[{"name":"f","type":"linear","out":2}]}`, "input shape"},
		{"unknown type", `{"version":1,"name":"x","input":[4],"classes":2,"layers":[{"name":"f","type":"dense","out":2}]}`, `layer 0 "f": unknown type "dense"`},
		{"duplicate", `{"version":1,"name":"x","input":[4],"classes":2,"layers":[{"name":"f","type":"linear","out":4},{"name":"f","type":"linear","out":2}]}`, `layer 1 "f": duplicate name`},
		{"unknown input", `{"version":1,"name":"x","input":[4],"classes":2,"layers":[{"name":"f","type":"linear","out":2,"inputs":["g"]}]}`, `unknown input "g"`},
		{"forward ref", `{"version":1,"name":"x","input":[4],"classes":2,"layers":[{"name":"f","type":"linear","out":2,"inputs":["g"]},{"name":"g","type":"linear","out":2}]}`, "forward reference"},
		{"self", `{"version":1,"name":"x","input":[4],"classes":2,"layers":[{"name":"f","type":"linear","out":2,"inputs":["f"]}]}`, "cycle"},
		{"conv on vector", `{"version":1,"name":"x","input":[4],"classes":2,"layers":[{"name":"c","type":"conv","out":2,"kernel":3},{"name":"f","type":"linear","out":2}]}`, `layer 0 "c": needs a [C,H,W] input`},
		{"kernel too big", `{"version":1,"name":"x","input":[1,4,4],"classes":2,"layers":[{"name":"c","type":"conv","out":2,"kernel":5},{"name":"f","type":"linear","out":2}]}`, "shape mismatch"},
		{"groups", `{"version":1,"name":"x","input":[3,4,4],"classes":2,"layers":[{"name":"c","type":"conv","out":4,"kernel":1,"groups":2},{"name":"f","type":"linear","out":2}]}`, "not divisible"},
		{"add mismatch", `{"version":1,"name":"x","input":[4],"classes":2,"layers":[{"name":"a","type":"linear","out":3},{"name":"b","type":"linear","out":2,"inputs":["input"]},{"name":"s","type":"add","inputs":["a","b"]}]}`, "shape mismatch: adds [3] and [2]"},
		{"concat mismatch", `{"version":1,"name":"x","input":[2,4,4],"classes":2,"layers":[{"name":"a","type":"maxpool"},{"name":"c","type":"concat","inputs":["a","input"]},{"name":"f","type":"linear","out":2}]}`, "does not match"},
		{"split ambiguous", `{"version":1,"name":"x","input":[2,4,4],"classes":2,"layers":[{"name":"s","type":"split"},{"name":"f","type":"linear","out":2}]}`, "several outputs"},
		{"split sizes", `{"version":1,"name":"x","input":[4,4,4],"classes":2,"layers":[{"name":"s","type":"split","sizes":[1,2]},{"name":"f","type":"linear","out":2,"inputs":["s:0"]}]}`, "add up to 3"},
		{"unused", `{"version":1,"name":"x","input":[4],"classes":2,"layers":[{"name":"a","type":"linear","out":3},{"name":"f","type":"linear","out":2,"inputs":["input"]}]}`, `"a": output is never used`},
		{"classes", `{"version":1,"name":"x","input":[4],"classes":3,"layers":[{"name":"f","type":"linear","out":2}]}`, "vector of 3 class logits"},
		{"field", `{"version":1,"name":"x","input":[4],"classes":2,"layers":[{"name":"f","type":"linear","out":2,"kernel":3}]}`, `field "kernel" does not apply`},
		{"act", `{"version":1,"name":"x","input":[4],"classes":2,"layers":[{"name":"f","type":"linear","out":2,"act":"gelu"}]}`, `unknown activation "gelu"`},
		{"shuffle", `{"version":1,"name":"x","input":[3,2,2],"classes":2,"layers":[{"name":"s","type":"shuffle","groups":2},{"name":"f","type":"linear","out":2}]}`, "not divisible into 2 groups"},
		{"huge conv", `{"version":1,"name":"x","input":[16777216,1,1],"classes":2,"layers":[{"name":"c","type":"conv","out":16777216,"kernel":1},{"name":"f","type":"linear","out":2}]}`, "weights are too many"},
		{"huge linear", `{"version":1,"name":"x","input":[1,4096,4096],"classes":2,"layers":[{"name":"f","type":"linear","out":16}]}`, "weights are too many"},
		{"negative", `{"version":1,"name":"x","input":[1,4,4],"classes":2,"layers":[{"name":"c","type":"conv","out":-2,"kernel":1},{"name":"f","type":"linear","out":2}]}`, "out -2 is out of range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseArch([]byte(tc.json))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestArchRoundTripAndHash(t *testing.T) {
	a, _ := BuiltinArch("lenet5")
	b, err := ParseArch(a.JSON())
	if err != nil {
		t.Fatal(err)
	}
	if a.Hash() != b.Hash() {
		t.Fatal("hash changed through JSON round trip")
	}
	// Same structure spelled with explicit defaults and another name.
	c := a.Clone()
	c.Name = "copy"
	c.Layers[0].Stride = 1
	c.Layers[0].Inputs = []string{"input"}
	c.Layers[1].Stride = 2
	if c.Hash() != a.Hash() {
		t.Fatal("explicit defaults or a new name changed the hash")
	}
	c.Layers[2].Out = 40
	if c.Hash() == a.Hash() {
		t.Fatal("different width, same hash")
	}
	l3, _ := BuiltinArch("lenet300")
	if l3.Hash() == a.Hash() {
		t.Fatal("lenet300 and lenet5 hash alike")
	}
	if len(a.Hash()) != 64 {
		t.Fatalf("hash %q is not 64 hex digits", a.Hash())
	}
}

func TestSplitConcatShuffleShapes(t *testing.T) {
	a, err := ParseArch([]byte(`{"version":1,"name":"v2","input":[4,6,6],"classes":3,"layers":[
		{"name":"s","type":"split"},
		{"name":"b","type":"dwconv","kernel":3,"pad":1,"inputs":["s:1"]},
		{"name":"c","type":"concat","inputs":["s:0","b"]},
		{"name":"sh","type":"shuffle","groups":2},
		{"name":"p","type":"avgpool","size":3,"stride":2,"pad":1},
		{"name":"g","type":"gap"},
		{"name":"f","type":"linear","out":3}]}`))
	if err != nil {
		t.Fatal(err)
	}
	g, _ := NewGraph(a)
	got := []string{}
	for _, s := range g.Tensors {
		got = append(got, s.String())
	}
	want := "[4×6×6] [2×6×6] [2×6×6] [2×6×6] [4×6×6] [4×6×6] [4×3×3] [4] [3]"
	if strings.Join(got, " ") != want {
		t.Fatalf("shapes %s, want %s", strings.Join(got, " "), want)
	}
	if g.Nodes[1].Conv.Groups != 2 || g.NodeParams(g.Nodes[1]) != 2*9+2 {
		t.Fatalf("dwconv groups %d params %d", g.Nodes[1].Conv.Groups, g.NodeParams(g.Nodes[1]))
	}
}

func TestResolveArch(t *testing.T) {
	if _, err := ResolveArch("lenet5"); err != nil {
		t.Fatal(err)
	}
	_, err := ResolveArch("lenet7")
	if err == nil || !strings.Contains(err.Error(), "lenet300, lenet5") {
		t.Fatalf("unknown name: %v", err)
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "a.json")
	a, _ := BuiltinArch("lenet300")
	if err := os.WriteFile(p, a.JSON(), 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := ResolveArch(p)
	if err != nil || b.Hash() != a.Hash() {
		t.Fatalf("file: %v", err)
	}
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte("{\n  \"version\": 1,\n  oops\n}"), 0o644)
	if _, err := ResolveArch(bad); err == nil || !strings.Contains(err.Error(), "line 3, column 3: invalid character 'o'") {
		t.Fatalf("malformed file: %v", err)
	}
	if _, err := ResolveArch(filepath.Join(dir, "missing.json")); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("missing file: %v", err)
	}
}

func FuzzParseArch(f *testing.F) {
	for _, n := range BuiltinNames() {
		a, err := BuiltinArch(n)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(a.JSON())
	}
	f.Add([]byte(`{"version":1,"name":"v2","input":[4,6,6],"classes":3,"layers":[{"name":"s","type":"split"},{"name":"b","type":"dwconv","kernel":3,"pad":1,"inputs":["s:1"]},{"name":"c","type":"concat","inputs":["s:0","b"]},{"name":"sh","type":"shuffle","groups":2},{"name":"g","type":"gap"},{"name":"f","type":"linear","out":3}]}`))
	f.Add([]byte(`{"version":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := ParseArch(b)
		if err != nil {
			return
		}
		g, err := NewGraph(a)
		if err != nil {
			t.Fatalf("ParseArch accepted what NewGraph rejects: %v", err)
		}
		_ = g.Params()
		_ = g.MACs()
		if _, err := ParseArch(a.JSON()); err != nil {
			t.Fatalf("JSON() does not round-trip: %v", err)
		}
	})
}
