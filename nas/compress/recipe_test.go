package compress

import (
	"fmt"
	"strings"
	"testing"

	"hwnas/nas"
)

func lenet5Graph(t *testing.T) *nas.Graph {
	t.Helper()
	a, err := nas.BuiltinArch("lenet5")
	if err != nil {
		t.Fatal(err)
	}
	g, err := nas.NewGraph(a)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestParseRecipeShortForm(t *testing.T) {
	cases := []struct {
		in   string
		def  LayerChoice
		lays map[string]LayerChoice
		huff bool
	}{
		{"prune=0.9,share=5bit,huffman", LayerChoice{Prune: 0.9, Share: 5}, nil, true},
		{"channels=0.5:l1,quant=int8", LayerChoice{Channels: 0.5, Criterion: "l1", Bits: 8}, nil, false},
		{"channels=25%:bn:g2", LayerChoice{Channels: 0.25, Criterion: "bn", Group: 2}, nil, false},
		{"lowrank=0.25", LayerChoice{Rank: 0.25}, nil, false},
		{"lowrank=e0.9,quant=fp16", LayerChoice{Energy: 0.9, Bits: 16}, nil, false},
		// The override applies on top of the default wherever it appears.
		{"conv1.prune=0.5,prune=0.9,share=4bit", LayerChoice{Prune: 0.9, Share: 4},
			map[string]LayerChoice{"conv1": {Prune: 0.5, Share: 4}}, false},
		{"prune=0.9,fc2.prune=0", LayerChoice{Prune: 0.9}, map[string]LayerChoice{"fc2": {}}, false},
		{"share=5bit,quant=off,conv1.share=off,conv1.quant=int8,fc1.lowrank=e0.9,fc2.channels=0.5:bn:g2",
			LayerChoice{Share: 5}, map[string]LayerChoice{"conv1": {Bits: 8}, "fc1": {Share: 5, Energy: 0.9},
				"fc2": {Share: 5, Channels: 0.5, Criterion: "bn", Group: 2}}, false},
		{"channels=0.5,lowrank=0.5,conv1.channels=off,conv1.lowrank=off", LayerChoice{Channels: 0.5, Rank: 0.5},
			map[string]LayerChoice{"conv1": {}}, false},
	}
	for _, c := range cases {
		r, err := ParseRecipe(c.in)
		if err != nil {
			t.Errorf("%q: %v", c.in, err)
			continue
		}
		if r.Default != c.def || r.Huffman != c.huff || len(r.Layers) != len(c.lays) {
			t.Errorf("%q: got %+v huffman=%v layers=%v", c.in, r.Default, r.Huffman, r.Layers)
		}
		for n, want := range c.lays {
			if r.Layers[n] != want {
				t.Errorf("%q: layer %s = %+v, want %+v", c.in, n, r.Layers[n], want)
			}
		}
		// The short form prints back to an equivalent recipe.
		back, err := ParseRecipe(r.String())
		if err == nil {
			for n, want := range r.Layers {
				if back.For(n) != want {
					err = fmt.Errorf("layer %s: %+v after the round trip", n, back.For(n))
				}
			}
		}
		if err != nil || back.String() != r.String() || back.Default != r.Default {
			t.Errorf("%q: String() = %q does not round-trip (%v)", c.in, r.String(), err)
		}
	}
	r, err := ParseRecipe("distill=t.hwnw:T=2:a=0.5:arch=lenet5,prune=0.5")
	if err != nil || r.Distill == nil || r.Distill.T != 2 || r.Distill.Alpha != 0.5 || r.Distill.TeacherArch != "lenet5" || r.Distill.Teacher != "t.hwnw" {
		t.Errorf("distill: %+v %v", r, err)
	}
}

func TestParseRecipeJSON(t *testing.T) {
	r, err := ParseRecipe(`{"default":{"prune":0.9,"share":5},"layers":{"conv1":{"prune":0.3}},"huffman":true}`)
	if err != nil {
		t.Fatal(err)
	}
	if r.For("conv1").Prune != 0.3 || r.For("conv1").Share != 0 || r.For("fc1").Share != 5 || !r.Huffman {
		t.Errorf("JSON recipe %+v", r)
	}
	if _, err := ParseRecipe(`{"default":{"prun":0.9}}`); err == nil {
		t.Error("unknown JSON field accepted")
	}
}

func TestRecipeErrors(t *testing.T) {
	g := lenet5Graph(t)
	cases := []struct{ in, want string }{
		{"", "empty"},
		{"squeeze=0.5", `unknown method "squeeze"`},
		{"prune=1.5", "prune ratio 1.5 out of range"},
		{"prune=-0.1", "out of range"},
		{"prune=abc", "not a number"},
		{"channels=1", "would remove every channel"},
		{"quant=int3", "unsupported quantization"},
		{"share=20bit", "not supported"},
		{"share=4bit,quant=int8", "choose one"},
		{"lowrank=0", "out of range"},
		{"channels=0.5:l3", "unknown criterion"},
		{"fc9.prune=0.5", `layer "fc9"`},
		{"pool1.prune=0.5", `layer "pool1"`},
		{"conv1.channels=0.99", "would remove all 20 channels"},
		{"conv1.channels=0.5:g3", "not a multiple of group 3"},
		{"distill=t.hwnw:T=0", "temperature"},
		{"distill=t.hwnw:b=1", "unknown option"},
		{"frobnicate", "want key=value"},
	}
	for _, c := range cases {
		r, err := ParseRecipe(c.in)
		if err == nil {
			err = r.Validate(g)
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: err %v, want one mentioning %q", c.in, err, c.want)
		}
	}
	// A Recipe built in Go validates the same way.
	r := &Recipe{Default: LayerChoice{Prune: 0.9}}
	r.SetLayer("conv2", LayerChoice{Bits: 3})
	if err := r.Validate(g); err == nil || !strings.Contains(err.Error(), "3-bit") {
		t.Errorf("3-bit layer: %v", err)
	}
}
