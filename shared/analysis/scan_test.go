package analysis

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
)

func TestExtractText(t *testing.T) {
	for _, tc := range []struct {
		name  string
		in    string
		limit int
		want  string
	}{
		{"keys and values", `{"path":"/etc/shadow","n":3,"tags":["a","b"]}`, 1000, "path: /etc/shadow\nn: tags: a\nb\n"},
		{"escapes", `{"p":"\/home\/u\/\u002essh\nx\t\"q\""}`, 1000, "p: /home/u/.ssh\nx\t\"q\"\n"},
		{"surrogate pair", `{"d":"a\udb40\udc49b"}`, 1000, "d: a\U000E0049b\n"},
		{"lone surrogate", `{"d":"a\ud800b"}`, 1000, "d: a\uFFFDb\n"},
		{"nested json text", `{"text":"{\"password\": \"hunter22\"}"}`, 1000, "text: {\"password\": \"hunter22\"}\n"},
		{"truncated in string", `{"path":"/home/u/.ss`, 1000, "path: /home/u/.ss"},
		{"truncated in escape", `{"path":"/home\`, 1000, "path: /home"},
		{"truncated in unicode escape", `{"path":"/home\u00`, 1000, "path: /home"},
		{"limit", `{"text":"` + strings.Repeat("x", 100) + `"}`, 20, "text: xxxxxxxxxxxxxx"},
		{"utf-8 kept", `{"t":"héllo 👋"}`, 1000, "t: héllo 👋\n"},
		{"not json", `hello world`, 1000, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(extractText(nil, []byte(tc.in), tc.limit)); got != tc.want {
				t.Errorf("extractText(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// extractText copies long runs of plain bytes in one step, stopping at the
// limit: at every limit, across words and vector blocks, it is the prefix
// of the whole text.
func TestExtractTextLongRuns(t *testing.T) {
	text := strings.Repeat("abcdéfgh 中 ", 30) + "\n\"q\"" + strings.Repeat("x", 100) + "\\"
	src, err := json.Marshal(map[string]string{"t": text})
	if err != nil {
		t.Fatal(err)
	}
	full := "t: " + text + "\n"
	for limit := range len(full) + 2 {
		if got, want := string(extractText(nil, src, limit)), full[:min(limit, len(full))]; got != want {
			t.Fatalf("limit %d: extractText = %q, want %q", limit, got, want)
		}
	}
}

func TestCountTextChars(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{`{"jsonrpc":"2.0","id":1,"result":{}}`, 3},
		{`{"text":"héllo"}`, 5},
		{`{"text":"a\nb\u00e9\"c"}`, 6},
		{`{"text":"abc`, 3}, // truncated
		{`[1,2,3]`, 0},
	} {
		if got := countTextChars([]byte(tc.in)); got != tc.want {
			t.Errorf("countTextChars(%s) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

// countTextCharsByByte is the plain definition countTextChars must agree
// with on any input, JSON or not: one byte at a time, an escape one
// character (six bytes for \uXXXX, two otherwise), a UTF-8 continuation
// byte none, and a string followed by a colon a key, not text.
func countTextCharsByByte(src []byte) int64 {
	var n, chars int64
	in := false
	for j := 0; j < len(src); {
		c := src[j]
		switch {
		case !in:
			in, chars = c == '"', 0
		case c == '"':
			if in = false; !isKey(src, j+1) {
				n += chars
			}
		case c == '\\':
			chars, j = chars+1, j+map[bool]int{true: 5, false: 1}[j+1 < len(src) && src[j+1] == 'u']
		case c&0xC0 != 0x80:
			chars++
		}
		j++
	}
	if in {
		n += chars // truncated inside a string
	}
	return n
}

func TestCountTextCharsAgreesByteByByte(t *testing.T) {
	seed := rand.Uint64()
	r := rand.New(rand.NewPCG(seed, 1))
	alphabet := []byte(`"\u:{} ,abcdefgh` + "\xc3\xa9\xf0\x9f\x91\x8b\x80\n")
	for k := range 3000 {
		// Dense and sparse special bytes: runs of a few bytes, and runs
		// long enough for jsonstr's vector kernel.
		density := []int{3, 60, 600}[k%3]
		b := make([]byte, r.IntN(200*(k%3+1)))
		for i := range b {
			if r.IntN(density) == 0 {
				b[i] = alphabet[r.IntN(len(alphabet))]
			} else {
				b[i] = 'a' + byte(r.IntN(26))
			}
		}
		if got, want := countTextChars(b), countTextCharsByByte(b); got != want {
			t.Fatalf("seed %d, input %d %q: countTextChars = %d, byte by byte %d", seed, k, b, got, want)
		}
	}
}

func TestHasInvisible(t *testing.T) {
	for _, tc := range []struct {
		in            string
		strict, loose bool
	}{
		{"plain text", false, false},
		{"zero\u200bwidth", true, false},
		{"bidi \u202eoverride", true, true},
		{"tag \U000E0041", true, true},
		{"family 👨\u200d👩", false, false},
		{"joiner\u200dalone", true, false},
		{"bom \ufeff", true, false},
		{"arabic مرحبا and accents é", false, false},
	} {
		if got := hasInvisible([]byte(tc.in), true); got != tc.strict {
			t.Errorf("strict hasInvisible(%q) = %v", tc.in, got)
		}
		if got := hasInvisible([]byte(tc.in), false); got != tc.loose {
			t.Errorf("loose hasInvisible(%q) = %v", tc.in, got)
		}
	}
}

func TestSafeName(t *testing.T) {
	for in, want := range map[string]string{
		"add":                   "add",
		"get-sum":               "get-sum",
		"":                      "_",
		"evil tool\n<x>":        "evil_tool__x_",
		strings.Repeat("a", 99): strings.Repeat("a", 64),
	} {
		if got := safeName(in); got != want {
			t.Errorf("safeName(%q) = %q, want %q", in, got, want)
		}
	}
}

// lowerASCII lowers exactly the ASCII capitals of every byte value, at
// every position of the eight-byte words it works in.
func TestLowerASCIIEveryByte(t *testing.T) {
	src := make([]byte, 256+7)
	for i := range 256 {
		src[i] = byte(i)
	}
	for off := range 8 {
		got := lowerASCII(nil, src[off:])
		for i, c := range src[off:] {
			want := c
			if 'A' <= c && c <= 'Z' {
				want = c + 'a' - 'A'
			}
			if got[i] != want {
				t.Fatalf("offset %d: byte %#x lowered to %#x, want %#x", off, c, got[i], want)
			}
		}
	}
}

// BenchmarkScanBoth is the anchor scan of a result's 128 KiB analysis
// window on text of several shapes, with the vector kernel and without it
// (and, on prose, the two scans apart that scanBoth replaced). Run with
// go test ./shared/analysis -run '^$' -bench ScanBoth.
func BenchmarkScanBoth(b *testing.B) {
	fill := func(s string) []byte { return []byte(strings.Repeat(s, DefaultScanLimit/len(s)+1)[:DefaultScanLimit]) }
	source, err := os.ReadFile("rules.go")
	if err != nil {
		b.Fatal(err)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		b.Fatal(err)
	}
	shapes := []struct {
		name string
		text []byte
	}{
		{"prose", fill("The quick brown fox jumps over the lazy dog; ")},
		{"one_letter", fill("x")},
		{"go_source", fill(string(source))},
		{"readme", fill(string(readme))},
	}
	for _, sh := range shapes {
		b.Run(sh.name+"/go", func(b *testing.B) {
			b.SetBytes(int64(len(sh.text)))
			for b.Loop() {
				scanBothWith(nil, sh.text)
			}
		})
		if vectorPairs != nil {
			b.Run(sh.name+"/vector", func(b *testing.B) {
				b.SetBytes(int64(len(sh.text)))
				for b.Loop() {
					scanBothWith(vectorPairs, sh.text)
				}
			})
		}
	}
	text := shapes[0].text
	lower := lowerASCII(nil, text)
	b.Run("prose/apart", func(b *testing.B) {
		b.SetBytes(int64(len(text)))
		for b.Loop() {
			lowerRules.scan(lower)
			secretSet.scan(text)
		}
	})
}

// scanBoth finds what the two scans find apart, on texts dense with the
// anchors of both sets in every case, at every position.
func TestScanBothIsTheTwoScans(t *testing.T) {
	var words []string
	for _, rs := range []*ruleSet{lowerRules, secretSet} {
		for c := range 256 {
			for _, a := range rs.byFirst[c] {
				words = append(words, string(a.lit), strings.ToUpper(string(a.lit)), strings.ToLower(string(a.lit)))
			}
		}
	}
	words = append(words, " ", "x", "\n", "é", "")
	rng := rand.New(rand.NewPCG(1, 2))
	for n := range 2000 {
		var sb strings.Builder
		for range n % 40 {
			w := words[rng.IntN(len(words))]
			if rng.IntN(3) == 0 && len(w) > 1 {
				w = w[:rng.IntN(len(w))]
			}
			sb.WriteString(w)
		}
		text := []byte(sb.String())
		lower, wantASCII := lowerText(nil, text)
		wl, ws := lowerRules.scan(lower), secretSet.scan(text)
		for name, vt := range scanBothPaths() {
			if low, sec, ascii := scanBothWith(vt, text); low != wl || sec != ws || ascii != wantASCII {
				t.Fatalf("%s: scanBoth(%q) = %x, %x, %v; the scans apart %x, %x, %v", name, text, low, sec, ascii, wl, ws, wantASCII)
			}
		}
	}
}

// scanBoth looks positions up eight at a time in Go (64 at a time with the
// vector kernel), lowered in the register, and filters them by trigram:
// every anchor of both sets, in either case, must still be found at every
// offset around those eight, across the kernel's blocks and its hand-over
// to the Go loop, and as the text's last bytes.
func TestScanBothFindsEveryAnchorAtEveryOffset(t *testing.T) {
	paths := scanBothPaths()
	for _, rs := range []*ruleSet{lowerRules, secretSet} {
		for c := range 256 {
			for _, a := range rs.byFirst[c] {
				for at := range 140 {
					for _, tail := range []string{"", "x", strings.Repeat("y", 10)} {
						lit := string(a.lit)
						if rs == lowerRules && at%2 == 1 {
							lit = strings.ToUpper(lit)
						}
						text := []byte(strings.Repeat("x", at) + lit + tail)
						lower := lowerASCII(nil, text)
						wl, ws := lowerRules.scan(lower), secretSet.scan(text)
						for name, vt := range paths {
							low, sec, _ := scanBothWith(vt, text)
							if low != wl || sec != ws {
								t.Fatalf("%s: scanBoth(%q) = %x, %x; the scans apart %x, %x", name, text, low, sec, wl, ws)
							}
							if (rs == lowerRules && low&a.bit == 0) || (rs == secretSet && sec&a.bit == 0) {
								t.Fatalf("%s: scanBoth(%q) misses the anchor %q", name, text, a.lit)
							}
						}
					}
				}
			}
		}
	}
}

// lowerText's and scanBoth's ASCII reports let results skip the
// invisible-character check: one byte of 0x80 or more, at any offset around
// their eight-byte words, must make them false.
func TestLowerTextReportsASCII(t *testing.T) {
	for _, n := range []int{0, 1, 7, 8, 9, 17, 24, 64, 65, 66, 129, 200} {
		text := []byte(strings.Repeat("Ab~\x7f", 50)[:n])
		if _, ascii := lowerText(nil, text); !ascii {
			t.Errorf("lowerText(%q) says not ASCII", text)
		}
		for name, vt := range scanBothPaths() {
			if _, _, ascii := scanBothWith(vt, text); !ascii {
				t.Errorf("%s: scanBoth(%q) says not ASCII", name, text)
			}
		}
		for at := range n {
			for _, c := range []byte{0x80, 0xe2, 0xff} {
				b := append([]byte(nil), text...)
				b[at] = c
				if _, ascii := lowerText(nil, b); ascii {
					t.Errorf("lowerText(%q) says ASCII", b)
				}
				for name, vt := range scanBothPaths() {
					if _, _, ascii := scanBothWith(vt, b); ascii {
						t.Errorf("%s: scanBoth(%q) says ASCII", name, b)
					}
				}
			}
		}
	}
}

// scanBoth compares lowerRules' anchors with the text ignoring case, which
// finds what comparing with the lowered text did only if they are all
// lower case; the checks lower the text for the rules they run.
func TestLowerRulesAnchorsAreLowerCase(t *testing.T) {
	for c := range 256 {
		for _, a := range lowerRules.byFirst[c] {
			if l := strings.ToLower(string(a.lit)); l != string(a.lit) {
				t.Errorf("anchor %q of a lowered rule is not lower case", a.lit)
			}
		}
	}
	for _, r := range []*rule{criticalPaths, sensitivePaths, shellCommands, destructiveSQL} {
		if requestRules&r.bit == 0 {
			t.Errorf("a request rule's bit %x is not in requestRules", r.bit)
		}
	}
	for _, r := range append([]*rule{hiddenTags, overrides}, passwordRules...) {
		if resultRules&r.bit == 0 {
			t.Errorf("a result rule's bit %x is not in resultRules", r.bit)
		}
	}
}
