package data

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// noCache loads with the decode cache off unless a test wants it.
var noCache = Options{Cache: "off"}

func writePNG(t *testing.T, path string, img image.Image) {
	t.Helper()
	os.MkdirAll(filepath.Dir(path), 0o755)
	if err := writeImage(path, func(f *os.File) error { return png.Encode(f, img) }); err != nil {
		t.Fatal(err)
	}
}

// TestLoadImageFolder: classes are the sorted subfolders, colour images
// give 3 channels in planar order with exact pixel values, PNG and JPEG
// mix, other files are ignored, and the seeded split holds out a tenth of
// each class for validation and for test.
func TestLoadImageFolder(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pets")
	if err := WriteSyntheticImages(dir, SyntheticImages{Classes: 3, PerClass: 20, H: 8, W: 6, JPEG: true, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "class1", "README.txt"), []byte("notes"), 0o644)
	os.WriteFile(filepath.Join(dir, "class1", ".hidden.png"), []byte("junk"), 0o644)
	os.WriteFile(filepath.Join(dir, "labels.csv"), []byte("x"), 0o644)
	// One image with known pixels replaces class2's first.
	known := image.NewRGBA(image.Rect(0, 0, 6, 8))
	for y := 0; y < 8; y++ {
		for x := 0; x < 6; x++ {
			known.SetRGBA(x, y, color.RGBA{uint8(10*y + x), 100, uint8(200 - x), 255})
		}
	}
	writePNG(t, filepath.Join(dir, "class2", "img0000.png"), known)

	d, err := Load(dir, noCache)
	if err != nil {
		t.Fatal(err)
	}
	in := d.Info
	if in.Format != FormatImages || !slices.Equal(in.Shape, []int{3, 8, 6}) || in.Classes != 3 ||
		!slices.Equal(in.ClassNames, []string{"class0", "class1", "class2"}) {
		t.Fatalf("info %+v", in)
	}
	if in.Train != 48 || in.Val != 6 || in.Test != 6 {
		t.Fatalf("split %d/%d/%d, want 48/6/6 (2 of 20 per class held out each)", in.Train, in.Val, in.Test)
	}
	if in.Options.SplitSeed != 1 || in.Options.ValFraction != 0.1 || in.Options.TestFraction != 0.1 || len(in.Digest) != 64 {
		t.Errorf("recorded options %+v digest %q", in.Options, in.Digest)
	}
	for _, s := range []*Set{d.Train, d.Val, d.Test} {
		count := map[int32]int{}
		for _, l := range s.Labels {
			count[l]++
		}
		if len(count) != 3 {
			t.Errorf("%s: classes %v, want all three in every split", s.Name, count)
		}
	}
	// Find the known image and check its planes.
	all := []*Set{d.Train, d.Val, d.Test}
	found := false
	for _, s := range all {
		for i := 0; i < s.N; i++ {
			img := s.Images[i*s.SampleSize() : (i+1)*s.SampleSize()]
			if s.Labels[i] == 2 && img[0] == 0 && img[48] == float32(100)/255 {
				found = true
				if img[1*6+5] != float32(15)/255 || img[48+7] != float32(100)/255 || img[96+5] != float32(195)/255 {
					t.Fatalf("known image planes wrong: %v %v %v", img[11], img[55], img[101])
				}
			}
		}
	}
	if !found {
		t.Fatal("the known image is in no split")
	}
	// The same seed gives the same split, another seed another.
	d2, _ := Load(dir, noCache)
	if d2.Info.Digest != in.Digest || !slices.Equal(d2.Val.Labels, d.Val.Labels) {
		t.Error("same seed, different split")
	}
	o := noCache
	o.SplitSeed = 2
	d3, _ := Load(dir, o)
	if d3.Info.Digest == in.Digest {
		t.Error("seed 2 gives the same split as seed 1")
	}
}

// TestLoadImageFolderTrainTest: DIR/train and DIR/test keep the test
// images apart; the validation split comes out of train/ only.
func TestLoadImageFolderTrainTest(t *testing.T) {
	dir := t.TempDir()
	WriteSyntheticImages(filepath.Join(dir, "train"), SyntheticImages{Classes: 2, PerClass: 10, H: 4, W: 4, Grey: true, Seed: 1})
	WriteSyntheticImages(filepath.Join(dir, "test"), SyntheticImages{Classes: 2, PerClass: 3, H: 4, W: 4, Grey: true, Seed: 2})
	d, err := Load(dir, noCache)
	if err != nil {
		t.Fatal(err)
	}
	if d.Train.N != 18 || d.Val.N != 2 || d.Test.N != 6 || d.Train.C != 1 {
		t.Fatalf("split %d/%d/%d C=%d, want 18/2/6, grey", d.Train.N, d.Val.N, d.Test.N, d.Train.C)
	}
	// A test class that training does not have.
	WriteSyntheticImages(filepath.Join(dir, "test", "extra"), SyntheticImages{Classes: 2, PerClass: 1, H: 4, W: 4, Grey: true})
	if _, err := Load(dir, noCache); err == nil || !strings.Contains(err.Error(), `class folder "extra" has no training folder`) {
		t.Fatalf("extra test class: %v", err)
	}
}

// TestImageFolderResize: mixed sizes are refused without a resize (naming
// both files) and scaled with one; grey and colour images mix as colour.
func TestImageFolderResize(t *testing.T) {
	dir := t.TempDir()
	WriteSyntheticImages(dir, SyntheticImages{Classes: 2, PerClass: 6, Sizes: [][2]int{{32, 32}, {24, 40}}, Seed: 1})
	_, err := Load(dir, noCache)
	if err == nil || !strings.Contains(err.Error(), "img0001.png is 24×40 (H×W) but") || !strings.Contains(err.Error(), "need --resize H×W") {
		t.Fatalf("mixed sizes: %v", err)
	}
	o := noCache
	o.Resize = []int{20, 28}
	d, err := Load(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	if d.Train.C != 3 || d.Train.H != 20 || d.Train.W != 28 || !slices.Equal(d.Info.Options.Resize, []int{20, 28}) {
		t.Fatalf("resized to %d×%d×%d, options %+v", d.Train.C, d.Train.H, d.Train.W, d.Info.Options)
	}
	// A uniform image stays uniform when scaled (no ringing at the edges).
	flat := image.NewGray(image.Rect(0, 0, 13, 7))
	for i := range flat.Pix {
		flat.Pix[i] = 77
	}
	writePNG(t, filepath.Join(dir, "class0", "flat.png"), flat)
	if d, err = Load(dir, o); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*Set{d.Train, d.Val, d.Test} {
		for i := 0; i < s.N; i++ {
			img := s.Images[i*s.SampleSize() : (i+1)*s.SampleSize()]
			if slices.Max(img) == slices.Min(img) && img[0] != float32(77)/255 {
				t.Fatalf("flat grey image scaled to %v, want 77/255 on all three channels", img[0]*255)
			}
		}
	}
	if _, err := ParseResize("32x48"); err != nil {
		t.Error(err)
	}
	if r, _ := ParseResize("48×64"); !slices.Equal(r, []int{48, 64}) {
		t.Errorf("48×64 → %v", r)
	}
	if r, _ := ParseResize("28"); !slices.Equal(r, []int{28, 28}) {
		t.Errorf("28 → %v", r)
	}
	for _, bad := range []string{"0x3", "3x", "axb", "1x2x3", "99999x2"} {
		if _, err := ParseResize(bad); err == nil {
			t.Errorf("ParseResize(%q) accepted", bad)
		}
	}
}

// TestImageFolderBadData: an empty class, an unreadable image, one class,
// an empty folder and too few images are errors that name the folder or
// file.
func TestImageFolderBadData(t *testing.T) {
	mk := func() string {
		dir := t.TempDir()
		WriteSyntheticImages(dir, SyntheticImages{Classes: 2, PerClass: 10, H: 5, W: 5, Seed: 1})
		return dir
	}
	dir := mk()
	os.Mkdir(filepath.Join(dir, "empty"), 0o755)
	os.WriteFile(filepath.Join(dir, "empty", "notes.txt"), []byte("x"), 0o644)
	if _, err := Load(dir, noCache); err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "empty")+" holds no PNG or JPEG images") {
		t.Fatalf("empty class: %v", err)
	}
	dir = mk()
	bad := filepath.Join(dir, "class1", "broken.png")
	os.WriteFile(bad, []byte("\x89PNG\r\n\x1a\nnot really"), 0o644)
	if _, err := Load(dir, noCache); err == nil || !strings.Contains(err.Error(), bad+": not a readable PNG or JPEG image") {
		t.Fatalf("broken header: %v", err)
	}
	// A valid header over a truncated body fails in the decoder.
	dir = mk()
	good := filepath.Join(dir, "class1", "img0003.png")
	b, _ := os.ReadFile(good)
	os.WriteFile(good, b[:len(b)-30], 0o644)
	if _, err := Load(dir, noCache); err == nil || !strings.Contains(err.Error(), good+": cannot decode the image") {
		t.Fatalf("truncated body: %v", err)
	}
	one := t.TempDir()
	WriteSyntheticImages(one, SyntheticImages{Classes: 1, PerClass: 3, H: 4, W: 4})
	if _, err := Load(one, noCache); err == nil || !strings.Contains(err.Error(), "need at least two classes") {
		t.Fatalf("one class: %v", err)
	}
	few := t.TempDir()
	WriteSyntheticImages(few, SyntheticImages{Classes: 2, PerClass: 1, H: 4, W: 4})
	if _, err := Load(few, noCache); err == nil || !strings.Contains(err.Error(), "too few to hold out") {
		t.Fatalf("too few: %v", err)
	}
	nothing := t.TempDir()
	os.WriteFile(filepath.Join(nothing, "x.txt"), nil, 0o644)
	if _, err := Load(nothing, noCache); !errors.Is(err, ErrNoData) || !strings.Contains(err.Error(), "holds no data set") {
		t.Fatalf("nothing: %v", err)
	}
}

// TestImageCache: the second load reads the decode cache (it succeeds even
// though an image's pixels were damaged behind the cache's back, with its
// size and time kept), a changed file is decoded anew, and a damaged cache
// file is ignored and rewritten.
func TestImageCache(t *testing.T) {
	dir := t.TempDir()
	WriteSyntheticImages(dir, SyntheticImages{Classes: 2, PerClass: 10, H: 6, W: 6, Seed: 1})
	o := Options{Cache: t.TempDir()}
	d1, err := Load(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(o.Cache, "images", "*.bin"))
	if len(files) != 1 {
		t.Fatalf("cache files %v, want one", files)
	}
	victim := filepath.Join(dir, "class0", "img0002.png")
	st, _ := os.Stat(victim)
	junk := make([]byte, st.Size())
	os.WriteFile(victim, junk, 0o644)
	os.Chtimes(victim, st.ModTime(), st.ModTime())
	d2, err := Load(dir, o)
	if err != nil {
		t.Fatalf("cached load decoded again: %v", err)
	}
	if !slices.Equal(d1.Train.Images, d2.Train.Images) || d1.Info.Digest != d2.Info.Digest {
		t.Fatal("cached pixels differ")
	}
	// A new time: the cache key changes and the damaged file is decoded.
	later := st.ModTime().Add(time.Second)
	os.Chtimes(victim, later, later)
	if _, err := Load(dir, o); err == nil || !strings.Contains(err.Error(), victim) {
		t.Fatalf("changed file not decoded: %v", err)
	}
	// Restore the file; damage the cache file; the load decodes again.
	WriteSyntheticImages(dir, SyntheticImages{Classes: 2, PerClass: 10, H: 6, W: 6, Seed: 1})
	if _, err := Load(dir, o); err != nil {
		t.Fatal(err)
	}
	files, _ = filepath.Glob(filepath.Join(o.Cache, "images", "*.bin"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		b[len(b)/2] ^= 0xff
		os.WriteFile(f, b, 0o644)
	}
	d4, err := Load(dir, o)
	if err != nil || !slices.Equal(d4.Train.Images, d1.Train.Images) {
		t.Fatalf("damaged cache: %v", err)
	}
	t.Setenv(CacheEnv, "off")
	if cacheRoot(Options{}) != "" {
		t.Error("HWNAS_CACHE=off does not turn the cache off")
	}
}

// FuzzScanImageFolder builds a folder from the fuzzer's bytes — entries of
// class name, file name and content — and loads it: any folder either
// loads into consistent splits or is an error; never a panic.
func FuzzScanImageFolder(f *testing.F) {
	var pngBytes strings.Builder
	img := image.NewGray(image.Rect(0, 0, 3, 2))
	png.Encode(&pngBytes, img)
	f.Add([]byte("a/x.png\x00" + pngBytes.String() + "\x01b/y.png\x00" + pngBytes.String() + "\x01b/z.PNG\x00" + pngBytes.String()))
	f.Add([]byte("a/x.png\x00junk\x01b/y.jpg\x00\xff\xd8\xff"))
	f.Add([]byte("train/a/x.png\x00" + pngBytes.String() + "\x01test/a/y.png\x00" + pngBytes.String()))
	f.Add([]byte("a/.x.png\x00\x01b/\x00"))
	f.Fuzz(func(t *testing.T, spec []byte) {
		dir := t.TempDir()
		for i, entry := range strings.Split(string(spec), "\x01") {
			if i >= 16 {
				break
			}
			name, content, _ := strings.Cut(entry, "\x00")
			parts := strings.Split(name, "/")
			for _, p := range parts {
				if p == "" || p == "." || p == ".." || strings.ContainsAny(p, "\\\x00") || len(p) > 40 {
					return
				}
			}
			if len(parts) > 3 {
				return
			}
			path := filepath.Join(append([]string{dir}, parts...)...)
			os.MkdirAll(filepath.Dir(path), 0o755)
			os.WriteFile(path, []byte(content), 0o644)
		}
		d, err := Load(dir, Options{Cache: "off", Resize: []int{4, 4}})
		if err != nil {
			return
		}
		if d.Train.N == 0 || d.Val.N == 0 || d.Test.N == 0 {
			t.Fatalf("empty split loaded: %d/%d/%d", d.Train.N, d.Val.N, d.Test.N)
		}
		for _, s := range []*Set{d.Train, d.Val, d.Test} {
			if len(s.Images) != s.N*s.SampleSize() || s.H != 4 || s.W != 4 {
				t.Fatalf("%s: %d floats for %d images of %d×%d×%d", s.Name, len(s.Images), s.N, s.C, s.H, s.W)
			}
			for _, l := range s.Labels {
				if l < 0 || int(l) >= s.Classes {
					t.Fatalf("%s: label %d of %d classes", s.Name, l, s.Classes)
				}
			}
		}
		_ = fmt.Sprint(d.Info.String())
	})
}
