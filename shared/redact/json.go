package redact

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/kilometers-ai/kilometers/shared/jsonstr"
)

// JSON redacts a JSON document: values under secret keys are replaced by
// Marker and every string is scanned with String. It reports whether
// anything changed; an input that is not valid JSON is returned as an error.
//
// A string, or a number, under a secret key becomes "[REDACTED]"; so do
// the elements of an array under one. An object under a secret key keeps
// its own keys, which decide for their values. Empty strings, booleans and
// null stay as they are.
//
// When nothing changes JSON returns raw itself. Otherwise the whole
// document is written back compactly: strings as encoding/json's Encoder
// writes them with HTML escaping off, numbers as they were written. This is
// byte for byte what this function produced when it decoded the document
// token by token with encoding/json, which its tests keep as the reference.
func JSON(raw []byte) ([]byte, bool, error) {
	w := walker{data: raw, pats: patterns(), idx: needles()}
	if err := w.walk(); err != nil {
		return nil, false, fmt.Errorf("redact: %w", err)
	}
	if !w.changed {
		return raw, false, nil
	}
	w.emit = true
	w.out = make([]byte, 0, len(raw))
	if err := w.walk(); err != nil {
		// The first pass accepted this very document.
		return nil, false, fmt.Errorf("redact: second pass: %w", err)
	}
	return w.out, true, nil
}

// A walker goes through a JSON document, at most twice. Payloads are
// shipped by the thousand and almost none holds a secret, so the first pass
// only validates the document and finds out whether anything would change,
// without writing or allocating; only when something would, a second pass
// over the now valid document writes the result.
type walker struct {
	data    []byte
	pats    []pattern
	idx     *needleIndex
	changed bool
	emit    bool // second pass: write to out
	out     []byte
}

// What the walker expects next.
const (
	wantValue = iota
	wantKey
	afterValue
)

// Frames of the stack of open containers.
const (
	inObject byte = iota + 1
	inArray
	inSecretArray // an array under a secret key: its elements are secret
)

// walk is iterative, with its own stack, so that a deeply nested document
// costs a byte per level instead of a goroutine stack that could overflow.
func (w *walker) walk() error {
	d := w.data
	var stackBuf [64]byte
	stack := stackBuf[:0]
	// scratch holds decoded strings; most fit without a heap allocation.
	var scratchBuf [512]byte
	scratch := scratchBuf[:0]
	secret := false // the value to come is under a secret key
	state := wantValue
	i := 0
	for {
		i = skipSpace(d, i)
		switch state {
		case wantValue:
			if i == len(d) {
				return syntaxError(d, i)
			}
			switch c := d[i]; c {
			case '{':
				w.put(c)
				if j := skipSpace(d, i+1); j < len(d) && d[j] == '}' {
					w.put('}')
					i, state = j+1, afterValue
					continue
				}
				i++
				stack = append(stack, inObject)
				state = wantKey
			case '[':
				w.put(c)
				if j := skipSpace(d, i+1); j < len(d) && d[j] == ']' {
					w.put(']')
					i, state = j+1, afterValue
					continue
				}
				i++
				if secret {
					stack = append(stack, inSecretArray)
				} else {
					stack = append(stack, inArray)
				}
			case '"':
				end, flags, err := scanString(d, i)
				if err != nil {
					return err
				}
				scratch = w.stringValue(d[i+1:end], flags, secret, scratch)
				i, state = end+1, afterValue
			case 't', 'f', 'n':
				lit := "null"
				if c == 't' {
					lit = "true"
				} else if c == 'f' {
					lit = "false"
				}
				if !hasPrefix(d[i:], lit) {
					return syntaxError(d, i)
				}
				w.putString(lit)
				i, state = i+len(lit), afterValue
			default:
				end, ok := scanNumber(d, i)
				if !ok {
					return syntaxError(d, end)
				}
				if secret {
					w.changed = true
					w.putString(`"` + Marker + `"`)
				} else {
					w.put(d[i:end]...)
				}
				i, state = end, afterValue
			}
		case wantKey:
			if i == len(d) || d[i] != '"' {
				return syntaxError(d, i)
			}
			end, flags, err := scanString(d, i)
			if err != nil {
				return err
			}
			body := d[i+1 : end]
			if isClean(body, flags) {
				secret = sensitiveKey(body)
				w.putQuoted(body)
			} else {
				scratch = jsonstr.AppendDecoded(scratch[:0], body)
				secret = sensitiveKey(scratch)
				w.putQuoted(scratch)
			}
			i = skipSpace(d, end+1)
			if i == len(d) || d[i] != ':' {
				return syntaxError(d, i)
			}
			w.put(':')
			i, state = i+1, wantValue
		case afterValue:
			if len(stack) == 0 {
				if i < len(d) {
					return fmt.Errorf("trailing data after JSON value at offset %d", i)
				}
				return nil
			}
			if i == len(d) {
				return syntaxError(d, i)
			}
			top := stack[len(stack)-1]
			switch c := d[i]; {
			case c == ',':
				w.put(c)
				i++
				if top == inObject {
					state = wantKey
				} else {
					secret, state = top == inSecretArray, wantValue
				}
			case c == '}' && top == inObject, c == ']' && top != inObject:
				w.put(c)
				i++
				stack = stack[:len(stack)-1]
			default:
				return syntaxError(d, i)
			}
		}
	}
}

// stringValue handles the string value whose raw body (between the quotes)
// is body, and returns scratch for reuse. In the first pass w.changed
// becomes what redactString would report for the decoded text; in the
// second the text is written as redactString leaves it.
func (w *walker) stringValue(body []byte, flags byte, secret bool, scratch []byte) []byte {
	if secret && len(body) > 0 {
		w.changed = true
		w.putString(`"` + Marker + `"`)
		return scratch
	}
	if w.changed && !w.emit {
		return scratch // the answer is known, only validation is left
	}
	if isClean(body, flags) {
		mask := needleMask(w.idx, body)
		switch {
		case mask == 0:
			w.putQuoted(body)
		case !w.emit:
			w.changed = wouldChange(w.pats, mask, body)
		default:
			s, _ := redactMasked(w.pats, mask, string(body))
			w.out = appendQuoted(w.out, s)
		}
		return scratch
	}
	// Unless an escape can make a needle byte (newNeedleIndex makes sure
	// that \" \\ \b \f \n \r \t cannot), every needle of the decoded text
	// is in the raw text too: most escaped strings (any text with a line
	// break) are settled without decoding them.
	if !w.emit && flags&escNeedle == 0 && needleMask(w.idx, body) == 0 {
		return scratch
	}
	scratch = jsonstr.AppendDecoded(scratch[:0], body)
	mask := needleMask(w.idx, scratch)
	switch {
	case mask == 0:
		w.putQuoted(scratch)
	case !w.emit:
		// A copy: handing scratch to the regexp package would move it to
		// the heap on every call, used or not.
		w.changed = wouldChange(w.pats, mask, bytes.Clone(scratch))
	default:
		s, _ := redactMasked(w.pats, mask, string(scratch))
		w.out = appendQuoted(w.out, s)
	}
	return scratch
}

func (w *walker) put(b ...byte) {
	if w.emit {
		w.out = append(w.out, b...)
	}
}

func (w *walker) putString(s string) {
	if w.emit {
		w.out = append(w.out, s...)
	}
}

func (w *walker) putQuoted(s []byte) {
	if w.emit {
		w.out = appendQuoted(w.out, s)
	}
}

func syntaxError(d []byte, i int) error {
	if i >= len(d) {
		return errors.New("unexpected end of JSON input")
	}
	return fmt.Errorf("invalid character %q at offset %d", d[i], i)
}

func skipSpace(d []byte, i int) int {
	for i < len(d) {
		switch d[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// Flags of a string body found by scanString.
const (
	escaped   byte = 1 << iota // has a backslash escape
	escNeedle                  // has \u or \/, which can decode to a needle byte
	nonASCII                   // has a byte >= 0x80, maybe invalid UTF-8
)

// isClean reports whether the body of a string decodes to itself: no
// escapes, and no invalid UTF-8 for the decoder to replace with U+FFFD.
func isClean(body []byte, flags byte) bool {
	return flags&escaped == 0 && (flags&nonASCII == 0 || utf8.Valid(body))
}

// scanString validates the string starting with the quote at d[i] and
// returns the index of its closing quote and its flags.
func scanString(d []byte, i int) (int, byte, error) {
	var flags byte
	for j := i + 1; j < len(d); j++ {
		// Payloads are mostly string bytes: skip them eight at a time.
		for j+8 <= len(d) {
			x := binary.LittleEndian.Uint64(d[j:])
			if endsRun(x) {
				break
			}
			if x&highBits != 0 {
				flags |= nonASCII
			}
			j += 8
		}
		if j == len(d) {
			break
		}
		c := d[j]
		if c >= 0x20 && c < utf8.RuneSelf && c != '"' && c != '\\' {
			continue
		}
		switch {
		case c == '"':
			return j, flags, nil
		case c >= utf8.RuneSelf:
			flags |= nonASCII
		case c < 0x20:
			return 0, 0, syntaxError(d, j)
		default: // backslash
			j++
			if j == len(d) {
				return 0, 0, syntaxError(d, j)
			}
			flags |= escaped
			switch d[j] {
			case '"', '\\', 'b', 'f', 'n', 'r', 't':
			case '/':
				flags |= escNeedle
			case 'u':
				flags |= escNeedle
				for k := 0; k < 4; k++ {
					j++
					if j == len(d) || !jsonstr.IsHex(d[j]) {
						return 0, 0, syntaxError(d, j)
					}
				}
			default:
				return 0, 0, syntaxError(d, j)
			}
		}
	}
	return 0, 0, syntaxError(d, len(d))
}

const (
	lowBits  = 0x0101010101010101
	highBits = 0x8080808080808080
)

// endsRun reports whether one of the eight bytes of x is a quote, a
// backslash or a control byte. Each test sets the high bit of a byte where
// it holds (x-n)&^x borrows into bit 7 only from a byte below n, and a
// borrow only spreads to higher bytes after a byte that is below n), so
// the answer is exact even though the per-byte bits may not be.
func endsRun(x uint64) bool {
	q := x ^ lowBits*'"'
	b := x ^ lowBits*'\\'
	return ((x-lowBits*0x20)&^x|(q-lowBits)&^q|(b-lowBits)&^b)&highBits != 0
}

// scanNumber validates the number starting at d[i] and returns the index
// just after it, or the index of the offending byte and false.
func scanNumber(d []byte, i int) (int, bool) {
	if d[i] == '-' {
		i++
	}
	switch {
	case i == len(d):
		return i, false
	case d[i] == '0':
		i++
	case '1' <= d[i] && d[i] <= '9':
		i = skipDigits(d, i+1)
	default:
		return i, false
	}
	if i < len(d) && d[i] == '.' {
		i++
		if i == len(d) || !isDigit(d[i]) {
			return i, false
		}
		i = skipDigits(d, i+1)
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if i == len(d) || !isDigit(d[i]) {
			return i, false
		}
		i = skipDigits(d, i+1)
	}
	return i, true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func skipDigits(d []byte, i int) int {
	for i < len(d) && isDigit(d[i]) {
		i++
	}
	return i
}

// appendQuoted appends s as a JSON string the way encoding/json's Encoder
// does with HTML escaping off, as the redacted payload was written before.
func appendQuoted[T string | []byte](dst []byte, s T) []byte { return jsonstr.Append(dst, s, false) }
