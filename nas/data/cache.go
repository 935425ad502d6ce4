package data

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"

	"hwnas/internal/atomicfile"
)

// The decode cache keeps an image folder's decoded pixels so that loading
// it again (every trial of a search loads its data) reads one file instead
// of decoding every image. A cache file is named after a SHA-256 key of
// what the pixels depend on: each image's path relative to the folder, its
// size and modification time, and the --resize target. Changing, adding or
// removing an image gives another key, so a stale file is never read; a
// damaged one (checked by length and CRC) is decoded anew and replaced.
//
//	"HWIMGC1\n"            magic
//	[32]byte               key
//	uint32 n, c, h, w      little-endian
//	n·c·h·w bytes          pixels, image after image, planar
//	uint32 CRC-32 (IEEE)   of every byte before it

// CacheEnv names the environment variable that moves the decode cache to
// another folder; "off" turns it off. By default it lives in the user's
// cache folder (os.UserCacheDir()/hwnas).
const CacheEnv = "HWNAS_CACHE"

const cacheMagic = "HWIMGC1\n"

// cacheRoot returns the folder of decode cache files, or "" when caching
// is off (Options.Cache "off", HWNAS_CACHE=off, or no cache folder).
func cacheRoot(o Options) string {
	dir := o.Cache
	if dir == "" {
		dir = os.Getenv(CacheEnv)
	}
	if dir == "off" {
		return ""
	}
	if dir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			return ""
		}
		dir = filepath.Join(base, "hwnas")
	}
	return filepath.Join(dir, "images")
}

// cacheKey is the key of a folder's decoded pixels.
func cacheKey(files []imageFile, resize []int) [32]byte {
	h := sha256.New()
	fmt.Fprintf(h, "%s resize=%v n=%d\n", cacheMagic, resize, len(files))
	for _, f := range files {
		fmt.Fprintf(h, "%q %d %d\n", f.rel, f.size, f.modTime)
	}
	var k [32]byte
	h.Sum(k[:0])
	return k
}

func cachePath(root string, key [32]byte) string {
	return filepath.Join(root, hex.EncodeToString(key[:])+".bin")
}

// readCache returns the cached pixels of key for n images, or ok false
// when there is no valid cache file.
func readCache(root string, key [32]byte, n int) (c, h, w int, pix []byte, ok bool) {
	if root == "" {
		return 0, 0, 0, nil, false
	}
	b, err := os.ReadFile(cachePath(root, key))
	head := len(cacheMagic) + 32 + 16
	if err != nil || len(b) < head+4 || string(b[:len(cacheMagic)]) != cacheMagic || !bytes.Equal(b[len(cacheMagic):len(cacheMagic)+32], key[:]) {
		return 0, 0, 0, nil, false
	}
	le := binary.LittleEndian
	o := len(cacheMagic) + 32
	cn, c, h, w := int(le.Uint32(b[o:])), int(le.Uint32(b[o+4:])), int(le.Uint32(b[o+8:])), int(le.Uint32(b[o+12:]))
	if cn != n || (c != 1 && c != 3) || h < 1 || w < 1 || h > MaxImageSide || w > MaxImageSide ||
		int64(len(b)) != int64(head)+int64(n)*int64(c*h*w)+4 {
		return 0, 0, 0, nil, false
	}
	if crc32.ChecksumIEEE(b[:len(b)-4]) != le.Uint32(b[len(b)-4:]) {
		return 0, 0, 0, nil, false
	}
	return c, h, w, b[head : len(b)-4], true
}

// writeCache stores pixels under key, atomically (a temporary file renamed
// into place). Failing to write the cache is not an error of the load: the
// next load decodes again.
func writeCache(root string, key [32]byte, n, c, h, w int, pix []byte) error {
	if root == "" {
		return nil
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return err
	}
	le := binary.LittleEndian
	head := make([]byte, 0, len(cacheMagic)+32+16)
	head = append(append(head, cacheMagic...), key[:]...)
	for _, v := range []int{n, c, h, w} {
		head = le.AppendUint32(head, uint32(v))
	}
	crc := crc32.Update(crc32.ChecksumIEEE(head), crc32.IEEETable, pix)
	return atomicfile.Write(cachePath(root, key), 0o644, func(f *os.File) error {
		_, err := f.Write(head)
		if err == nil {
			_, err = f.Write(pix)
		}
		if err == nil {
			_, err = f.Write(le.AppendUint32(nil, crc))
		}
		return err
	})
}
