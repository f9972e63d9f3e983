package jsonstr

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"
)

// plainByByte is plain one byte at a time: the definition, written as a
// set of stop bytes.
func plainByByte(s []byte, stop uint8) (n, leads int) {
	stops := []byte{'"', '\\'}
	if stop&stopHTML != 0 {
		stops = append(stops, '<', '>', '&')
	}
	for c := range 256 {
		if (stop&stopControl != 0 && c < ' ') || (stop&stopHigh != 0 && c > 0x7f) {
			stops = append(stops, byte(c))
		}
	}
	for n < len(s) && bytes.IndexByte(stops, s[n]) < 0 {
		if !utf8.RuneStart(s[n]) {
			leads--
		}
		n++
		leads++
	}
	return n, leads
}

// plain (with the vector kernel where the CPU has one) and plainGo find
// the byte that ends a run at every offset within and across the kernel's
// 32-byte blocks and the words of Go, for every stop set, after plain
// bytes of one to four bytes each, and count the characters before it.
func TestPlainAtEveryOffset(t *testing.T) {
	fills := []string{"a", "é", "€", "🚀", "a\x7f~ é"}
	ends := []string{"", "\"", "\\", "\x00", "\x1f", " ", "\x7f", "\x80", "\xbf", "\xc3", "\xff", "<", ">", "&", "\n"}
	for stop := range uint8(8) {
		for _, fill := range fills {
			for _, end := range ends {
				for at := range 150 {
					s := []byte(strings.Repeat(fill, at)[:at] + end + strings.Repeat("a", at%40))
					wn, wl := plainByByte(s, stop)
					if n, l := plain(s, stop); n != wn || l != wl {
						t.Fatalf("plain(%q, %03b) = %d, %d; want %d, %d", s, stop, n, l, wn, wl)
					}
					if n, l := plainGo(s, 0, 0, stop); n != wn || l != wl {
						t.Fatalf("plainGo(%q, %03b) = %d, %d; want %d, %d", s, stop, n, l, wn, wl)
					}
					if stop == 0 {
						if n, l := PlainRunes(s); n != wn || l != wl {
							t.Fatalf("PlainRunes(%q) = %d, %d; want %d, %d", s, n, l, wn, wl)
						}
						if n := PlainLen(s); n != wn {
							t.Fatalf("PlainLen(%q) = %d; want %d", s, n, wn)
						}
					}
				}
			}
		}
	}
}

// Specials finds the first quote or backslash of a word exactly, whatever
// the other bytes are.
func TestSpecials(t *testing.T) {
	for _, c := range []byte{0, '"', '\\', 'a', 0x7f, 0x80, 0xdc, 0xff, 0x21, 0x5b, 0x5d} {
		for at := range 8 {
			for _, fill := range []byte{' ', 0, 0xff, 0x22 ^ 0x80, 0x5c ^ 0x01} {
				var w [8]byte
				for i := range w {
					w[i] = fill
				}
				w[at] = c
				want := -1
				for i, b := range w {
					if b == '"' || b == '\\' {
						want = i
						break
					}
				}
				got := -1
				if m := Specials(load8(w[:], 0)); m != 0 {
					got = 0
					for m&0x80 == 0 {
						m >>= 8
						got++
					}
				}
				if got != want {
					t.Fatalf("Specials(%q) finds byte %d, want %d", w, got, want)
				}
			}
		}
	}
}

func FuzzPlain(f *testing.F) {
	f.Add([]byte(strings.Repeat("é", 40)+"\"tail"), uint8(0))
	f.Add([]byte(strings.Repeat("a", 70)+"<\x01\xff"), uint8(7))
	f.Fuzz(func(t *testing.T, s []byte, stop uint8) {
		stop &= 7
		wn, wl := plainByByte(s, stop)
		if n, l := plain(s, stop); n != wn || l != wl {
			t.Fatalf("plain(%q, %03b) = %d, %d; want %d, %d", s, stop, n, l, wn, wl)
		}
	})
}

// BenchmarkPlainRunes counts the characters of a long run of prose in
// several scripts, in Go and with the vector kernel where the CPU has one
// (go test ./shared/jsonstr -run '^$' -bench PlainRunes).
func BenchmarkPlainRunes(b *testing.B) {
	s := []byte(strings.Repeat("The quick brown fox, le renard brun rapide, 敏捷的棕色狐狸. ", 128<<10/64))
	b.Run("go", func(b *testing.B) {
		b.SetBytes(int64(len(s)))
		for b.Loop() {
			plainGo(s, 0, 0, 0)
		}
	})
	if haveVector {
		b.Run("vector", func(b *testing.B) {
			b.SetBytes(int64(len(s)))
			for b.Loop() {
				plain(s, 0)
			}
		})
	}
}
