package search

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDefaultSpaceDecodes(t *testing.T) {
	s := DefaultMNISTSpace()
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	dec := s.Decisions()
	if got, want := len(dec), 3*len(stageFields)+2; got != want {
		t.Fatalf("%d decisions, want %d", got, want)
	}
	if dec[0].Name != "s1.block" || dec[len(dec)-1].Name != "distill" {
		t.Fatalf("decision names %q … %q", dec[0].Name, dec[len(dec)-1].Name)
	}
	last := make(Decisions, len(dec))
	for i := range last {
		last[i] = len(dec[i].Choices) - 1
	}
	c, err := s.Decode(last)
	if err != nil {
		t.Fatal(err)
	}
	if c.Stages[0].Block != BlockDWSep || c.Stages[2].Width != 48 || c.Stages[1].Bits != 32 || c.Stages[1].Clusters != 32 ||
		c.Head != HeadFlatten || c.Distill || c.Stages[0].Stride != 2 {
		t.Fatalf("decoded %+v", c)
	}
	if dec[len(dec)-2].Name != "head" {
		t.Fatalf("decision %q before distill, want head", dec[len(dec)-2].Name)
	}
	named, err := s.Named(last)
	if err != nil || named["s3.width"] != "48" || named["head"] != "flatten" || named["distill"] != "false" || named["s2.prune"] != "0.5" {
		t.Fatalf("named %v, %v", named, err)
	}
	if _, err := s.Decode(last[:3]); err == nil {
		t.Fatal("short decisions accepted")
	}
	last[1] = 99
	if _, err := s.Decode(last); err == nil {
		t.Fatal("out-of-range decision accepted")
	}
	if n := s.Cardinality(); n < 1e6 {
		t.Fatalf("cardinality %d", n)
	}
}

func TestParseSpaceRoundTrip(t *testing.T) {
	data, err := json.Marshal(DefaultMNISTSpace())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ParseSpace(data)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.Sizes(), DefaultMNISTSpace().Sizes(); len(got) != len(want) {
		t.Fatalf("sizes %v, want %v", got, want)
	}
	path := filepath.Join(t.TempDir(), "space.json")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadSpace(path); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadSpace(path + ".missing"); err == nil {
		t.Fatal("missing file accepted")
	}
}

func TestParseSpaceErrors(t *testing.T) {
	stage := `{"block":["conv"],"width":[8],"kernel":[3],"expansion":[1],"repeats":[1],"stride":2,"prune":[0],"bits":[8],"rank":[1],"clusters":[0]}`
	wrap := func(st string) string {
		return `{"version":1,"input":[1,28,28],"classes":10,"stages":[` + st + `],"distill":[false]}`
	}
	if _, err := ParseSpace([]byte(wrap(stage))); err != nil {
		t.Fatalf("valid space refused: %v", err)
	}
	for _, tc := range []struct {
		name, in, want string
	}{
		{"syntax", "{\n  \"version\": 1,\n  \"input\": [1,28,28]\n  \"classes\": 10}", "line 4, column 3"},
		{"truncated", `{"version":1,`, "unexpected end"},
		{"empty", ``, "empty file"},
		{"type", "{\"version\":\"one\"}", `field "version"`},
		{"unknown field", `{"version":1,"stagez":[]}`, `unknown field "stagez"`},
		{"unknown block", wrap(strings.Replace(stage, `["conv"]`, `["resnet"]`, 1)), `unknown block type "resnet"`},
		{"empty choices", wrap(strings.Replace(stage, `"width":[8]`, `"width":[]`, 1)), "stage 1: width has no choices"},
		{"even kernel", wrap(strings.Replace(stage, `"kernel":[3]`, `"kernel":[4]`, 1)), "kernel 4 is invalid"},
		{"bits", wrap(strings.Replace(stage, `"bits":[8]`, `"bits":[3]`, 1)), "bits 3 is invalid"},
		{"prune", wrap(strings.Replace(stage, `"prune":[0]`, `"prune":[1]`, 1)), "prune 1 is invalid"},
		{"stride", wrap(strings.Replace(stage, `"stride":2`, `"stride":3`, 1)), "stride 3"},
		{"no stages", `{"version":1,"input":[1,28,28],"classes":10,"stages":[],"distill":[false]}`, "no stages"},
		{"no distill", `{"version":1,"input":[1,28,28],"classes":10,"stages":[` + stage + `]}`, "distill has no choices"},
		{"version", `{"version":2}`, "version 2"},
		{"input", `{"version":1,"input":[784],"classes":10}`, "input must be [C,H,W]"},
		{"trailing", wrap(stage) + `{}`, "extra data"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseSpace([]byte(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// TestSpaceHead: a space without head choices (the form written before
// heads were searched) has no head decision and decodes to global average
// pooling; head choices add one decision before distill; unknown heads are
// refused.
func TestSpaceHead(t *testing.T) {
	old := DefaultMNISTSpace()
	old.Head = nil
	withHead := DefaultMNISTSpace()
	if got, want := len(withHead.Sizes()), len(old.Sizes())+1; got != want {
		t.Fatalf("%d decisions with heads, want %d", got, want)
	}
	for _, tc := range []struct {
		space *Space
		last  int // index of the head decision's value (−1: none)
		want  string
	}{
		{old, -1, HeadGAP},
		{withHead, 0, HeadGAP},
		{withHead, 1, HeadFlatten},
	} {
		d := make(Decisions, len(tc.space.Sizes()))
		if tc.last >= 0 {
			d[len(d)-2] = tc.last
		}
		c, err := tc.space.Decode(d)
		if err != nil || c.Head != tc.want {
			t.Fatalf("head %q, %v; want %q", c.Head, err, tc.want)
		}
		if _, ok := mustNamed(t, tc.space, d)["head"]; ok != (tc.last >= 0) {
			t.Fatalf("named has head: %v, want %v", ok, tc.last >= 0)
		}
	}
	bad := DefaultMNISTSpace()
	bad.Head = []string{HeadGAP, "maxpool"}
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), `unknown head "maxpool"`) {
		t.Fatalf("error %v, want unknown head", err)
	}
}

func mustNamed(t *testing.T, s *Space, d Decisions) map[string]string {
	t.Helper()
	n, err := s.Named(d)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestShippedSpaces loads every space file in spaces/ (the README's
// searches use them): each parses and validates.
func TestShippedSpaces(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "spaces", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no space files in ../spaces (%v)", err)
	}
	for _, f := range files {
		s, err := LoadSpace(f)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if err := s.Validate(); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}
