package pgserver

import (
	"bytes"
	"fmt"
	"io"
	"os"
)

// tailLines is how much of postgres' output goes into an error: enough for the FATAL line and
// the few lines of context before it.
const tailLines = 15

// tail returns the last n lines of b.
func tail(b []byte, n int) string {
	b = bytes.TrimRight(b, "\n")
	end := len(b)
	for i := 0; i < n; i++ {
		j := bytes.LastIndexByte(b[:end], '\n')
		if j < 0 {
			return string(b)
		}
		end = j
	}
	return string(b[end+1:])
}

// readLogSince returns what was appended to the log file after offset, at most the last 64 KiB,
// so that an error shows this start's messages and not an earlier run's.
func readLogSince(path string, offset int64) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	const limit = 64 << 10
	if info.Size()-offset > limit {
		offset = info.Size() - limit
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	return string(b)
}
