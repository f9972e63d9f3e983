package monitor

import (
	"bytes"
	"time"

	"github.com/kilometers-ai/kilometers/shared/event"
)

// DefaultPayloadCap is how much of a message the monitor keeps for its
// event's payload and for analysis. The rest of a bigger message is scanned
// as it streams past and then forgotten, so a 64 MiB message costs the
// monitor this much memory, not 64 MiB.
const DefaultPayloadCap = 256 << 10

// line is one complete line seen on the pipe, as the recorder gets it.
type line struct {
	dir event.Direction
	// ts is when the chunk holding the line's newline (or the end of the
	// stream) was read: the moment the message had completely arrived.
	ts time.Time
	// size is the line's length without its "\n" or "\r\n".
	size int64
	// prefix holds the line's first bytes, at most the payload cap.
	prefix []byte
	// pooled says prefix came from the prefix pool: it goes back there
	// once the line's events are recorded.
	pooled bool
	valid  bool
	// batch is set when the line is a JSON array (a JSON-RPC batch).
	batch bool
	msgs  []msgInfo
}

func (l *line) truncated() bool { return int64(len(l.prefix)) < l.size }

// framer cuts one direction's byte stream into lines and scans each as it
// arrives. It only ever sees bytes after they were written on, and it hands
// finished lines to emit, which must not block.
type framer struct {
	dir    event.Direction
	cap    int
	now    func() time.Time
	emit   func(*line)
	sc     scanner
	pool   *prefixPool // nil: large prefixes are allocated each time
	prefix []byte
	pooled bool  // prefix is the pool's
	n      int64 // bytes of the current line so far
	lastCR bool  // the line so far ends in '\r'
}

func newFramer(dir event.Direction, payloadCap int, pool *prefixPool, now func() time.Time, emit func(*line)) *framer {
	if pool != nil && pool.size != payloadCap {
		pool = nil
	}
	f := &framer{dir: dir, cap: payloadCap, pool: pool, now: now, emit: emit}
	f.sc.reset()
	return f
}

// write feeds bytes that were just relayed, read at ts.
func (f *framer) write(p []byte, ts time.Time) {
	p = f.stringBody(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		seg := p
		if i >= 0 {
			seg = p[:i]
		}
		f.feed(seg, i >= 0)
		if i < 0 {
			return
		}
		f.finish(ts)
		p = p[i+1:]
	}
}

// minBodyRun is the run of a string body, up to an escaped quote, for
// which stringBody goes on past the quote. Each stop costs it about as
// much as the pass it saves over a kilobyte, so where escaped quotes are
// closer (JSON inside a string, source code) the rest of the read goes the
// usual way: the newline's search, then the scanner's.
const minBodyRun = 1 << 10

// stringBody takes what p holds of a string the line left open (a long
// string goes on across many reads), up to the quote that closes it or a
// newline, and returns the rest of p. One search finds both, where write
// would search p for the newline and the scanner then for the quote: on a
// 1 MiB text result that halved the framer's passes over the bytes.
func (f *framer) stringBody(p []byte) []byte {
	for f.sc.state == sString && len(p) > 0 {
		j := indexQuoteOrNewline(p)
		if j < 0 {
			f.account(p, false)
			f.sc.stringRun(p)
			return nil
		}
		f.account(p[:j], p[j] == '\n')
		f.sc.stringRun(p[:j])
		if p[j] == '\n' || !f.sc.escapes() || j < minBodyRun {
			return p[j:]
		}
		// An escaped quote after a long run is the string's content, and
		// the body may go on as long again.
		f.account(p[j:j+1], false)
		f.sc.stringRun(p[j : j+1])
		p = p[j+1:]
	}
	return p
}

// feed takes the next bytes of the current line; ends says the line's
// newline follows them.
func (f *framer) feed(seg []byte, ends bool) {
	f.account(seg, ends)
	f.sc.write(seg)
}

// account adds the next bytes of the current line to its length and its
// prefix; ends says the line's newline follows them.
func (f *framer) account(seg []byte, ends bool) {
	if len(seg) == 0 {
		return
	}
	if room := f.cap - len(f.prefix); room > 0 {
		f.keep(seg[:min(room, len(seg))], ends)
	}
	f.n += int64(len(seg))
	f.lastCR = seg[len(seg)-1] == '\r'
}

// keep appends b to the prefix. This copy runs on the relay goroutine
// between reads, so it must not grow the way append does: a 1 MiB line
// arriving in 64 KiB reads was reallocated and copied at every read up to
// the cap (700 KB allocated per line instead of 256 KiB). A line that ends
// in this chunk gets exactly its size; one that goes on is at least this big
// and usually far bigger, so it gets room for four times as much at once.
// When that reaches the cap the buffer comes from the pool. finish gives
// back what stayed unused.
func (f *framer) keep(b []byte, ends bool) {
	need := len(f.prefix) + len(b)
	if need > cap(f.prefix) {
		size := need
		if !ends {
			size = min(f.cap, 4*need)
		}
		var grown []byte
		pooled := size == f.cap && !ends && f.pool != nil
		if pooled {
			grown = f.pool.get()
		} else {
			grown = make([]byte, 0, size)
		}
		grown = append(grown, f.prefix...)
		f.release()
		f.prefix, f.pooled = grown, pooled
	}
	f.prefix = append(f.prefix, b...)
}

// flush ends a last line that had no newline.
func (f *framer) flush() {
	if f.n > 0 {
		f.finish(f.now())
	}
}

func (f *framer) finish(ts time.Time) {
	defer func() {
		f.sc.reset()
		f.prefix, f.pooled, f.n, f.lastCR = nil, false, 0, false
	}()
	if f.sc.blank() {
		// Blank lines are relayed like everything else but are not
		// messages, so they make no event.
		f.release()
		return
	}
	size := f.n
	if f.lastCR {
		size--
	}
	prefix, pooled := f.prefix, f.pooled
	if int64(len(prefix)) > size {
		prefix = prefix[:size]
	}
	if c := cap(prefix); c-len(prefix) > len(prefix)/4 {
		// The queue and the pipeline bound memory by len, so a prefix
		// that was given room it did not use is cut to size.
		prefix, pooled = append(make([]byte, 0, len(prefix)), prefix...), false
		f.release()
	}
	l := &line{dir: f.dir, ts: ts, size: size, prefix: prefix, pooled: pooled, valid: f.sc.valid(), batch: f.sc.top == '['}
	if l.valid {
		l.msgs = f.sc.msgs
	}
	f.emit(l)
}

// release gives a pooled prefix that no line took back to the pool.
func (f *framer) release() {
	if f.pooled {
		f.pool.put(f.prefix)
		f.pooled = false
	}
}
