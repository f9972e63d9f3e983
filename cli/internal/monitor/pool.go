package monitor

// prefixPool recycles buffers of one capacity: the prefixes of large
// lines, which are all exactly the payload cap in capacity, and (a pool of
// its own) the string payloads of messages bigger than that. Without it every message bigger than one
// relay read cost a fresh payload-cap allocation on the relay goroutine:
// zeroed, faulted in page by page, and soon collected and handed back to
// the OS, only to be faulted in again for the next large message. Those
// faults and the collections they drove were most of what the framer cost
// on 1 MiB results.
//
// The framers take buffers and the pipeline gives them back once nothing
// points into them: once the events made from them have been analysed
// when every payload is a copy (a message bigger than the cap), once they
// have been recorded otherwise. It is safe for concurrent use.
// Small lines never touch it: they get buffers of exactly their size.
type prefixPool struct {
	size int
	free chan []byte
}

// prefixPoolBuffers is how many idle buffers the pool keeps; more are
// allocated when needed and left to the garbage collector when returned to
// a full pool. One per direction and one in the pipeline covers a request
// and reply in flight without holding much memory between large messages.
const prefixPoolBuffers = 3

func newPrefixPool(size, buffers int) *prefixPool {
	return &prefixPool{size: size, free: make(chan []byte, buffers)}
}

// get returns an empty buffer of the pool's size.
func (p *prefixPool) get() []byte {
	select {
	case b := <-p.free:
		return b[:0]
	default:
		return make([]byte, 0, p.size)
	}
}

// put gives b back. Buffers the pool did not hand out (another capacity)
// are ignored, and so is b when the pool is full.
func (p *prefixPool) put(b []byte) {
	if p == nil || cap(b) != p.size {
		return
	}
	select {
	case p.free <- b[:0]:
	default:
	}
}
