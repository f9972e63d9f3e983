package analysis

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/kilometers-ai/kilometers/shared/jsonstr"
)

// The rules run over text, not over JSON: a path hidden behind "\/" or
// "\u002e", or a shell command inside a JSON string inside a tool result,
// must look the same to a regexp as it would to the model. extractText turns
// a JSON message into plain lines instead of decoding it into a tree, because
// it runs on every event and must not allocate in proportion to the message:
// it appends into buffers the Session reuses, stops at a byte limit, and
// treats truncated or malformed input (a capped payload) as the end of the
// text rather than an error.
//
// Each string value becomes one line; an object key is written before its
// value as "key: value", so {"path": "/etc/shadow"} reads "path: /etc/shadow"
// and {"password": "hunter22"} reads like a config file line.

// extractText appends the decoded strings of the JSON text src to dst, at
// most limit bytes of output, and returns dst.
func extractText(dst, src []byte, limit int) []byte {
	for i := 0; i < len(src) && len(dst) < limit; i++ {
		if src[i] != '"' {
			continue
		}
		var end int
		dst, end = decodeString(dst, src, i+1, limit)
		if end < 0 {
			// Truncated inside a string, or the limit reached: keep what
			// was decoded.
			break
		}
		i = end
		if isKey(src, end+1) {
			dst = append(dst, ':', ' ')
			continue
		}
		dst = append(dst, '\n')
	}
	if len(dst) > limit {
		dst = dst[:limit]
	}
	return dst
}

// isKey reports whether the string that ended just before src[i] is an
// object key: the next non-space byte is a colon.
func isKey(src []byte, i int) bool {
	for ; i < len(src); i++ {
		switch src[i] {
		case ' ', '\t', '\r', '\n':
			continue
		case ':':
			return true
		default:
			return false
		}
	}
	return false
}

// decodeString decodes the JSON string body starting at src[i] (just after
// the opening quote) onto dst. It returns the index of the closing quote, or
// -1 when src ends first or dst reaches limit: the rest of a large result is
// not read for text nobody keeps.
func decodeString(dst, src []byte, i, limit int) ([]byte, int) {
	for i < len(src) && len(dst) < limit {
		c := src[i]
		switch {
		case c == '"':
			return dst, i
		case c != '\\':
			// Copy the run of plain bytes up to the next quote or escape in
			// one append: the common case. It is found no further than the
			// limit lets dst grow: the run of a large result's text goes on
			// for the whole prefix.
			end := min(len(src), i+limit-len(dst))
			j := plainEnd(src[:end], i+1)
			dst = append(dst, src[i:j]...)
			i = j
		default:
			if i+1 >= len(src) {
				return dst, -1
			}
			esc := src[i+1]
			i += 2
			var r rune
			switch esc {
			case 'n':
				r = '\n'
			case 't':
				r = '\t'
			case 'r':
				r = '\r'
			case 'b':
				r = '\b'
			case 'f':
				r = '\f'
			case 'u':
				var ok bool
				r, i, ok = decodeUnicodeEscape(src, i)
				if !ok {
					return dst, -1
				}
			default: // '"', '\\', '/', and anything malformed as itself
				r = rune(esc)
			}
			if len(dst) < limit {
				dst = utf8.AppendRune(dst, r)
			}
		}
	}
	return dst, -1
}

// longRun is how many plain words a run of string bytes takes before its
// readers hand the rest to jsonstr, whose vector kernel costs a call but
// then reads 32 bytes at a time: most runs in JSON code end sooner.
const longRun = 2

// plainEnd returns the index of the first quote or backslash of src from
// i, or len(src): eight bytes at a time in line for longRun
// words, then jsonstr.PlainLen.
func plainEnd(src []byte, i int) int {
	for words := 0; i+8 <= len(src); words++ {
		if words == longRun {
			return i + jsonstr.PlainLen(src[i:])
		}
		if bad := jsonstr.Specials(binary.LittleEndian.Uint64(src[i:])); bad != 0 {
			return i + bits.TrailingZeros64(bad)/8
		}
		i += 8
	}
	return i + jsonstr.PlainLen(src[i:])
}

// decodeUnicodeEscape decodes the hex digits of a \u escape at src[i:],
// joining a surrogate pair when one follows (Unicode tag characters, the
// invisible ones attackers use, arrive as surrogate pairs when escaped).
func decodeUnicodeEscape(src []byte, i int) (rune, int, bool) {
	r, ok := hex4(src, i)
	if !ok {
		return 0, i, false
	}
	i += 4
	if utf16.IsSurrogate(r) && i+6 <= len(src) && src[i] == '\\' && src[i+1] == 'u' {
		if r2, ok := hex4(src, i+2); ok {
			if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
				return d, i + 6, true
			}
		}
	}
	if utf16.IsSurrogate(r) {
		r = utf8.RuneError
	}
	return r, i, true
}

func hex4(src []byte, i int) (rune, bool) {
	if i+4 > len(src) {
		return 0, false
	}
	var r rune
	for _, c := range src[i : i+4] {
		r <<= 4
		switch {
		case '0' <= c && c <= '9':
			r |= rune(c - '0')
		case 'a' <= c && c <= 'f':
			r |= rune(c - 'a' + 10)
		case 'A' <= c && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	return r, true
}

// countTextChars counts the characters of the string values in the JSON
// text src (object keys are structure, not content), an escape counting as
// one character and a multi-byte UTF-8 sequence as one. It is the basis of
// the token estimate and, unlike extractText, copies nothing.
func countTextChars(src []byte) int64 {
	// Most string bytes are neither quote nor backslash: their runs are
	// counted by jsonstr.PlainRunes, so a large result costs a fraction of
	// a byte-by-byte walk (the monitor counts every result it relays).
	var n int64
	i := 0
	for {
		q := bytes.IndexByte(src[i:], '"')
		if q < 0 {
			return n
		}
		var chars int64
		j := i + q + 1
	str:
		for words := 0; j < len(src); {
			if j+8 <= len(src) {
				// Count up to the first quote or backslash, eight bytes at
				// once: most runs in JSON code end within a word or two. A
				// run longer than that is left to jsonstr.PlainRunes, which
				// takes 32 bytes at a time.
				w := binary.LittleEndian.Uint64(src[j:])
				if bad := jsonstr.Specials(w); bad == 0 {
					chars += int64(8 - bits.OnesCount64(jsonstr.Continuations(w)))
					j += 8
					if words++; words == longRun {
						run, runes := jsonstr.PlainRunes(src[j:])
						chars, j, words = chars+int64(runes), j+run, 0
					}
					continue
				} else if k := bits.TrailingZeros64(bad) / 8; k > 0 {
					chars += int64(k - bits.OnesCount64(jsonstr.Continuations(w)&(1<<(8*k)-1)))
					j += k
				}
			}
			words = 0
			c := src[j]
			switch {
			case c == '"':
				break str
			case c == '\\':
				if j+1 < len(src) && src[j+1] == 'u' {
					j += 6
				} else {
					j += 2
				}
				chars++
				continue
			case c&0xC0 != 0x80: // not a UTF-8 continuation byte
				chars++
			}
			j++
		}
		if j >= len(src) {
			return n + chars // truncated inside a string
		}
		if !isKey(src, j+1) {
			n += chars
		}
		i = j + 1
	}
}

const ones, highs = 0x0101010101010101, 0x8080808080808080

// lowerASCII writes the ASCII-lowercased src into dst (reused), keeping byte
// offsets equal so a match in one is a match at the same place in the other.
func lowerASCII(dst, src []byte) []byte {
	dst, _ = lowerText(dst, src)
	return dst
}

// lower8 ASCII-lowercases the eight bytes of w at once: on the low seven
// bits of each byte, adding 0x80-'A' sets the top bit from 'A' up, adding
// 0x80-'Z'-1 from past 'Z' (no carry crosses a byte); bytes of 0x80 and up
// are left out. An upper-case letter gains 0x20.
func lower8(w uint64) uint64 {
	low := w &^ highs
	upper := (low + ones*(0x80-'A')) &^ (low + ones*(0x80-'Z'-1)) &^ w & highs
	return w | upper>>2
}

// lowerText is lowerASCII, also reporting whether src is all ASCII: the
// invisible characters the rules look for are not, so a result whose text
// is ASCII (most code and English) needs no second pass for them.
func lowerText(dst, src []byte) ([]byte, bool) {
	dst = append(dst[:0], src...)
	var high uint64
	i := 0
	for ; i+8 <= len(dst); i += 8 {
		w := binary.LittleEndian.Uint64(dst[i:]) // eight at once
		high |= w
		binary.LittleEndian.PutUint64(dst[i:], lower8(w))
	}
	for ; i < len(dst); i++ {
		c := dst[i]
		high |= uint64(c)
		if 'A' <= c && c <= 'Z' {
			dst[i] = c + 'a' - 'A'
		}
	}
	return dst, high&highs == 0
}
