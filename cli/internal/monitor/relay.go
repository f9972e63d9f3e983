package monitor

import (
	"errors"
	"io"
)

// relayBufSize is the read size of each direction. Pipes hand over at most
// 64 KiB at a time on Linux, so a bigger buffer would only cost memory.
const relayBufSize = 64 << 10

// relay copies src to dst, writing every chunk as soon as it is read, and
// only then shows the chunk to tap. It returns when src ends (nil on EOF)
// or fails. When dst fails it returns at once, unless drain is set: then it
// keeps reading and tapping src so the writer on the other side never
// blocks on a full pipe, and returns the write error at the end.
func relay(dst io.Writer, src io.Reader, tap func([]byte), drain bool) error {
	buf := make([]byte, relayBufSize)
	var werr error
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if werr == nil {
				_, werr = dst.Write(buf[:n])
				if werr != nil && !drain {
					return werr
				}
			}
			tap(buf[:n])
		}
		if errors.Is(err, io.EOF) {
			return werr
		}
		if err != nil {
			return errors.Join(err, werr)
		}
	}
}
