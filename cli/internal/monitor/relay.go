package monitor

import (
	"errors"
	"io"
	"time"
)

// relayBufSize is the read size of each direction. Pipes hand over at most
// 64 KiB at a time on Linux, so a bigger buffer would only cost memory.
const relayBufSize = 64 << 10

// relay copies src to dst, writing every chunk as soon as it is read, and
// only then shows the chunk to tap, with the time it was read. The time is
// taken before the write because once a request is written the server may
// answer at once: the reply's read time must come after the request's even
// when the reply is tapped first. It returns when src ends (nil on EOF)
// or fails. When dst fails it returns at once, unless drain is set: then it
// keeps reading and tapping src so the writer on the other side never
// blocks on a full pipe, and returns the write error at the end.
func relay(dst io.Writer, src io.Reader, now func() time.Time, tap func([]byte, time.Time), drain bool) error {
	buf := make([]byte, relayBufSize)
	var werr error
	for {
		n, err := src.Read(buf)
		if n > 0 {
			ts := now()
			if werr == nil {
				_, werr = dst.Write(buf[:n])
				if werr != nil && !drain {
					return werr
				}
			}
			tap(buf[:n], ts)
		}
		if errors.Is(err, io.EOF) {
			return werr
		}
		if err != nil {
			return errors.Join(err, werr)
		}
	}
}
