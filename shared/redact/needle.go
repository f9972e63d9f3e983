package redact

import (
	"fmt"
	"unicode/utf8"
)

// A needleIndex tells, in one pass over a text, which patterns have a
// needle in it. Looking for each of the ~40 needles separately, in a
// lower-cased copy for the folded ones, costs a call per needle and an
// allocation per text; almost every text has no needle at all, so the
// common case must be a single cheap loop.
//
// A needle can only start where the first two bytes are a pair that some
// needle starts with (first), and the second and third a pair that some
// needle has there (second). Only then are the needles starting with that
// byte compared. Every needle has three bytes or more, so one of its first
// two pairs starts at an odd offset: the pass looks at the pair at every
// odd offset only, in either (either), and only where it is there at the
// two offsets it can belong to. That halves the work on ordinary text.
type needleIndex struct {
	either, first, second pairSet
	byFirst               [256][]needle
}

// A pairSet is a set of two-byte sequences, as a bitmap.
type pairSet [1 << 16 / 64]uint64

func (s *pairSet) add(a, b byte) {
	p := uint16(a)<<8 | uint16(b)
	s[p>>6] |= 1 << (p & 63)
}

func (s *pairSet) has(a, b byte) bool {
	p := uint16(a)<<8 | uint16(b)
	return s[p>>6]&(1<<(p&63)) != 0
}

type needle struct {
	text string
	fold bool   // compared with the text lower-cased, as strings.ToLower does
	pats uint64 // bit i: needle of patterns()[i]
}

func newNeedleIndex(pats []pattern) *needleIndex {
	if len(pats) > 64 {
		panic(fmt.Sprintf("redact: %d patterns do not fit a uint64 mask", len(pats)))
	}
	x := new(needleIndex)
	for i, p := range pats {
		for _, t := range p.needles {
			// The pair sets need three bytes, and folding is only defined
			// here for ASCII needles. Breaking these is a programming error
			// that any test finds.
			if len(t) < 3 {
				panic(fmt.Sprintf("redact: needle %q is shorter than 3 bytes", t))
			}
			// JSON skips decoding strings whose only escapes are \" \\ \b
			// \f \n \r \t, so none of those bytes may be in a needle.
			for j := 0; j < len(t); j++ {
				if c := t[j]; c >= utf8.RuneSelf || c < 0x20 || c == '"' || c == '\\' {
					panic(fmt.Sprintf("redact: needle %q is not printable ASCII without quote or backslash", t))
				}
			}
			n := needle{text: t, fold: p.fold, pats: 1 << i}
			for _, a := range spellings(t[0], p.fold) {
				x.byFirst[a[0]] = append(x.byFirst[a[0]], n)
				for _, b := range spellings(t[1], p.fold) {
					for _, c := range spellings(t[2], p.fold) {
						// The first three bytes of the needle as a text can
						// spell it.
						s := a + b + c
						x.first.add(s[0], s[1])
						x.second.add(s[1], s[2])
						x.either.add(s[0], s[1])
						x.either.add(s[1], s[2])
					}
				}
			}
		}
	}
	return x
}

// spellings are the UTF-8 encodings a needle byte c can match in a text:
// c itself, or when folding every rune that strings.ToLower turns into c.
func spellings(c byte, fold bool) []string {
	if !fold {
		return []string{string(rune(c))}
	}
	var out []string
	if lowerASCII(c) == c {
		out = append(out, string(rune(c)))
	}
	if 'a' <= c && c <= 'z' {
		out = append(out, string(rune(c-'a'+'A')))
	}
	if r := nonASCIILower(c); r != "" {
		out = append(out, r)
	}
	return out
}

// nonASCIILower is the UTF-8 of the rune outside ASCII that
// unicode.ToLower maps to the ASCII byte c, or "". There are only two
// (TestNonASCIILower checks the Unicode tables), and a folded needle must
// find them: strings.ToLower("TO\u212aEN") is "token".
func nonASCIILower(c byte) string {
	switch c {
	case 'i':
		return "\u0130" // LATIN CAPITAL LETTER I WITH DOT ABOVE
	case 'k':
		return "\u212a" // KELVIN SIGN
	}
	return ""
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// needleMask returns the patterns that have a needle in s: bit i is set
// when patterns()[i] has a plain needle in s, or a folded one in
// strings.ToLower(s).
func needleMask[T string | []byte](x *needleIndex, s T) uint64 {
	var mask uint64
	for j := 1; j+1 < len(s); j += 2 {
		if !x.either.has(s[j], s[j+1]) {
			continue
		}
		// A needle at j-1 has its second pair here, one at j its first.
		for i := j - 1; i <= j && i+2 < len(s); i++ {
			if x.first.has(s[i], s[i+1]) && x.second.has(s[i+1], s[i+2]) {
				mask |= needlesAt(x, s[i:], mask)
			}
		}
	}
	return mask
}

// needlesAt returns the patterns not in known that have a needle at the
// start of s.
func needlesAt[T string | []byte](x *needleIndex, s T, known uint64) uint64 {
	var mask uint64
	for _, n := range x.byFirst[s[0]] {
		if known&n.pats == n.pats {
			continue
		}
		if n.fold && hasFoldPrefix(s, n.text) || !n.fold && hasPrefix(s, n.text) {
			mask |= n.pats
		}
	}
	return mask
}

func hasPrefix[T string | []byte](s T, prefix string) bool {
	return len(s) >= len(prefix) && string(s[:len(prefix)]) == prefix
}

// hasFoldPrefix reports whether strings.ToLower(s) starts with the ASCII
// needle, s starting at a rune boundary. The lower case of a rune is one
// rune, and only ASCII letters and the nonASCIILower runes lower to ASCII,
// so the needle matches rune by rune without building the lowered text.
// Invalid UTF-8 lowers to U+FFFD, which matches no needle byte.
func hasFoldPrefix[T string | []byte](s T, needle string) bool {
	j := 0
	for k := 0; k < len(needle); k++ {
		if j >= len(s) {
			return false
		}
		if c := s[j]; c < utf8.RuneSelf {
			if lowerASCII(c) != needle[k] {
				return false
			}
			j++
			continue
		}
		r := nonASCIILower(needle[k])
		if r == "" || !hasPrefix(s[j:], r) {
			return false
		}
		j += len(r)
	}
	return true
}
