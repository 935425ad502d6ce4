package compress

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"

	"hwnas/nas"
)

// LayerChoice is the compression of one conv or linear layer. Zero fields
// mean "not applied". The pipeline (Apply) runs the families in this order:
// channel pruning, low-rank, unstructured pruning, then weight sharing or
// quantization.
type LayerChoice struct {
	// Channels removes this fraction of the layer's output channels
	// (structured pruning, physically), ranked by Criterion.
	Channels float64 `json:"channels,omitempty"`
	// Criterion ranks channels: "l1" (default), "bn" or "taylor".
	Criterion string `json:"criterion,omitempty"`
	// Group keeps channels in whole groups of this size (group-level
	// pruning); 0 or 1 means single channels.
	Group int `json:"group,omitempty"`
	// Rank factorises the layer at this fraction of its full rank, (0, 1];
	// Energy instead keeps the smallest rank holding this fraction of Σσ².
	Rank   float64 `json:"rank,omitempty"`
	Energy float64 `json:"energy,omitempty"`
	// Prune zeroes this fraction of the layer's weights by magnitude
	// (unstructured pruning), [0, 1).
	Prune float64 `json:"prune,omitempty"`
	// Share clusters the weights into 2^Share shared values (k-means,
	// Deep Compression), 1..16 bits of index.
	Share int `json:"share,omitempty"`
	// Bits quantizes the weights: 8, 4, 2 (int, per-channel scale; run on
	// the int8 kernels), 1 (sign × per-channel scale) or 16 (fp16 storage).
	Bits int `json:"bits,omitempty"`
}

// IsZero reports whether the choice compresses nothing.
func (c LayerChoice) IsZero() bool { return c == LayerChoice{} }

// DistillSpec trains with a teacher's softened outputs: the loss is
// Alpha·T²·KL + (1 − Alpha)·CE (see DistillLoss).
type DistillSpec struct {
	// Teacher is the teacher's weights file; TeacherArch its architecture
	// (a built-in name or file; empty: the student's architecture).
	Teacher     string  `json:"teacher"`
	TeacherArch string  `json:"teacher_arch,omitempty"`
	T           float64 `json:"t"`
	Alpha       float64 `json:"alpha"`
}

// Recipe is a compression recipe: a default choice for every conv and
// linear layer, per-layer choices that replace it (complete choices, not
// merged field by field, so a layer can switch a family off), whether the
// encoded indices are Huffman-coded, and optional distillation during the
// fine-tuning steps.
type Recipe struct {
	Default LayerChoice            `json:"default"`
	Layers  map[string]LayerChoice `json:"layers,omitempty"`
	Huffman bool                   `json:"huffman,omitempty"`
	Distill *DistillSpec           `json:"distill,omitempty"`
}

// For returns the choice for layer.
func (r *Recipe) For(layer string) LayerChoice {
	if c, ok := r.Layers[layer]; ok {
		return c
	}
	return r.Default
}

// setsChannels reports whether the recipe names layer with a channel
// pruning of its own (ratio, criterion or group other than the default's),
// rather than inheriting the default's.
func (r *Recipe) setsChannels(layer string) bool {
	c, ok := r.Layers[layer]
	d := r.Default
	return ok && (c.Channels != d.Channels || c.Criterion != d.Criterion || c.Group != d.Group)
}

// SetLayer sets the choice of one layer.
func (r *Recipe) SetLayer(layer string, c LayerChoice) {
	if r.Layers == nil {
		r.Layers = map[string]LayerChoice{}
	}
	r.Layers[layer] = c
}

// ParseRecipe reads a recipe in either form: JSON (starting with '{'), or
// the short command-line form, comma-separated items
//
//	prune=0.9          unstructured pruning of 90% of the weights
//	share=5bit         k-means weight sharing with 2^5 clusters
//	quant=int8         quantization: int8, int7, int4, int2, binary (1 bit), fp16
//	                   (int7: weights within ±63, exact and fastest on AVX2
//	                   CPUs without VNNI, as onnxruntime's reduce_range)
//	channels=0.5:l1    remove half the output channels by filter L1 norm
//	                   (criteria l1, bn, taylor; ":g4" keeps groups of 4)
//	lowrank=0.25       low-rank at a quarter of full rank (lowrank=e0.9:
//	                   the rank that keeps 90% of the energy)
//	huffman            Huffman-code cluster indices and sparse index gaps
//	distill=t.hwnw:T=4:a=0.7[:arch=lenet5]   distil from a teacher
//
// Items prefixed with a layer name ("conv1.prune=0.5") apply to that layer
// only, on top of the default items (wherever they appear in the list);
// "conv1.share=off" switches a family off for one layer.
// A value that is a readable file is read as the recipe instead.
func ParseRecipe(s string) (*Recipe, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, fmt.Errorf("recipe: empty")
	}
	if !strings.HasPrefix(s, "{") && !strings.Contains(s, "=") && s != "huffman" {
		if b, err := os.ReadFile(s); err == nil {
			return ParseRecipe(string(b))
		}
	}
	if strings.HasPrefix(s, "{") {
		dec := json.NewDecoder(bytes.NewReader([]byte(s)))
		dec.DisallowUnknownFields()
		var r Recipe
		if err := dec.Decode(&r); err != nil {
			return nil, fmt.Errorf("recipe JSON: %w", err)
		}
		return &r, r.check()
	}
	r := &Recipe{}
	type override struct{ layer, key, val string }
	var overrides []override
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		key, val, hasVal := strings.Cut(item, "=")
		if !hasVal {
			if key == "huffman" {
				r.Huffman = true
				continue
			}
			return nil, fmt.Errorf("recipe item %q: want key=value (or huffman)", item)
		}
		if key == "distill" {
			d, err := ParseDistill(val)
			if err != nil {
				return nil, err
			}
			r.Distill = d
			continue
		}
		if i := strings.LastIndexByte(key, '.'); i >= 0 {
			overrides = append(overrides, override{key[:i], key[i+1:], val})
			continue
		}
		if err := setChoice(&r.Default, key, val); err != nil {
			return nil, err
		}
	}
	for _, o := range overrides {
		c, ok := r.Layers[o.layer]
		if !ok {
			c = r.Default
		}
		if err := setChoice(&c, o.key, o.val); err != nil {
			return nil, fmt.Errorf("layer %q: %w", o.layer, err)
		}
		r.SetLayer(o.layer, c)
	}
	return r, r.check()
}

// setChoice applies one short-form item to c.
func setChoice(c *LayerChoice, key, val string) error {
	num := func(v string) (float64, error) {
		pct := strings.HasSuffix(v, "%")
		f, err := strconv.ParseFloat(strings.TrimSuffix(v, "%"), 64)
		if err != nil {
			return 0, fmt.Errorf("recipe %s=%s: %q is not a number", key, val, v)
		}
		if pct {
			f /= 100
		}
		return f, nil
	}
	if val == "off" {
		switch key {
		case "prune":
			c.Prune = 0
		case "share":
			c.Share = 0
		case "quant", "bits":
			c.Bits = 0
		case "channels":
			c.Channels, c.Criterion, c.Group = 0, "", 0
		case "lowrank", "rank", "energy":
			c.Rank, c.Energy = 0, 0
		default:
			return fmt.Errorf("recipe: unknown method %q (known: prune, share, quant, channels, lowrank, energy, huffman, distill)", key)
		}
		return nil
	}
	var err error
	switch key {
	case "prune":
		c.Prune, err = num(val)
	case "share":
		v := strings.TrimSuffix(strings.TrimSuffix(val, "bits"), "bit")
		c.Share, err = strconv.Atoi(v)
		if err != nil || c.Share == 0 {
			return fmt.Errorf("recipe share=%s: want a bit width 1..16 such as 5bit", val)
		}
	case "quant", "bits":
		bits, ok := map[string]int{"int8": 8, "8bit": 8, "8": 8, "int7": 7, "7bit": 7, "7": 7, "int4": 4, "4bit": 4, "4": 4, "int2": 2, "2bit": 2, "2": 2,
			"binary": 1, "1bit": 1, "1": 1, "fp16": 16, "16bit": 16, "16": 16}[val]
		if !ok {
			return fmt.Errorf("recipe %s=%s: unsupported quantization (supported: int8, int7, int4, int2, binary, fp16)", key, val)
		}
		c.Bits = bits
	case "channels":
		parts := strings.Split(val, ":")
		if c.Channels, err = num(parts[0]); err != nil {
			return err
		}
		for _, p := range parts[1:] {
			switch {
			case p == "l1" || p == "bn" || p == "taylor":
				c.Criterion = p
			case strings.HasPrefix(p, "g"):
				if c.Group, err = strconv.Atoi(p[1:]); err != nil {
					return fmt.Errorf("recipe channels=%s: group %q is not a number", val, p)
				}
			default:
				return fmt.Errorf("recipe channels=%s: unknown criterion %q (known: l1, bn, taylor)", val, p)
			}
		}
	case "lowrank", "rank", "energy":
		var f float64
		if f, err = num(strings.TrimPrefix(val, "e")); err == nil && !(f > 0 && f <= 1) {
			// Zero would read as "not applied": reject it here.
			return fmt.Errorf("recipe %s=%s: rank fraction or energy %g out of range (0, 1]", key, val, f)
		}
		if key == "energy" || strings.HasPrefix(val, "e") {
			c.Energy = f
		} else {
			c.Rank = f
		}
	default:
		return fmt.Errorf("recipe: unknown method %q (known: prune, share, quant, channels, lowrank, energy, huffman, distill)", key)
	}
	return err
}

// ParseDistill parses the distill= form, TEACHER.hwnw[:T=4][:a=0.7][:arch=NAME]
// (the defaults T = 4, α = 0.7), and checks its values.
func ParseDistill(val string) (*DistillSpec, error) {
	parts := strings.Split(val, ":")
	d := &DistillSpec{Teacher: parts[0], T: 4, Alpha: 0.7}
	if d.Teacher == "" {
		return nil, fmt.Errorf("recipe distill=%s: no teacher weights file", val)
	}
	for _, p := range parts[1:] {
		k, v, _ := strings.Cut(p, "=")
		var err error
		switch strings.ToLower(k) {
		case "t":
			d.T, err = strconv.ParseFloat(v, 64)
		case "a", "alpha":
			d.Alpha, err = strconv.ParseFloat(v, 64)
		case "arch":
			d.TeacherArch = v
		default:
			return nil, fmt.Errorf("recipe distill=%s: unknown option %q (known: T, a, arch)", val, k)
		}
		if err != nil {
			return nil, fmt.Errorf("recipe distill=%s: %s is not a number", val, p)
		}
	}
	return d, d.Check()
}

// Check validates the spec's values: a teacher file, a positive
// temperature, α in [0, 1].
func (d *DistillSpec) Check() error {
	switch {
	case d.Teacher == "":
		return fmt.Errorf("recipe distill: no teacher weights file")
	case !(d.T > 0):
		return fmt.Errorf("recipe distill: temperature %g must be positive", d.T)
	case !(d.Alpha >= 0 && d.Alpha <= 1):
		return fmt.Errorf("recipe distill: alpha %g out of range [0, 1]", d.Alpha)
	}
	return nil
}

// check validates the values of every choice, without a model.
func (r *Recipe) check() error {
	if err := r.Default.check("default"); err != nil {
		return err
	}
	names := make([]string, 0, len(r.Layers))
	for n := range r.Layers {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := r.Layers[n].check("layer " + strconv.Quote(n)); err != nil {
			return err
		}
	}
	if d := r.Distill; d != nil {
		return d.Check()
	}
	return nil
}

func (c LayerChoice) check(where string) error {
	in := func(v, lo, hi float64, loOpen, hiOpen bool) bool {
		return !math.IsNaN(v) && (v > lo || (!loOpen && v == lo)) && (v < hi || (!hiOpen && v == hi))
	}
	switch {
	case c.Prune != 0 && !in(c.Prune, 0, 1, false, true):
		return fmt.Errorf("recipe %s: prune ratio %g out of range [0, 1)", where, c.Prune)
	case c.Channels != 0 && !in(c.Channels, 0, 1, false, true):
		return fmt.Errorf("recipe %s: channel ratio %g out of range [0, 1) (1 would remove every channel)", where, c.Channels)
	case c.Rank != 0 && !in(c.Rank, 0, 1, true, false):
		return fmt.Errorf("recipe %s: rank fraction %g out of range (0, 1]", where, c.Rank)
	case c.Energy != 0 && !in(c.Energy, 0, 1, true, false):
		return fmt.Errorf("recipe %s: energy %g out of range (0, 1]", where, c.Energy)
	case c.Rank != 0 && c.Energy != 0:
		return fmt.Errorf("recipe %s: give a rank fraction or an energy, not both", where)
	case c.Share != 0 && (c.Share < 1 || c.Share > 16):
		return fmt.Errorf("recipe %s: sharing with %d-bit indices is not supported (1..16)", where, c.Share)
	case c.Share != 0 && c.Bits != 0:
		return fmt.Errorf("recipe %s: weight sharing and quantization both set; choose one", where)
	case c.Group < 0:
		return fmt.Errorf("recipe %s: group %d must be positive", where, c.Group)
	case c.Criterion != "" && c.Criterion != string(CriterionL1) && c.Criterion != string(CriterionBN) && c.Criterion != string(CriterionTaylor):
		return fmt.Errorf("recipe %s: unknown channel criterion %q (known: l1, bn, taylor)", where, c.Criterion)
	}
	if c.Bits != 0 {
		if err := checkBits(c.Bits); err != nil {
			return fmt.Errorf("recipe %s: %w", where, err)
		}
	}
	return nil
}

// Validate checks the recipe against a model's graph: every named layer
// exists and is a conv or linear layer, and channel pruning leaves at least
// one channel (or group) of every layer it touches. It also checks the
// values (as ParseRecipe does), so a Recipe built in Go can be validated.
func (r *Recipe) Validate(g *nas.Graph) error {
	if err := r.check(); err != nil {
		return err
	}
	weighted := map[string]*nas.Node{}
	var names []string
	for _, n := range g.Nodes {
		if n.Weighted() {
			weighted[n.Layer.Name] = n
			names = append(names, n.Layer.Name)
		}
	}
	for name := range r.Layers {
		if _, ok := weighted[name]; !ok {
			return fmt.Errorf("recipe names layer %q, which %q does not have as a conv or linear layer (layers: %s)", name, g.Arch.Name, strings.Join(names, ", "))
		}
	}
	for _, name := range names {
		c := r.For(name)
		if c.Channels == 0 {
			continue
		}
		n := weighted[name]
		out := g.OutShape(n)[0]
		group := max(c.Group, 1)
		if out%group != 0 {
			return fmt.Errorf("recipe layer %q: %d channels are not a multiple of group %d", name, out, group)
		}
		if groups := out / group; groups-int(math.Round(c.Channels*float64(groups))) < 1 {
			return fmt.Errorf("recipe layer %q: channel ratio %g would remove all %d channels", name, c.Channels, out)
		}
	}
	return nil
}

// String returns the short form of the recipe: the default's items, then
// for each layer the items in which its choice differs from the default
// (a family the layer switches off is written with 0).
func (r *Recipe) String() string {
	var items []string
	items = append(items, choiceItems("", r.Default, LayerChoice{})...)
	names := make([]string, 0, len(r.Layers))
	for n := range r.Layers {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		items = append(items, choiceItems(n+".", r.Layers[n], r.Default)...)
	}
	if r.Huffman {
		items = append(items, "huffman")
	}
	if d := r.Distill; d != nil {
		s := fmt.Sprintf("distill=%s:T=%g:a=%g", d.Teacher, d.T, d.Alpha)
		if d.TeacherArch != "" {
			s += ":arch=" + d.TeacherArch
		}
		items = append(items, s)
	}
	if len(items) == 0 {
		return "none"
	}
	return strings.Join(items, ",")
}

// choiceItems writes the fields of c that differ from base.
func choiceItems(prefix string, c, base LayerChoice) []string {
	var items []string
	g := func(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }
	off := func(key string) { items = append(items, prefix+key+"=off") }
	if c.Channels != base.Channels || c.Criterion != base.Criterion || c.Group != base.Group {
		if c.Channels == 0 {
			off("channels")
		}
	}
	if c.Channels != 0 && (c.Channels != base.Channels || c.Criterion != base.Criterion || c.Group != base.Group) {
		s := prefix + "channels=" + g(c.Channels)
		if c.Criterion != "" {
			s += ":" + c.Criterion
		}
		if c.Group > 1 {
			s += ":g" + strconv.Itoa(c.Group)
		}
		items = append(items, s)
	}
	switch {
	case c.Rank == base.Rank && c.Energy == base.Energy:
	case c.Rank != 0:
		items = append(items, prefix+"lowrank="+g(c.Rank))
	case c.Energy != 0:
		items = append(items, prefix+"lowrank=e"+g(c.Energy))
	default:
		off("lowrank")
	}
	if c.Prune != base.Prune {
		items = append(items, prefix+"prune="+g(c.Prune))
	}
	switch {
	case c.Share == base.Share:
	case c.Share == 0:
		off("share")
	default:
		items = append(items, fmt.Sprintf("%sshare=%dbit", prefix, c.Share))
	}
	switch {
	case c.Bits == base.Bits:
	case c.Bits == 0:
		off("quant")
	default:
		items = append(items, prefix+"quant="+map[int]string{8: "int8", 7: "int7", 4: "int4", 2: "int2", 1: "binary", 16: "fp16"}[c.Bits])
	}
	return items
}
