package setup

import (
	"bytes"
	"fmt"
	"sort"
	"strings"

	"github.com/pelletier/go-toml/v2/unstable"
)

// tomlDoc is a TOML file (Codex's config.toml). No TOML library edits a
// document in place, so go-toml's parser locates the spans of `command` and
// `args` and setup replaces exactly those bytes, then parses and checks the
// result again.
type tomlDoc struct {
	loc     Location
	self    string
	data    []byte
	entries []*tomlEntry
}

type tomlEntry struct {
	name          string
	command, args *tomlKV
	url, typ      string
	badCommand    bool
}

// tomlKV is one `key = value` as the parser saw it, with byte offsets.
type tomlKV struct {
	start, end int    // the whole key = value
	keyPrefix  string // the dotted key before the last part ("name." in name.command = ...)
	valueStart int
	inline     bool // inside an inline table
	str        string
	isStr      bool
	elems      []tomlElem // for an array
	isArray    bool
}

type tomlElem struct {
	start, end int
	str        string
	isStr      bool
}

func parseTOML(loc Location, b []byte, self string) (*tomlDoc, error) {
	if off, err := checkTOML(b); err != nil {
		line, col := lineCol(b, off)
		return nil, &ParseError{Path: loc.Path, Line: line, Column: col, Msg: err.Error()}
	}
	d := &tomlDoc{loc: loc, self: self, data: bytes.Clone(b)}
	if err := d.index(); err != nil {
		return nil, &ParseError{Path: loc.Path, Line: 1, Column: 1, Msg: err.Error()}
	}
	return d, nil
}

func (d *tomlDoc) bytes() []byte { return bytes.Clone(d.data) }

func (d *tomlDoc) index() error {
	d.entries = nil
	p := &unstable.Parser{}
	p.Reset(d.data)
	var table []string
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			table = keyParts(e.Key())
			if e.Kind == unstable.Table && len(table) >= 2 && table[0] == d.loc.Key {
				d.entry(table[1])
			}
		case unstable.KeyValue:
			d.visit(p, table, e, false)
		}
	}
	return p.Error()
}

func keyParts(it unstable.Iterator) []string {
	var parts []string
	for it.Next() {
		parts = append(parts, string(it.Node().Data))
	}
	return parts
}

func (d *tomlDoc) entry(name string) *tomlEntry {
	for _, e := range d.entries {
		if e.name == name {
			return e
		}
	}
	e := &tomlEntry{name: name}
	d.entries = append(d.entries, e)
	return e
}

// visit records the key-values under the server table, descending into
// inline tables.
func (d *tomlDoc) visit(p *unstable.Parser, table []string, kv *unstable.Node, inline bool) {
	it := kv.Key()
	var last *unstable.Node
	var parts []string
	for it.Next() {
		last = it.Node()
		parts = append(parts, string(last.Data))
	}
	full := append(append([]string(nil), table...), parts...)
	val := kv.Value()
	if val.Kind == unstable.InlineTable {
		children := val.Children()
		for children.Next() {
			if c := children.Node(); c.Kind == unstable.KeyValue {
				d.visit(p, full, c, true)
			}
		}
	}
	if len(full) < 2 || full[0] != d.loc.Key {
		return
	}
	e := d.entry(full[1])
	if len(full) != 3 {
		return
	}
	start := int(kv.Raw.Offset)
	info := &tomlKV{
		start: start, end: start + int(kv.Raw.Length), inline: inline,
		keyPrefix: string(d.data[start:int(last.Raw.Offset)]),
	}
	info.valueStart = valueStart(d.data, int(last.Raw.Offset+last.Raw.Length))
	switch val.Kind {
	case unstable.String:
		info.isStr, info.str = true, string(val.Data)
	case unstable.Array:
		info.isArray = true
		elems := val.Children()
		for elems.Next() {
			n := elems.Node()
			if n.Kind == unstable.Comment {
				continue
			}
			el := tomlElem{start: int(n.Raw.Offset), end: int(n.Raw.Offset + n.Raw.Length)}
			if n.Kind == unstable.String {
				el.isStr, el.str = true, string(n.Data)
			}
			info.elems = append(info.elems, el)
		}
	}
	switch full[2] {
	case "command":
		e.command = info
		e.badCommand = !info.isStr
	case "args":
		e.args = info
	case "url":
		e.url = info.str
	case "type":
		e.typ = info.str
	}
}

// valueStart skips the `=` and blanks after a key that ends at off.
func valueStart(b []byte, off int) int {
	for off < len(b) && (b[off] == ' ' || b[off] == '\t' || b[off] == '=') {
		off++
	}
	return off
}

func (d *tomlDoc) servers() []Server {
	out := make([]Server, 0, len(d.entries))
	for _, e := range d.entries {
		out = append(out, e.server(d.self))
	}
	return out
}

func (e *tomlEntry) server(self string) Server {
	s := Server{Name: e.name, URL: e.url, Transport: transportOf(e.typ, e.url, e.command != nil)}
	argsOK := true
	if e.command != nil {
		s.Command = e.command.str
	}
	if e.args != nil {
		argsOK = e.args.isArray
		for _, el := range e.args.elems {
			argsOK = argsOK && el.isStr
			s.Args = append(s.Args, el.str)
		}
	}
	switch {
	case s.Transport != TransportStdio:
		s.Unwrappable = remoteReason
	case e.command == nil:
		s.Unwrappable = "no command"
	case e.badCommand:
		s.Unwrappable = "command is not a string"
	case s.Command == "":
		s.Unwrappable = "command is empty"
	case !argsOK:
		s.Unwrappable = "args is not a list of strings"
	}
	if s.Unwrappable == "" {
		_, s.Wrapped = splitWrapped(self, s.Command, s.Args)
	}
	return s
}

func (d *tomlDoc) find(ref Ref) (*tomlEntry, Server, error) {
	for _, e := range d.entries {
		if e.name == ref.Name && ref.Section == "" {
			s := e.server(d.self)
			if s.Unwrappable != "" {
				return nil, s, fmt.Errorf("server %q: %s", ref.Name, s.Unwrappable)
			}
			return e, s, nil
		}
	}
	return nil, Server{}, fmt.Errorf("server %q not found", ref.Name)
}

type span struct {
	start, end int
	text       string
}

// apply replaces the spans (which must not overlap) and parses again.
func (d *tomlDoc) apply(spans []span) error {
	sort.Slice(spans, func(i, j int) bool { return spans[i].start > spans[j].start })
	out := bytes.Clone(d.data)
	for _, s := range spans {
		out = append(out[:s.start:s.start], append([]byte(s.text), out[s.end:]...)...)
	}
	nd, err := parseTOML(d.loc, out, d.self)
	if err != nil {
		// Only a bug here could produce invalid TOML; refuse the edit.
		return fmt.Errorf("edit would break the file: %w", err)
	}
	*d = *nd
	return nil
}

func (d *tomlDoc) wrap(ref Ref, exe string) (bool, error) {
	e, s, err := d.find(ref)
	if err != nil {
		return false, err
	}
	if s.Wrapped {
		return false, nil
	}
	cmd := e.command
	origCmd := string(d.data[cmd.valueStart:cmd.end])
	added := []string{tomlQuote("monitor"), tomlQuote("--name"), tomlQuote(ref.Name), tomlQuote("--"), origCmd}
	spans := []span{{cmd.valueStart, cmd.end, tomlQuote(exe)}}
	if e.args == nil {
		list := "[" + strings.Join(added, ", ") + "]"
		if cmd.inline {
			spans = append(spans, span{cmd.end, cmd.end, ", " + cmd.keyPrefix + "args = " + list})
		} else {
			ls := lineStart(d.data, cmd.start)
			indent := d.data[ls:cmd.start]
			if len(bytes.Trim(indent, " \t")) != 0 {
				indent = nil
			}
			line := string(indent) + cmd.keyPrefix + "args = " + list
			// The new line ends as the file's lines do.
			eol := "\n"
			if bytes.Contains(d.data, []byte("\r\n")) {
				eol = "\r\n"
			}
			if le := bytes.IndexByte(d.data[cmd.end:], '\n'); le >= 0 {
				at := cmd.end + le + 1
				spans = append(spans, span{at, at, line + eol})
			} else {
				spans = append(spans, span{len(d.data), len(d.data), eol + line})
			}
		}
		return true, d.apply(spans)
	}
	args := e.args
	if len(args.elems) == 0 {
		at := args.valueStart + 1 // just after '['
		spans = append(spans, span{at, at, strings.Join(added, ", ")})
		return false, d.apply(spans)
	}
	sep := ", "
	if len(args.elems) >= 2 {
		gap := d.data[args.elems[0].end:args.elems[1].start]
		if len(bytes.Trim(gap, ", \t\r\n")) == 0 && bytes.Count(gap, []byte(",")) == 1 {
			sep = string(gap)
		}
	}
	at := args.elems[0].start
	spans = append(spans, span{at, at, strings.Join(added, sep) + sep})
	return false, d.apply(spans)
}

func (d *tomlDoc) setCommand(ref Ref, command string) error {
	e, _, err := d.find(ref)
	if err != nil {
		return err
	}
	return d.apply([]span{{e.command.valueStart, e.command.end, tomlQuote(command)}})
}

func (d *tomlDoc) unwrap(ref Ref, removeArgs bool) error {
	e, s, err := d.find(ref)
	if err != nil {
		return err
	}
	dd, ok := splitWrapped(d.self, s.Command, s.Args)
	if !ok {
		return errNotWrapped
	}
	cmd, args := e.command, e.args
	orig := args.elems[dd+1]
	spans := []span{{cmd.valueStart, cmd.end, string(d.data[orig.start:orig.end])}}
	if dd+2 < len(args.elems) {
		spans = append(spans, span{args.elems[0].start, args.elems[dd+2].start, ""})
		return d.apply(spans)
	}
	if removeArgs {
		if sp, ok := d.argsRemoval(cmd, args); ok {
			return d.apply(append(spans, sp))
		}
	}
	spans = append(spans, span{args.elems[0].start, orig.end, ""})
	return d.apply(spans)
}

// argsRemoval is the span that takes out an args key setup added: the
// ", args = [...]" after the command in an inline table, or its own line.
func (d *tomlDoc) argsRemoval(cmd, args *tomlKV) (span, bool) {
	if cmd.inline {
		if args.inline && string(d.data[cmd.end:args.start]) == ", " {
			return span{cmd.end, args.end, ""}, true
		}
		return span{}, false
	}
	ls := lineStart(d.data, args.start)
	if len(bytes.Trim(d.data[ls:args.start], " \t")) != 0 {
		return span{}, false
	}
	rest := d.data[args.end:]
	le := bytes.IndexByte(rest, '\n')
	tail := rest
	if le >= 0 {
		tail = rest[:le]
	}
	if t := bytes.TrimLeft(tail, " \t\r"); len(t) != 0 && t[0] != '#' {
		return span{}, false
	}
	if le >= 0 {
		return span{ls, args.end + le + 1, ""}, true
	}
	if ls > 1 && d.data[ls-2] == '\r' {
		return span{ls - 2, len(d.data), ""}, true
	}
	if ls > 0 {
		return span{ls - 1, len(d.data), ""}, true
	}
	return span{ls, len(d.data), ""}, true
}

func lineStart(b []byte, off int) int {
	return bytes.LastIndexByte(b[:off], '\n') + 1
}

// tomlQuote writes s as a TOML basic string.
func tomlQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\t':
			b.WriteString(`\t`)
		case '\r':
			b.WriteString(`\r`)
		default:
			if r < 0x20 || r == 0x7f {
				fmt.Fprintf(&b, `\u%04X`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}
