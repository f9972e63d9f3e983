// Package output is the one place commands format what they print: --json
// output and tables, GitHub CLI style. On a terminal tables are aligned and
// may use colour; otherwise they are plain tab-separated values, one record
// a line, for scripts.
package output

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"unicode/utf8"

	"github.com/kilometers-ai/kilometers/cli/internal/cmdutil"
)

// JSON writes v as JSON followed by a newline: indented on a terminal, on
// one line otherwise.
func JSON(ios *cmdutil.IOStreams, v any) error {
	enc := json.NewEncoder(ios.Out)
	enc.SetEscapeHTML(false)
	if ios.OutIsTerminal {
		enc.SetIndent("", "  ")
	}
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write JSON: %w", err)
	}
	return nil
}

// MaxCellWidth is how wide a cell may be on a terminal before it is cut.
const MaxCellWidth = 48

// Table collects rows and prints them.
type Table struct {
	out    io.Writer
	tty    bool
	header []string
	rows   [][]string
	colors [][]func(string) string
}

// NewTable starts a table with the given column headers.
func NewTable(ios *cmdutil.IOStreams, header ...string) *Table {
	return &Table{out: ios.Out, tty: ios.OutIsTerminal, header: header}
}

// AddRow adds a row of cells.
func (t *Table) AddRow(cells ...string) {
	t.rows = append(t.rows, cells)
	t.colors = append(t.colors, nil)
}

// AddColoredRow adds a row; colors[i], when not nil, styles cell i on a
// terminal.
func (t *Table) AddColoredRow(cells []string, colors []func(string) string) {
	t.rows = append(t.rows, cells)
	t.colors = append(t.colors, colors)
}

// Len is the number of rows.
func (t *Table) Len() int { return len(t.rows) }

// Render prints the table.
func (t *Table) Render() error {
	if !t.tty {
		var b strings.Builder
		for _, row := range append([][]string{t.header}, t.rows...) {
			for i, c := range row {
				if i > 0 {
					b.WriteByte('\t')
				}
				b.WriteString(plain(c))
			}
			b.WriteByte('\n')
		}
		_, err := io.WriteString(t.out, b.String())
		return err
	}
	// Colour codes would throw tabwriter's widths off, so pad by hand.
	widths := make([]int, len(t.header))
	cut := make([][]string, len(t.rows))
	measure := func(row []string) {
		for i, c := range row {
			if i < len(widths) {
				widths[i] = max(widths[i], utf8.RuneCountInString(c))
			}
		}
	}
	measure(t.header)
	for r, row := range t.rows {
		cut[r] = make([]string, len(row))
		for i, c := range row {
			cut[r][i] = Truncate(c, MaxCellWidth)
		}
		measure(cut[r])
	}
	var b strings.Builder
	line := func(row []string, style func(int, string) string) {
		for i, c := range row {
			pad := ""
			if i < len(row)-1 && i < len(widths) {
				pad = strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c)+2)
			}
			b.WriteString(style(i, c))
			b.WriteString(pad)
		}
		b.WriteString("\n")
	}
	line(t.header, func(_ int, c string) string { return Bold(c) })
	for r, row := range cut {
		colors := t.colors[r]
		line(row, func(i int, c string) string {
			if i < len(colors) && colors[i] != nil {
				return colors[i](c)
			}
			return c
		})
	}
	_, err := io.WriteString(t.out, b.String())
	return err
}

// KeyValues prints aligned "key  value" lines (a tabwriter on any output:
// they are for people either way).
func KeyValues(w io.Writer, pairs [][2]string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, p := range pairs {
		fmt.Fprintf(tw, "%s\t%s\n", p[0], p[1])
	}
	return tw.Flush()
}

// plain keeps a cell on one line with no tabs.
func plain(s string) string {
	return strings.NewReplacer("\t", " ", "\n", " ", "\r", " ").Replace(s)
}

// Truncate cuts s to at most n runes, ending with "…" when cut.
func Truncate(s string, n int) string {
	s = plain(s)
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// Styles for terminals.
func Bold(s string) string   { return "\x1b[1m" + s + "\x1b[0m" }
func Red(s string) string    { return "\x1b[31m" + s + "\x1b[0m" }
func Yellow(s string) string { return "\x1b[33m" + s + "\x1b[0m" }
func Gray(s string) string   { return "\x1b[90m" + s + "\x1b[0m" }

// Bytes formats a byte count for people: 512 B, 1.2 KB, 3.4 MB.
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "KMGTP"[exp])
}

// Millis formats a latency in milliseconds for people.
func Millis(ms float64) string {
	switch {
	case ms >= 10000:
		return fmt.Sprintf("%.1f s", ms/1000)
	case ms >= 100:
		return fmt.Sprintf("%.0f ms", ms)
	case ms >= 1:
		return fmt.Sprintf("%.1f ms", ms)
	}
	return fmt.Sprintf("%.3f ms", ms)
}

// Count formats an integer with thousands separators.
func Count(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
