// Package output is the one place commands format what they print: --json
// output and tables, GitHub CLI style. On a terminal tables are aligned, cut
// to the terminal's width with an ellipsis, coloured unless NO_COLOR is set,
// and long output goes through a pager; times are local with their zone.
// Otherwise output is plain tab-separated values, one record a line, with
// RFC 3339 UTC times, for scripts.
package output

import (
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strings"
	"text/tabwriter"
	"unicode/utf8"

	"github.com/kilometers-ai/kilometers/cli/internal/cmdutil"
	"github.com/kilometers-ai/kilometers/shared/event"
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

// minColumn is the narrowest a column is cut to when a table must fit the
// terminal.
const minColumn = 5

// Table collects rows and prints them.
type Table struct {
	out    io.Writer
	tty    bool
	color  bool
	width  int
	header []string
	rows   [][]string
	colors [][]func(string) string
	fixed  map[int]bool
	// optional columns may be left out on a narrow terminal, first first.
	optional []int
	growing  bool
	// widths are kept from the first Flush, so later rows line up.
	widths []int
}

// Growing says rows will be added after the first Flush (a live tail):
// columns are then sized for more than the first rows, at least
// dropWidth wide where the terminal allows.
func (t *Table) Growing() { t.growing = true }

// Optional lists columns that may be left out when the terminal is too
// narrow for every column to be readable, the first to go first.
func (t *Table) Optional(cols ...int) { t.optional = cols }

// Fixed marks columns that fitting to the terminal must not narrow (an id
// that must stay whole to be copied).
func (t *Table) Fixed(cols ...int) {
	if t.fixed == nil {
		t.fixed = map[int]bool{}
	}
	for _, c := range cols {
		t.fixed[c] = true
	}
}

// NewTable starts a table with the given column headers.
func NewTable(ios *cmdutil.IOStreams, header ...string) *Table {
	return &Table{out: ios.Out, tty: ios.OutIsTerminal, color: ios.Color, width: ios.Width, header: header}
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

// Render prints the table.
func (t *Table) Render() error { return t.Flush() }

// Flush prints the rows added since the last Flush, with the header the
// first time: a table that grows while it is printed (a live tail). Column
// widths are set by the first Flush that has rows; later rows are cut to
// them.
func (t *Table) Flush() error {
	if t.widths == nil && len(t.rows) == 0 && t.tty {
		return nil // wait for rows to size the columns by
	}
	defer func() { t.rows, t.colors = t.rows[:0], t.colors[:0] }()
	if !t.tty {
		var b strings.Builder
		rows := t.rows
		if t.widths == nil {
			rows = append([][]string{t.header}, rows...)
			t.widths = []int{}
		}
		for _, row := range rows {
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
	first := t.widths == nil
	if first {
		widths := make([]int, len(t.header))
		measure := func(row []string) {
			for i, c := range row {
				if i < len(widths) {
					widths[i] = max(widths[i], utf8.RuneCountInString(Truncate(c, MaxCellWidth)))
				}
			}
		}
		for _, row := range t.rows {
			measure(row)
		}
		measure(t.header)
		if t.growing {
			for i := range widths {
				if !t.fixed[i] {
					widths[i] = max(widths[i], dropWidth)
				}
			}
		}
		t.drop(widths)
		fit(widths, t.width, t.fixed)
		t.widths = widths
	}
	widths := t.widths
	var b strings.Builder
	line := func(row []string, style func(int, string) string) {
		var l strings.Builder
		for i, c := range row {
			w := MaxCellWidth
			if i < len(widths) {
				w = widths[i]
			}
			if w < 0 {
				continue // left out to fit
			}
			c = Truncate(c, w)
			l.WriteString(style(i, c))
			l.WriteString(strings.Repeat(" ", w-utf8.RuneCountInString(c)+2))
		}
		b.WriteString(strings.TrimRight(l.String(), " "))
		b.WriteString("\n")
	}
	if first {
		line(t.header, func(_ int, c string) string { return t.style(Bold, c) })
	}
	for r, row := range t.rows {
		colors := t.colors[r]
		line(row, func(i int, c string) string {
			if i < len(colors) {
				return t.style(colors[i], c)
			}
			return c
		})
	}
	_, err := io.WriteString(t.out, b.String())
	return err
}

func (t *Table) style(f func(string) string, s string) string {
	if f == nil || !t.color || s == "" {
		return s
	}
	return f(s)
}

// dropWidth is the width below which a flexible column is not worth
// showing: when the terminal cannot give every column at least this much,
// optional columns are left out.
const dropWidth = 12

// drop leaves out optional columns (width -1), in their order, while the
// table could not fit with every flexible column cut to dropWidth.
func (t *Table) drop(widths []int) {
	if t.width <= 0 {
		return
	}
	need := func() int {
		n, cols := 0, 0
		for i, w := range widths {
			if w < 0 {
				continue
			}
			cols++
			if t.fixed[i] {
				n += w
			} else {
				n += min(w, dropWidth)
			}
		}
		return n + 2*(cols-1)
	}
	for _, c := range t.optional {
		if need() <= t.width {
			return
		}
		if c < len(widths) {
			widths[c] = -1
		}
	}
}

// fit narrows the widest columns (but the fixed ones), one column at a
// time, until a row with two spaces between columns fits in width (0: no
// limit).
func fit(widths []int, width int, fixed map[int]bool) {
	if width <= 0 {
		return
	}
	total := func() int {
		n, cols := 0, 0
		for _, w := range widths {
			if w >= 0 {
				n += w
				cols++
			}
		}
		return n + 2*(cols-1)
	}
	for total() > width {
		widest := -1
		for i, w := range widths {
			if !fixed[i] && (widest < 0 || w > widths[widest]) {
				widest = i
			}
		}
		if widest < 0 || widths[widest] <= minColumn {
			return // nothing left to narrow: let the terminal wrap
		}
		widths[widest]--
	}
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
	if n < 1 {
		return ""
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// Title styles a section heading: bold in colour, plain otherwise.
func Title(ios *cmdutil.IOStreams, s string) string {
	if ios.Color {
		return Bold(s)
	}
	return s
}

// Paint applies a style only where colour is allowed.
func Paint(ios *cmdutil.IOStreams, style func(string) string, s string) string {
	if ios.Color && style != nil {
		return style(s)
	}
	return s
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

// JSONLine writes v as one line of JSON (NDJSON).
func JSONLine(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write JSON: %w", err)
	}
	return nil
}

// ShortID is the end of an id, as tables show it (event.ShortID).
func ShortID(id string) string { return event.ShortID(id) }

// IsUUID reports whether s is a whole UUID.
func IsUUID(s string) bool { return uuidRE.MatchString(s) }

// IsShortID reports whether s may be the end of an id: 8 or more of its
// characters.
func IsShortID(s string) bool { return shortIDRE.MatchString(s) }

var (
	uuidRE    = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	shortIDRE = regexp.MustCompile(`^[0-9a-fA-F-]{8,35}$`)
)

// Green styles success marks.
func Green(s string) string { return "\x1b[32m" + s + "\x1b[0m" }
