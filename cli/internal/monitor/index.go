package monitor

import "bytes"

// indexQuoteOrNewline returns the index of the first '"' or '\n' in p, or
// -1. Inside a long string the framer needs both (the string's end and
// the line's) and finding them in one pass instead of two was worth a
// third of the framer's time on a 1 MiB text result: this is the one
// search of the relay's hot path that the standard library has no single
// call for.
func indexQuoteOrNewline(p []byte) int {
	if len(p) < 32 {
		return indexQuoteOrNewlineBytes(p)
	}
	return indexQuoteOrNewlineWide(p)
}

// indexQuoteOrNewlineBytes is indexQuoteOrNewline one byte at a time, for
// short inputs and as the reference its tests compare with.
func indexQuoteOrNewlineBytes(p []byte) int {
	for i, c := range p {
		if c == '"' || c == '\n' {
			return i
		}
	}
	return -1
}

// indexQuoteOrNewlineTwice is the portable version: two searches, the
// second bounded by the first.
func indexQuoteOrNewlineTwice(p []byte) int {
	q := bytes.IndexByte(p, '"')
	end := p
	if q >= 0 {
		end = p[:q]
	}
	if n := bytes.IndexByte(end, '\n'); n >= 0 {
		return n
	}
	return q
}
