package setup

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/tailscale/hujson"
)

// document is a parsed config file that can list its servers and edit them
// in place.
type document interface {
	servers() []Server
	// wrap puts the entry behind `exe monitor --name NAME --`; argsAdded
	// is true when the entry had no args and got one.
	wrap(ref Ref, exe string) (argsAdded bool, err error)
	// unwrap restores the entry's own command and args; removeArgs drops
	// args when it ends up empty (setup added it).
	unwrap(ref Ref, removeArgs bool) error
	// setCommand replaces the command of a wrapped entry.
	setCommand(ref Ref, command string) error
	bytes() []byte
}

// ParseError is a file setup cannot parse; it never writes such a file.
type ParseError struct {
	Path         string `json:"path"`
	Line, Column int
	Msg          string `json:"message"`
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("%s:%d:%d: %s", e.Path, e.Line, e.Column, e.Msg)
}

var errNotWrapped = errors.New("not wrapped by kilometers")

// parseDocument parses a file of loc's format; self is the kilometers
// binary's path, so entries that run it count as wrapped.
func parseDocument(loc Location, b []byte, self string) (document, error) {
	// Windows editors (Notepad) start UTF-8 files with a byte order mark
	// that neither parser takes; it is kept as it was.
	if rest, ok := bytes.CutPrefix(b, utf8BOM); ok {
		d, err := parseDocument(loc, rest, self)
		if err != nil {
			return nil, err
		}
		return bomDoc{d}, nil
	}
	if loc.Format == TOML {
		return parseTOML(loc, b, self)
	}
	return parseJSONC(loc, b, self)
}

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

type bomDoc struct{ document }

func (d bomDoc) bytes() []byte { return append(bytes.Clone(utf8BOM), d.document.bytes()...) }

// jsonDoc is a JSON (or JSON with comments) file held as hujson's exact
// syntax tree, so packing it back gives the same bytes but for the values
// setup replaced.
type jsonDoc struct {
	loc   Location
	self  string
	root  hujson.Value
	empty bool
	raw   []byte // the file, for an empty one
}

func parseJSONC(loc Location, b []byte, self string) (*jsonDoc, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		// An empty file is what some clients create before any server
		// is added: nothing to list, nothing to edit.
		return &jsonDoc{loc: loc, self: self, empty: true, raw: bytes.Clone(b)}, nil
	}
	// hujson aliases its input; parse a copy so later reads of b stay
	// independent of the tree.
	v, err := hujson.Parse(bytes.Clone(b))
	if err != nil {
		// hujson says "hujson: line L, column C: message".
		pe := &ParseError{Path: loc.Path, Line: 1, Column: 1, Msg: err.Error()}
		var line, col int
		if _, serr := fmt.Sscanf(err.Error(), "hujson: line %d, column %d:", &line, &col); serr == nil {
			pe.Line, pe.Column = line, col
			if _, msg, ok := strings.Cut(err.Error(), fmt.Sprintf("column %d: ", col)); ok {
				pe.Msg = msg
			}
		}
		return nil, pe
	}
	if _, ok := v.Value.(*hujson.Object); !ok {
		line, col := lineCol(b, v.StartOffset)
		return nil, &ParseError{Path: loc.Path, Line: line, Column: col, Msg: "the file is not a JSON object"}
	}
	return &jsonDoc{loc: loc, self: self, root: v}, nil
}

func lineCol(b []byte, off int) (int, int) {
	line := 1 + bytes.Count(b[:off], []byte("\n"))
	return line, 1 + off - (bytes.LastIndexByte(b[:off], '\n') + 1)
}

func (d *jsonDoc) bytes() []byte {
	if d.empty {
		return bytes.Clone(d.raw)
	}
	return d.root.Pack()
}

type jsonEntry struct {
	section, name string
	value         *hujson.Value
}

// entries walks the file's server map (and, in ~/.claude.json, every
// project's) in file order.
func (d *jsonDoc) entries() []jsonEntry {
	if d.empty {
		return nil
	}
	var out []jsonEntry
	add := func(section string, m *hujson.Value) {
		obj, ok := m.Value.(*hujson.Object)
		if !ok {
			return
		}
		for i := range obj.Members {
			out = append(out, jsonEntry{section: section, name: memberName(obj.Members[i]), value: &obj.Members[i].Value})
		}
	}
	root := d.root.Value.(*hujson.Object)
	if m := member(root, d.loc.Key); m != nil {
		add("", m)
	}
	if d.loc.Projects {
		if p := member(root, "projects"); p != nil {
			if projects, ok := p.Value.(*hujson.Object); ok {
				for i := range projects.Members {
					if proj, ok := projects.Members[i].Value.Value.(*hujson.Object); ok {
						if m := member(proj, d.loc.Key); m != nil {
							add(memberName(projects.Members[i]), m)
						}
					}
				}
			}
		}
	}
	return out
}

func memberName(m hujson.ObjectMember) string {
	if lit, ok := m.Name.Value.(hujson.Literal); ok {
		return lit.String()
	}
	return ""
}

// memberIndex finds a member by name; the last one wins, as in the
// clients' JSON parsers.
func memberIndex(obj *hujson.Object, name string) int {
	idx := -1
	for i := range obj.Members {
		if memberName(obj.Members[i]) == name {
			idx = i
		}
	}
	return idx
}

func member(obj *hujson.Object, name string) *hujson.Value {
	if i := memberIndex(obj, name); i >= 0 {
		return &obj.Members[i].Value
	}
	return nil
}

func stringLit(v *hujson.Value) (string, bool) {
	if v == nil {
		return "", false
	}
	lit, ok := v.Value.(hujson.Literal)
	if !ok || lit.Kind() != '"' {
		return "", false
	}
	return lit.String(), true
}

// stringArray reads an array of strings; ok is false for anything else.
func stringArray(v *hujson.Value) ([]string, bool) {
	arr, ok := v.Value.(*hujson.Array)
	if !ok {
		return nil, false
	}
	out := make([]string, 0, len(arr.Elements))
	for i := range arr.Elements {
		s, ok := stringLit(&arr.Elements[i])
		if !ok {
			return nil, false
		}
		out = append(out, s)
	}
	return out, true
}

func (d *jsonDoc) servers() []Server {
	var out []Server
	for _, e := range d.entries() {
		out = append(out, inspectJSON(e, d.self))
	}
	return out
}

func inspectJSON(e jsonEntry, self string) Server {
	s := Server{Section: e.section, Name: e.name, Transport: TransportStdio}
	obj, ok := e.value.Value.(*hujson.Object)
	if !ok {
		s.Unwrappable = "the entry is not an object"
		return s
	}
	typ, _ := stringLit(member(obj, "type"))
	url, _ := stringLit(member(obj, "url"))
	if url == "" {
		url, _ = stringLit(member(obj, "serverUrl")) // Windsurf's spelling
	}
	s.URL = url
	cmdV := member(obj, "command")
	s.Transport = transportOf(typ, url, cmdV != nil)
	var cmdOK, argsOK = true, true
	if cmdV != nil {
		s.Command, cmdOK = stringLit(cmdV)
	}
	if a := member(obj, "args"); a != nil {
		s.Args, argsOK = stringArray(a)
	}
	switch {
	case s.Transport != TransportStdio:
		s.Unwrappable = remoteReason
	case cmdV == nil:
		s.Unwrappable = "no command (a server an extension provides, or an incomplete entry)"
	case !cmdOK:
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

func (d *jsonDoc) find(ref Ref) (*hujson.Object, Server, error) {
	for _, e := range d.entries() {
		if e.section == ref.Section && e.name == ref.Name {
			s := inspectJSON(e, d.self)
			if s.Unwrappable != "" {
				return nil, s, fmt.Errorf("server %q: %s", ref.Name, s.Unwrappable)
			}
			return e.value.Value.(*hujson.Object), s, nil
		}
	}
	return nil, Server{}, fmt.Errorf("server %q not found", ref.Name)
}

func strValue(s string) hujson.Value { return hujson.Value{Value: hujson.String(s)} }

func (d *jsonDoc) wrap(ref Ref, exe string) (bool, error) {
	obj, s, err := d.find(ref)
	if err != nil {
		return false, err
	}
	if s.Wrapped {
		return false, nil
	}
	ci := memberIndex(obj, "command")
	cmd := &obj.Members[ci].Value
	// The original command moves into args as the very literal it was, so
	// unwrapping gives back the same bytes whatever escapes it used.
	added := []hujson.Value{strValue("monitor"), strValue("--name"), strValue(ref.Name), strValue("--"), {Value: cmd.Value}}
	cmd.Value = hujson.String(exe)

	ai := memberIndex(obj, "args")
	if ai < 0 {
		spaceOut(added, nil, []byte(" "))
		m := hujson.ObjectMember{
			Name:  hujson.Value{BeforeExtra: lineBreakLike(obj.Members[ci].Name.BeforeExtra), Value: hujson.String("args")},
			Value: hujson.Value{BeforeExtra: whitespaceOr(cmd.BeforeExtra, " "), Value: &hujson.Array{Elements: added}},
		}
		if ci == len(obj.Members)-1 && cmd.AfterExtra != nil {
			// The command ended the object with a trailing comma: args
			// takes over the end, comma included.
			m.Value.AfterExtra, cmd.AfterExtra = cmd.AfterExtra, nil
		}
		obj.Members = append(obj.Members[:ci+1], append([]hujson.ObjectMember{m}, obj.Members[ci+1:]...)...)
		return true, nil
	}
	arr := obj.Members[ai].Value.Value.(*hujson.Array)
	sep := []byte(" ")
	switch {
	case len(arr.Elements) >= 2:
		sep = lineBreakLike(arr.Elements[1].BeforeExtra)
	case len(arr.Elements) == 1 && bytes.Contains(arr.Elements[0].BeforeExtra, []byte("\n")):
		sep = lineBreakLike(arr.Elements[0].BeforeExtra)
	}
	var first hujson.Extra
	if len(arr.Elements) > 0 {
		// The new first element takes the old first one's leading space
		// (and comments), the old one the separator: unwrapping swaps back.
		first = arr.Elements[0].BeforeExtra
		arr.Elements[0].BeforeExtra = sep
	}
	spaceOut(added, first, sep)
	arr.Elements = append(added, arr.Elements...)
	return false, nil
}

func (d *jsonDoc) setCommand(ref Ref, command string) error {
	obj, _, err := d.find(ref)
	if err != nil {
		return err
	}
	obj.Members[memberIndex(obj, "command")].Value.Value = hujson.String(command)
	return nil
}

func spaceOut(vals []hujson.Value, first, sep []byte) {
	for i := range vals {
		if i == 0 {
			vals[i].BeforeExtra = first
		} else {
			vals[i].BeforeExtra = bytes.Clone(sep)
		}
	}
}

func (d *jsonDoc) unwrap(ref Ref, removeArgs bool) error {
	obj, s, err := d.find(ref)
	if err != nil {
		return err
	}
	dd, ok := splitWrapped(d.self, s.Command, s.Args)
	if !ok {
		return errNotWrapped
	}
	ci, ai := memberIndex(obj, "command"), memberIndex(obj, "args")
	arr := obj.Members[ai].Value.Value.(*hujson.Array)
	obj.Members[ci].Value.Value = arr.Elements[dd+1].Value
	rest := arr.Elements[dd+2:]
	switch {
	case len(rest) > 0:
		rest[0].BeforeExtra = arr.Elements[0].BeforeExtra
		arr.Elements = append([]hujson.Value(nil), rest...)
	case removeArgs:
		if ai == len(obj.Members)-1 && ai > 0 && obj.Members[ai].Value.AfterExtra != nil {
			obj.Members[ai-1].Value.AfterExtra = obj.Members[ai].Value.AfterExtra
		}
		obj.Members = append(obj.Members[:ai], obj.Members[ai+1:]...)
	default:
		arr.Elements = nil
	}
	return nil
}

// lineBreakLike keeps the layout of extra (a newline and the indentation
// after it, or the spaces) without its comments.
func lineBreakLike(extra []byte) []byte {
	if i := bytes.LastIndexByte(extra, '\n'); i >= 0 {
		indent := extra[i+1:]
		if len(bytes.TrimLeft(indent, " \t")) != 0 {
			indent = nil
		}
		eol := "\n"
		if i > 0 && extra[i-1] == '\r' {
			eol = "\r\n"
		}
		return append([]byte(eol), indent...)
	}
	return whitespaceOr(extra, " ")
}

func whitespaceOr(extra []byte, def string) []byte {
	if len(bytes.Trim(extra, " \t\r\n")) == 0 {
		return bytes.Clone(extra)
	}
	return []byte(def)
}
