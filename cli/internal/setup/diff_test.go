package setup

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The diffs setup shows are what `diff -u` (GNU diffutils) prints for the
// same change, headers aside.
func TestDiffMatchesDiffutils(t *testing.T) {
	diff, err := exec.LookPath("diff")
	if err != nil {
		t.Fatal("this test compares with GNU diff: apt-get install diffutils")
	}
	for _, tc := range goldenCases {
		a := filepath.Join("testdata", "golden", tc.file)
		b := a + ".wrapped"
		out, _ := exec.Command(diff, "-u", a, b).Output()
		want := dropHeaders(string(out))
		got := dropHeaders(unifiedDiff(tc.file, mustReadFile(t, a), mustReadFile(t, b)))
		if got != want {
			t.Errorf("%s: setup's diff:\n%s\ndiff -u:\n%s", tc.file, got, want)
		}
	}
}

func dropHeaders(d string) string {
	lines := strings.SplitAfter(d, "\n")
	if len(lines) >= 2 && strings.HasPrefix(lines[0], "--- ") && strings.HasPrefix(lines[1], "+++ ") {
		lines = lines[2:]
	}
	return strings.Join(lines, "")
}

func mustReadFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Applying the diff to the old text gives the new one, for random edits.
func TestDiffApplies(t *testing.T) {
	for seed := range uint64(300) {
		r := rand.New(rand.NewPCG(seed, 7))
		var a []string
		for range r.IntN(40) {
			a = append(a, fmt.Sprintf("line %d\n", r.IntN(8)))
		}
		b := append([]string(nil), a...)
		for range r.IntN(6) {
			switch i := r.IntN(len(b) + 1); r.IntN(3) {
			case 0:
				b = append(b[:i], append([]string{fmt.Sprintf("new %d\n", r.IntN(5))}, b[i:]...)...)
			case 1:
				if i < len(b) {
					b = append(b[:i], b[i+1:]...)
				}
			default:
				if i < len(b) {
					b[i] = "changed\n"
				}
			}
		}
		ab, bb := []byte(strings.Join(a, "")), []byte(strings.Join(b, ""))
		if r.IntN(4) == 0 && len(bb) > 0 {
			bb = bb[:len(bb)-1] // no newline at the end
		}
		d := unifiedDiff("f", ab, bb)
		got, err := applyDiff(ab, d)
		if err != nil {
			t.Fatalf("seed %d: %v\n%s", seed, err, d)
		}
		if !bytes.Equal(got, bb) {
			t.Fatalf("seed %d: applying the diff gave\n%q\nwant\n%q\ndiff:\n%s", seed, got, bb, d)
		}
	}
	if unifiedDiff("f", []byte("same\n"), []byte("same\n")) != "" {
		t.Error("a diff of equal texts")
	}
}

// applyDiff applies a unified diff, checking its hunk headers and context.
func applyDiff(a []byte, d string) ([]byte, error) {
	if d == "" {
		return a, nil
	}
	old := splitLines(a)
	lines := strings.SplitAfter(d, "\n")
	var out []string
	pos := 0
	for i := 2; i < len(lines) && lines[i] != ""; {
		h := lines[i]
		var as, al, bs, bl int
		if _, err := fmt.Sscanf(strings.NewReplacer(",", " ").Replace(h), "@@ -%d %d +%d %d @@", &as, &al, &bs, &bl); err != nil {
			// single-line ranges omit the count
			parts := strings.Fields(h)
			as, al = parseRange(parts[1][1:])
			bs, bl = parseRange(parts[2][1:])
		}
		start := as - 1
		if al == 0 {
			start = as
		}
		if start < pos {
			return nil, fmt.Errorf("hunk %q overlaps", h)
		}
		out = append(out, old[pos:start]...)
		pos = start
		i++
		seenA, seenB := 0, 0
		for i < len(lines) && lines[i] != "" && !strings.HasPrefix(lines[i], "@@") {
			l := lines[i]
			i++
			noNL := i < len(lines) && strings.HasPrefix(lines[i], `\ No newline`)
			body := l[1:]
			if noNL {
				body = strings.TrimSuffix(body, "\n")
				i++
			}
			switch l[0] {
			case ' ', '-':
				if pos >= len(old) || old[pos] != body {
					return nil, fmt.Errorf("context %q does not match %q", body, old[min(pos, len(old)-1)])
				}
				pos++
				seenA++
				if l[0] == ' ' {
					out = append(out, body)
					seenB++
				}
			case '+':
				out = append(out, body)
				seenB++
			default:
				return nil, fmt.Errorf("bad line %q", l)
			}
		}
		if seenA != al || seenB != bl {
			return nil, fmt.Errorf("hunk %q has %d/%d lines", h, seenA, seenB)
		}
	}
	out = append(out, old[pos:]...)
	return []byte(strings.Join(out, "")), nil
}

func parseRange(s string) (start, n int) {
	a, b, ok := strings.Cut(s, ",")
	start, _ = strconv.Atoi(a)
	if !ok {
		return start, 1
	}
	n, _ = strconv.Atoi(b)
	return start, n
}

// ~/.claude.json can hold tens of thousands of lines between two servers:
// the diff stays two small hunks and cheap.
func TestDiffOfALargeFile(t *testing.T) {
	var a []string
	for i := range 60000 {
		a = append(a, fmt.Sprintf("    \"line %d\",\n", i))
	}
	b := append([]string(nil), a[:10]...)
	b = append(b, "added 1\n", "added 2\n")
	b = append(b, a[10:59990]...)
	b = append(b, "added 3\n")
	b = append(b, a[59991:]...)
	ab, bb := []byte(strings.Join(a, "")), []byte(strings.Join(b, ""))
	d := unifiedDiff("f", ab, bb)
	if n := strings.Count(d, "\n@@ "); n != 2 {
		t.Errorf("%d hunks:\n%s", n, d)
	}
	got, err := applyDiff(ab, d)
	if err != nil || !bytes.Equal(got, bb) {
		t.Errorf("the diff does not apply: %v", err)
	}
}
