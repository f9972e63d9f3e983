package monitor

import (
	"bytes"
	"testing"
)

// TestIndexQuoteOrNewline puts a quote, a newline or both at every place
// of every length up to a few of the wide loop's blocks, at every
// alignment, and compares each version with the byte loop.
func TestIndexQuoteOrNewline(t *testing.T) {
	versions := map[string]func([]byte) int{
		"indexQuoteOrNewline":      indexQuoteOrNewline,
		"indexQuoteOrNewlineWide":  indexQuoteOrNewlineWide,
		"indexQuoteOrNewlineTwice": indexQuoteOrNewlineTwice,
	}
	for name, f := range archIndexVersions() {
		versions[name] = f
	}
	buf := make([]byte, 16+200)
	for off := range 16 {
		for n := range 200 {
			p := buf[off : off+n]
			for _, marks := range [][]byte{nil, {'"'}, {'\n'}, {'"', '\n'}, {'\n', '"'}} {
				for at := range max(n, 1) {
					for i := range buf {
						buf[i] = 'x' ^ byte(i&3) // near misses: 'x', 'y', 'z', '{'
					}
					// Bytes after p must never be seen.
					for i := off + n; i < len(buf); i++ {
						buf[i] = '"'
					}
					for k, m := range marks {
						if at+k < n {
							p[at+k] = m
						}
					}
					want := indexQuoteOrNewlineBytes(p)
					for name, f := range versions {
						if got := f(p); got != want {
							t.Fatalf("%s(%q) at offset %d = %d, want %d", name, p, off, got, want)
						}
					}
					if len(marks) == 0 {
						break
					}
				}
			}
		}
	}
}

func FuzzIndexQuoteOrNewline(f *testing.F) {
	f.Add([]byte(`{"a":"b"}`))
	f.Add(bytes.Repeat([]byte{'x'}, 100))
	f.Add(append(bytes.Repeat([]byte{0x22 ^ 0x80}, 70), '\n'))
	f.Fuzz(func(t *testing.T, p []byte) {
		want := indexQuoteOrNewlineBytes(p)
		if got := indexQuoteOrNewline(p); got != want {
			t.Fatalf("indexQuoteOrNewline(%q) = %d, want %d", p, got, want)
		}
		if got := indexQuoteOrNewlineTwice(p); got != want {
			t.Fatalf("indexQuoteOrNewlineTwice(%q) = %d, want %d", p, got, want)
		}
		for name, f := range archIndexVersions() {
			if got := f(p); got != want {
				t.Fatalf("%s(%q) = %d, want %d", name, p, got, want)
			}
		}
	})
}

// BenchmarkIndexQuoteOrNewline is the search over one relay read of a
// long string's body, against the two standard searches it replaces.
func BenchmarkIndexQuoteOrNewline(b *testing.B) {
	p := bytes.Repeat([]byte{'x'}, relayBufSize)
	b.Run("one-pass", func(b *testing.B) {
		b.SetBytes(int64(len(p)))
		for b.Loop() {
			if indexQuoteOrNewline(p) != -1 {
				b.Fatal("found")
			}
		}
	})
	b.Run("two-IndexByte", func(b *testing.B) {
		b.SetBytes(int64(len(p)))
		for b.Loop() {
			if indexQuoteOrNewlineTwice(p) != -1 {
				b.Fatal("found")
			}
		}
	})
}
