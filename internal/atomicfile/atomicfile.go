// Package atomicfile writes files whole or not at all. The bytes go to a
// temporary file in the destination's folder, which is synced and then
// renamed over the destination: a reader sees the old file or the new one,
// never a part, and an error or a crash leaves neither a partial file nor
// the temporary one (a crash between write and rename may leave a hidden
// ".NAME.tmp*" file, never a damaged NAME).
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
)

// Write creates or replaces path with mode perm, the contents written by
// fill into f, a temporary file in the same folder (fill may also read it
// back, by f.Name(), to check it). When fill or any step fails, path is
// left as it was and the temporary file is removed.
func Write(path string, perm os.FileMode, fill func(f *os.File) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	tmp := f.Name()
	err = fill(f)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// WriteFile is os.WriteFile made atomic (see Write).
func WriteFile(path string, data []byte, perm os.FileMode) error {
	return Write(path, perm, func(f *os.File) error {
		_, err := f.Write(data)
		return err
	})
}
