package watch

import (
	"os"
	"strconv"
	"syscall"
)

func itoa(i int) string     { return strconv.Itoa(i) }
func quote(s string) string { return strconv.Quote(s) }

// inode returns the file's inode number (0 if unknown).
func inode(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}

// readFileErr reads a file, returning the error.
func readFileErr(path string) (string, error) {
	b, err := os.ReadFile(path)
	return string(b), err
}
