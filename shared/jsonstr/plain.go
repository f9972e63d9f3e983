package jsonstr

import (
	"math/bits"
	"unsafe"
)

// Stop sets for plain beyond the quote and the backslash, which end every
// plain run.
const (
	stopControl = 1 << iota // bytes below 0x20, which a JSON string holds escaped
	stopHigh                // bytes of 0x80 and up, which Append must validate
	stopHTML                // <, > and &, which Append escapes for HTML
)

// PlainLen returns how many bytes at the start of s a reader of a JSON
// string's body takes as they are: those before the first quote or
// backslash, or len(s) when there is none. It is found 32 bytes at a time
// where the CPU has AVX2.
//
// Callers test the first words in line with Specials: most runs in JSON
// code end within them, and a call would cost them more than the search.
func PlainLen(s []byte) int {
	n, _ := plain(s, 0)
	return n
}

// PlainRunes is PlainLen and the number of characters in those bytes, the
// bytes that are not UTF-8 continuation bytes (10xxxxxx).
func PlainRunes(s []byte) (n, runes int) {
	return plain(s, 0)
}

// plain returns the length of the prefix of s free of the quote, the
// backslash and the bytes of stop, and how many of the prefix's bytes are
// not continuation bytes. Its callers have tested a run's first words in
// line already, so the vector kernel takes whole 32-byte blocks at once,
// and Go the rest.
func plain(s []byte, stop uint8) (int, int) {
	n, leads := 0, 0
	if haveVector && len(s) >= 32 {
		n, leads = plainVector(s, stop)
		if n < len(s)&^31 {
			return n, leads
		}
	}
	return plainGo(s, n, leads, stop)
}

// plainGo is plain in Go alone, from s[n] with leads counted before it.
func plainGo(s []byte, n, leads int, stop uint8) (int, int) {
	n, leads, found := plainWords(s, n, leads, stop)
	if found {
		return n, leads
	}
	for ; n < len(s); n++ {
		c := s[n]
		if c == '"' || c == '\\' || (stop&stopControl != 0 && c < 0x20) || (stop&stopHigh != 0 && c >= 0x80) ||
			(stop&stopHTML != 0 && (c == '<' || c == '>' || c == '&')) {
			return n, leads
		}
		if c&0xC0 != 0x80 {
			leads++
		}
	}
	return n, leads
}

// plainWords is plainGo eight bytes at a time while eight are left: it
// reports whether it found a stop byte, and where, or where it stopped.
func plainWords(s []byte, n, leads int, stop uint8) (int, int, bool) {
	for ; n+8 <= len(s); n += 8 {
		w := load8(s, n)
		if bad := stopBits(w, stop); bad != 0 {
			k := bits.TrailingZeros64(bad) / 8
			return n + k, leads + k - bits.OnesCount64(Continuations(w)&(1<<(8*k)-1)), true
		}
		leads += 8 - bits.OnesCount64(Continuations(w))
	}
	return n, leads, false
}

// stopBits has the top bit set of the first byte of w (in memory order)
// that ends a plain run, and none below it. Each test is exact up to its
// first match, which is all that is used: the zero-byte test on w xor a
// byte, and below 0x20 the borrow of subtracting 0x20 into a top bit that
// was clear.
func stopBits(w uint64, stop uint8) uint64 {
	bad := Specials(w)
	if stop&stopControl != 0 {
		bad |= (w - ones*0x20) &^ w & highs
	}
	if stop&stopHigh != 0 {
		bad |= w & highs
	}
	if stop&stopHTML != 0 {
		bad |= (zeroByte(w^(ones*'<')) | zeroByte(w^(ones*'>')) | zeroByte(w^(ones*'&'))) & highs
	}
	return bad
}

// Specials has the top bit set of the first byte of w, eight bytes of a
// string with the first in the lowest byte, that is a quote or a
// backslash, and none below it; zero when there is none.
func Specials(w uint64) uint64 {
	return (zeroByte(w^(ones*'"')) | zeroByte(w^(ones*'\\'))) & highs
}

// Continuations has the top bit set of each byte of w that is a UTF-8
// continuation byte (10xxxxxx).
func Continuations(w uint64) uint64 { return w &^ (w << 1) & highs }

// bytesOf is s as a byte slice, without a copy: plain only reads it.
func bytesOf[T string | []byte](s T) []byte {
	switch v := any(s).(type) {
	case string:
		return unsafe.Slice(unsafe.StringData(v), len(v))
	case []byte:
		return v
	}
	panic("jsonstr: not a string or byte slice")
}
