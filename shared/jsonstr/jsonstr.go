// Package jsonstr encodes strings as JSON exactly the way encoding/json
// does, without reflection or allocation: the CLI writes every event it
// records and every payload it redacts through it, and tests hold both to
// encoding/json's bytes. It also finds, for readers of JSON text, where a
// string's run of plain bytes ends (PlainLen, PlainRunes, Specials): the
// analysis decodes and counts every large result that way, with a vector
// kernel where the CPU has one. And it decodes strings as encoding/json's
// Unmarshal does (Unquote, AppendDecoded), for the monitor's method and
// tool names and the redaction of escaped keys and values.
package jsonstr

import (
	"math/bits"
	"unicode/utf8"
)

// Append appends s as a JSON string: \" \\ \b \f \n \r \t, \u00XX for the
// other control bytes, \ufffd for each byte of invalid UTF-8, U+2028 and
// U+2029 escaped, and, when escapeHTML is set (json.Marshal's default, off
// for an Encoder after SetEscapeHTML(false)), <, > and & as \u00XX.
func Append[T string | []byte](dst []byte, s T, escapeHTML bool) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		// Eight bytes that need no escape are skipped at once: most of a
		// string is such bytes, and the monitor encodes the 64 KiB head
		// of every large result it records this way.
		if i+8 <= len(s) {
			if i = plainRun(s, i, escapeHTML); i == len(s) {
				break
			}
		}
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && (!escapeHTML || (c != '<' && c != '>' && c != '&')) {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(string(s[i:min(i+utf8.UTFMax, len(s))]))
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

const ones, highs = 0x0101010101010101, 0x8080808080808080

// load8 is the eight bytes of s from i, the first in the lowest byte.
func load8[T string | []byte](s T, i int) uint64 {
	b := s[i : i+8] // one bounds check, and the compiler merges the loads
	return uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
		uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
}

// plainRun returns the index of the first byte from s[i] that may need
// Append's attention, found eight bytes at a time, or the start of the
// last few bytes (fewer than eight) when there is none before them. Plain
// bytes are ASCII from 0x20 and neither a quote, a backslash nor, when
// escapeHTML is set, <, > or &. A run that goes on past two words is left
// to plain, whose vector kernel takes 32 bytes at a time; most runs in
// JSON code end sooner, and a call would cost them more than it saves.
func plainRun[T string | []byte](s T, i int, escapeHTML bool) int {
	// Each test sets the top bit of the first byte it finds exactly (and
	// perhaps of later ones): below 0x20, subtracting 0x20 borrows into a
	// top bit that was clear (bytes with it set are caught by w itself),
	// and borrows only run towards later bytes.
	for words := 0; i+8 <= len(s); i += 8 {
		w := load8(s, i)
		bad := w | (w - ones*0x20) | zeroByte(w^(ones*'"')) | zeroByte(w^(ones*'\\'))
		if escapeHTML {
			bad |= zeroByte(w^(ones*'<')) | zeroByte(w^(ones*'>')) | zeroByte(w^(ones*'&'))
		}
		if bad &= highs; bad != 0 {
			return i + bits.TrailingZeros64(bad)/8
		}
		if words++; words == 2 && haveVector && len(s)-i >= 8+32 {
			stop := uint8(stopControl | stopHigh)
			if escapeHTML {
				stop |= stopHTML
			}
			n, _ := plain(bytesOf(s)[i+8:], stop)
			return i + 8 + n
		}
	}
	return i
}

// zeroByte has the top bit set of the first zero byte of v (and perhaps
// of later bytes) once masked with highs: the classic test.
func zeroByte(v uint64) uint64 { return (v - ones) &^ v }
