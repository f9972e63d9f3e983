package jsonstr

import (
	"unicode/utf16"
	"unicode/utf8"
)

// Unquote decodes s, which must be exactly one JSON string, quotes
// included and no space around it, into the string encoding/json's
// Unmarshal would give. It reports false for anything else.
//
// The monitor decodes a method and a tool name from every request this
// way: Unmarshal gets there through reflection, which costs more than the
// decoding and makes the relay's process touch a good part of the
// reflection code and type data of the binary for each message.
func Unquote(s []byte) (string, bool) {
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return "", false
	}
	body := s[1 : len(s)-1]
	n, plain := scanBody(body)
	switch {
	case n < len(body):
		return "", false
	case plain:
		return string(body), true
	}
	return string(AppendDecoded(make([]byte, 0, len(body)), body)), true
}

// BodyLen returns the length of the longest start of s that can begin the
// body of a JSON string (what follows its opening quote): it ends before
// the first unescaped quote, control byte, or escape that is malformed or
// cut short, or at the end of s. The body of a string that is whole is
// s[:BodyLen(s)] when s[BodyLen(s)] is its closing quote; AppendDecoded
// decodes any such start.
func BodyLen(s []byte) int {
	n, _ := scanBody(s)
	return n
}

// scanBody is BodyLen, and reports whether those bytes are plain: no
// escape and nothing but ASCII, so that they are their own text.
func scanBody(s []byte) (int, bool) {
	plain := true
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c == '"':
			return i, plain
		case c >= utf8.RuneSelf:
			plain = false
		case c == '\\':
			if i+1 == len(s) {
				return i, plain
			}
			switch s[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+6 > len(s) || !IsHex(s[i+2]) || !IsHex(s[i+3]) || !IsHex(s[i+4]) || !IsHex(s[i+5]) {
					return i, plain
				}
				i += 4
			default:
				return i, plain
			}
			plain = false
			i++
		}
	}
	return len(s), plain
}

// IsHex reports whether c may be one of the four digits of a \u escape.
func IsHex(c byte) bool { return unhex(c) >= 0 }

// AppendDecoded appends the text of the body of a valid JSON string
// (without its quotes) to dst, decoded as encoding/json decodes it: a \u
// escape of a lone or badly paired surrogate and every byte of invalid
// UTF-8 become U+FFFD. The body must be valid: an escape cut short or a
// bad \u escape is not checked for.
func AppendDecoded(dst, body []byte) []byte {
	for i := 0; i < len(body); {
		c := body[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRune(body[i:])
			dst = utf8.AppendRune(dst, r)
			i += size
			continue
		}
		if c != '\\' {
			dst = append(dst, c)
			i++
			continue
		}
		switch e := body[i+1]; e {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := hex4(body[i+2:])
			i += 6
			if utf16.IsSurrogate(r) {
				// A pair is two escapes; anything else is not a character.
				next := rune(-1)
				if i+6 <= len(body) && body[i] == '\\' && body[i+1] == 'u' {
					next = hex4(body[i+2:])
				}
				if pair := utf16.DecodeRune(r, next); pair != utf8.RuneError {
					r = pair
					i += 6
				} else {
					r = utf8.RuneError
				}
			}
			dst = utf8.AppendRune(dst, r)
			continue
		default: // '"', '\\', '/'
			dst = append(dst, e)
		}
		i += 2
	}
	return dst
}

func unhex(c byte) rune {
	switch {
	case '0' <= c && c <= '9':
		return rune(c - '0')
	case 'a' <= c && c <= 'f':
		return rune(c - 'a' + 10)
	case 'A' <= c && c <= 'F':
		return rune(c - 'A' + 10)
	}
	return -1
}

// hex4 decodes the four hex digits of a checked \u escape.
func hex4(b []byte) rune {
	return unhex(b[0])<<12 | unhex(b[1])<<8 | unhex(b[2])<<4 | unhex(b[3])
}
