package monitor

import "bytes"

// indexQuoteOrNewline returns the index of the first '"' or '\n' in p, or
// -1. Inside a long string the framer needs both (the string's end and
// the line's), and one pass instead of two bytes.IndexByte took the
// framer's time on a 1 MiB text result from 153-242 to 59-125 µs
// (BenchmarkFramer1MiB/plain, BenchmarkIndexQuoteOrNewline): the one
// search of the relay's hot path the standard library has no call for.
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
