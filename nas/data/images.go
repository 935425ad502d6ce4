package data

import (
	"fmt"
	"image"
	"image/color"
	_ "image/jpeg" // registers JPEG with image.Decode
	_ "image/png"  // registers PNG
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"

	"golang.org/x/image/draw"
)

// An image folder is the layout people keep their own data in: one
// subfolder per class, named after it, holding PNG or JPEG files
// (.png, .jpg, .jpeg in any case):
//
//	DIR/cat/0001.png  DIR/cat/0002.jpg  DIR/dog/a.png ...
//
// or the same under DIR/train/ and DIR/test/ when the test images are kept
// apart. Classes are the subfolders in sorted order (label 0 is the first).
// Hidden entries and files of other types are ignored; subfolders inside a
// class folder are not read.

// imageExts are the file extensions read, lower-cased.
var imageExts = map[string]bool{".png": true, ".jpg": true, ".jpeg": true}

// MaxImageFiles and MaxImageSide bound a folder's files and each image's
// height and width, so a folder of huge images is refused from its
// headers before pixels are decoded.
const (
	MaxImageFiles = 1 << 22
	MaxImageSide  = 1 << 13
)

// imageFile is one image of a scanned folder.
type imageFile struct {
	path    string // as opened
	rel     string // relative to the data folder, with forward slashes
	class   int
	size    int64
	modTime int64 // Unix nanoseconds
}

// imageFolder is a scanned image folder.
type imageFolder struct {
	dir     string
	classes []string
	files   []imageFile
	// testFrom is the index of the first file of DIR/test/ in files, or
	// −1 when the folder has no separate test images.
	testFrom int
}

// hasSubfolders reports whether dir holds at least one visible folder:
// what makes it a candidate image folder.
func hasSubfolders(dir string) bool {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range ents {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			return true
		}
	}
	return false
}

// scanImageFolder lists an image folder's classes and files in a fixed
// order (classes sorted, files sorted within each class). An empty class
// folder, fewer than two classes, a test class the training images do not
// have, or too many files is an error naming the folder.
func scanImageFolder(dir string) (*imageFolder, error) {
	f := &imageFolder{dir: dir, testFrom: -1}
	trainDir, testDir := filepath.Join(dir, "train"), filepath.Join(dir, "test")
	if hasSubfolders(trainDir) && hasSubfolders(testDir) {
		classes, err := classFolders(trainDir)
		if err != nil {
			return nil, err
		}
		f.classes = classes
		if err := f.scanClasses(trainDir, "train/", classes); err != nil {
			return nil, err
		}
		testClasses, err := classFolders(testDir)
		if err != nil {
			return nil, err
		}
		index := map[string]int{}
		for i, c := range classes {
			index[c] = i
		}
		for _, c := range testClasses {
			if _, ok := index[c]; !ok {
				return nil, fmt.Errorf("%s: class folder %q has no training folder %s", testDir, c, filepath.Join(trainDir, c))
			}
		}
		f.testFrom = len(f.files)
		if err := f.scanClasses(testDir, "test/", testClasses, index); err != nil {
			return nil, err
		}
		return f, nil
	}
	classes, err := classFolders(dir)
	if err != nil {
		return nil, err
	}
	f.classes = classes
	return f, f.scanClasses(dir, "", classes)
}

// classFolders returns the sorted visible subfolders of dir; there must be
// at least two.
func classFolders(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var classes []string
	for _, e := range ents {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			classes = append(classes, e.Name())
		}
	}
	if len(classes) < 2 {
		return nil, fmt.Errorf("image folder %s has %d class subfolder(s) %q: need at least two classes", dir, len(classes), classes)
	}
	sort.Strings(classes)
	return classes, nil
}

// scanClasses appends the images of each class folder of dir. index maps
// a class name to its label (default: its position in classes).
func (f *imageFolder) scanClasses(dir, relPrefix string, classes []string, index ...map[string]int) error {
	for i, c := range classes {
		label := i
		if len(index) > 0 {
			label = index[0][c]
		}
		cdir := filepath.Join(dir, c)
		ents, err := os.ReadDir(cdir)
		if err != nil {
			return err
		}
		n := 0
		for _, e := range ents {
			name := e.Name()
			if strings.HasPrefix(name, ".") || !imageExts[strings.ToLower(filepath.Ext(name))] {
				continue
			}
			info, err := e.Info()
			if err != nil {
				return err
			}
			if !info.Mode().IsRegular() {
				if info.Mode()&fs.ModeSymlink == 0 {
					continue
				}
				// A link to an image is read as the image.
				if info, err = os.Stat(filepath.Join(cdir, name)); err != nil {
					return fmt.Errorf("%s: %w", filepath.Join(cdir, name), err)
				}
				if !info.Mode().IsRegular() {
					continue
				}
			}
			if len(f.files) >= MaxImageFiles {
				return fmt.Errorf("image folder %s: more than %d images", f.dir, MaxImageFiles)
			}
			f.files = append(f.files, imageFile{path: filepath.Join(cdir, name), rel: relPrefix + c + "/" + name, class: label,
				size: info.Size(), modTime: info.ModTime().UnixNano()})
			n++
		}
		if n == 0 {
			return fmt.Errorf("class folder %s holds no PNG or JPEG images (.png, .jpg, .jpeg): an empty class", cdir)
		}
	}
	return nil
}

// isGrey reports whether a decoder's colour model holds one channel.
func isGrey(m color.Model) bool { return m == color.GrayModel || m == color.Gray16Model }

// imageHeader reads one file's header: its size and whether it is grey.
func imageHeader(path string) (w, h int, grey bool, err error) {
	fh, err := os.Open(path)
	if err != nil {
		return 0, 0, false, err
	}
	defer fh.Close()
	cfg, format, err := image.DecodeConfig(fh)
	if err != nil {
		return 0, 0, false, fmt.Errorf("%s: not a readable PNG or JPEG image: %w", path, err)
	}
	if cfg.Width < 1 || cfg.Height < 1 || cfg.Width > MaxImageSide || cfg.Height > MaxImageSide {
		return 0, 0, false, fmt.Errorf("%s: %s image of %d×%d pixels (height and width must be 1..%d)", path, format, cfg.Height, cfg.Width, MaxImageSide)
	}
	return cfg.Width, cfg.Height, isGrey(cfg.ColorModel), nil
}

// imageShape reads every header and returns the shape all images take:
// one channel when every image is grey, else three (grey images are
// repeated on R, G and B); H×W is resize when given, else the one size
// all images share (mixed sizes are an error naming two files).
func imageShape(files []imageFile, resize []int) (c, h, w int, err error) {
	type header struct {
		w, h int
		grey bool
		err  error
	}
	hs := make([]header, len(files))
	parallel(len(files), func(i int) {
		hs[i].w, hs[i].h, hs[i].grey, hs[i].err = imageHeader(files[i].path)
	})
	c = 1
	for i, hd := range hs {
		if hd.err != nil {
			return 0, 0, 0, hd.err
		}
		if !hd.grey {
			c = 3
		}
		if resize == nil && (hd.w != hs[0].w || hd.h != hs[0].h) {
			return 0, 0, 0, fmt.Errorf("%s is %d×%d (H×W) but %s is %d×%d: images of mixed sizes need --resize H×W",
				files[i].path, hd.h, hd.w, files[0].path, hs[0].h, hs[0].w)
		}
	}
	if resize != nil {
		return c, resize[0], resize[1], nil
	}
	return c, hs[0].h, hs[0].w, nil
}

// decodeImages decodes every file into c×h×w planar bytes (resized when
// the image has another size), in parallel; the first failing file (in
// order) is the error.
func decodeImages(files []imageFile, c, h, w int) ([]byte, error) {
	chw := c * h * w
	pix := make([]byte, len(files)*chw)
	errs := make([]error, len(files))
	parallel(len(files), func(i int) {
		errs[i] = decodeImage(files[i].path, c, h, w, pix[i*chw:(i+1)*chw])
	})
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return pix, nil
}

// decodeImage decodes path into dst (c×h×w bytes, planar), scaling it
// with Catmull-Rom when its size differs. Transparent pixels are composed
// over black.
func decodeImage(path string, c, h, w int, dst []byte) error {
	fh, err := os.Open(path)
	if err != nil {
		return err
	}
	defer fh.Close()
	img, _, err := image.Decode(fh)
	if err != nil {
		return fmt.Errorf("%s: cannot decode the image: %w", path, err)
	}
	b := img.Bounds()
	if b.Dx() != w || b.Dy() != h {
		if b.Dx() < 1 || b.Dy() < 1 {
			return fmt.Errorf("%s: empty image", path)
		}
		var scaled draw.Image
		if c == 1 {
			scaled = image.NewGray(image.Rect(0, 0, w, h))
		} else {
			scaled = image.NewRGBA(image.Rect(0, 0, w, h))
		}
		draw.CatmullRom.Scale(scaled, scaled.Bounds(), img, b, draw.Src, nil)
		img, b = scaled, scaled.Bounds()
	}
	plane := h * w
	switch m := img.(type) {
	case *image.Gray:
		for y := 0; y < h; y++ {
			row := m.Pix[y*m.Stride : y*m.Stride+w]
			for ch := 0; ch < c; ch++ {
				copy(dst[ch*plane+y*w:], row)
			}
		}
		return nil
	case *image.RGBA:
		if c == 3 {
			for y := 0; y < h; y++ {
				row := m.Pix[y*m.Stride : y*m.Stride+4*w]
				for x := 0; x < w; x++ {
					dst[y*w+x], dst[plane+y*w+x], dst[2*plane+y*w+x] = row[4*x], row[4*x+1], row[4*x+2]
				}
			}
			return nil
		}
	}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			px := img.At(b.Min.X+x, b.Min.Y+y)
			if c == 1 {
				dst[y*w+x] = color.GrayModel.Convert(px).(color.Gray).Y
				continue
			}
			r, g, bl, _ := px.RGBA() // premultiplied: composed over black
			dst[y*w+x], dst[plane+y*w+x], dst[2*plane+y*w+x] = byte(r>>8), byte(g>>8), byte(bl>>8)
		}
	}
	return nil
}

// parallel runs f(0..n-1) on GOMAXPROCS goroutines.
func parallel(n int, f func(i int)) {
	workers := min(runtime.GOMAXPROCS(0), n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	next := 0
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= n {
					return
				}
				f(i)
			}
		}()
	}
	wg.Wait()
}
