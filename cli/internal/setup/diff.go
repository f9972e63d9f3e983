package setup

import (
	"bytes"
	"fmt"
	"strings"
)

// unifiedDiff renders the change from a to b as a unified diff with three
// lines of context, the way `diff -u` does.
func unifiedDiff(name string, a, b []byte) string {
	if bytes.Equal(a, b) {
		return ""
	}
	x, y := splitLines(a), splitLines(b)
	ops := diffLines(x, y)
	const ctx = 3
	var out strings.Builder
	fmt.Fprintf(&out, "--- %s\n+++ %s\n", name, name)
	// Group the edit script into hunks separated by more than 2*ctx
	// unchanged lines.
	for i := 0; i < len(ops); {
		if ops[i].kind == ' ' {
			i++
			continue
		}
		start := max(i-ctx, 0)
		end := i
		for end < len(ops) {
			if ops[end].kind != ' ' {
				end++
				continue
			}
			run := end
			for run < len(ops) && ops[run].kind == ' ' {
				run++
			}
			if run == len(ops) || run-end > 2*ctx {
				end = min(end+ctx, len(ops))
				break
			}
			end = run
		}
		writeHunk(&out, ops[start:end], x, y)
		i = end
	}
	return out.String()
}

type diffOp struct {
	kind byte // ' ', '-', '+'
	ai   int  // line in a (for ' ' and '-')
	bi   int  // line in b (for ' ' and '+')
}

func writeHunk(out *strings.Builder, ops []diffOp, x, y []string) {
	aStart, bStart, aLen, bLen := -1, -1, 0, 0
	for _, op := range ops {
		if op.kind != '+' {
			if aStart < 0 {
				aStart = op.ai
			}
			aLen++
		}
		if op.kind != '-' {
			if bStart < 0 {
				bStart = op.bi
			}
			bLen++
		}
	}
	fmt.Fprintf(out, "@@ -%s +%s @@\n", hunkRange(aStart, aLen, ops, true), hunkRange(bStart, bLen, ops, false))
	for _, op := range ops {
		line := ""
		if op.kind == '+' {
			line = y[op.bi]
		} else {
			line = x[op.ai]
		}
		out.WriteByte(op.kind)
		out.WriteString(line)
		if !strings.HasSuffix(line, "\n") {
			out.WriteString("\n\\ No newline at end of file\n")
		}
	}
}

func hunkRange(start, n int, ops []diffOp, inA bool) string {
	if n == 0 {
		// An empty range names the line before it.
		for _, op := range ops {
			if inA {
				return fmt.Sprintf("%d,0", op.ai)
			}
			return fmt.Sprintf("%d,0", op.bi)
		}
	}
	if n == 1 {
		return fmt.Sprintf("%d", start+1)
	}
	return fmt.Sprintf("%d,%d", start+1, n)
}

func splitLines(b []byte) []string {
	var lines []string
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			lines = append(lines, string(b))
			break
		}
		lines = append(lines, string(b[:i+1]))
		b = b[i+1:]
	}
	return lines
}

// diffLines is Myers' O(ND) diff: config edits touch few lines, so D is
// small even in a large file. The common head and tail are trimmed first.
func diffLines(x, y []string) []diffOp {
	pre := 0
	for pre < len(x) && pre < len(y) && x[pre] == y[pre] {
		pre++
	}
	suf := 0
	for suf < len(x)-pre && suf < len(y)-pre && x[len(x)-1-suf] == y[len(y)-1-suf] {
		suf++
	}
	var ops []diffOp
	for i := 0; i < pre; i++ {
		ops = append(ops, diffOp{' ', i, i})
	}
	mid := myers(x[pre:len(x)-suf], y[pre:len(y)-suf])
	for _, op := range mid {
		op.ai += pre
		op.bi += pre
		ops = append(ops, op)
	}
	for i := 0; i < suf; i++ {
		ops = append(ops, diffOp{' ', len(x) - suf + i, len(y) - suf + i})
	}
	return ops
}

func myers(x, y []string) []diffOp {
	n, m := len(x), len(y)
	maxD := n + m
	off := maxD + 1
	v := make([]int, 2*maxD+3)
	// trace[d] keeps v as step d found it, for k in [-d-1, d+1] only:
	// memory grows with D², not with D times the file's length.
	var trace [][]int
	found := false
	for d := 0; d <= maxD && !found; d++ {
		trace = append(trace, append([]int(nil), v[off-d-1:off+d+2]...))
		for k := -d; k <= d; k += 2 {
			var xi int
			if k == -d || (k != d && v[off+k-1] < v[off+k+1]) {
				xi = v[off+k+1]
			} else {
				xi = v[off+k-1] + 1
			}
			yi := xi - k
			for xi < n && yi < m && x[xi] == y[yi] {
				xi++
				yi++
			}
			v[off+k] = xi
			if xi >= n && yi >= m {
				found = true
				break
			}
		}
	}
	// Walk the trace back from (n, m) to (0, 0).
	var rev []diffOp
	xi, yi := n, m
	for d := len(trace) - 1; d >= 0; d-- {
		vd := func(k int) int { return trace[d][k+d+1] }
		k := xi - yi
		var prevK int
		if k == -d || (k != d && vd(k-1) < vd(k+1)) {
			prevK = k + 1
		} else {
			prevK = k - 1
		}
		prevX := vd(prevK)
		prevY := prevX - prevK
		for xi > prevX && yi > prevY {
			xi--
			yi--
			rev = append(rev, diffOp{' ', xi, yi})
		}
		if d > 0 {
			if xi == prevX {
				yi--
				rev = append(rev, diffOp{'+', xi, yi})
			} else {
				xi--
				rev = append(rev, diffOp{'-', xi, yi})
			}
		}
	}
	ops := make([]diffOp, len(rev))
	for i := range rev {
		ops[i] = rev[len(rev)-1-i]
	}
	return ops
}
