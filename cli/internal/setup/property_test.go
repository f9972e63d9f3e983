package setup

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// The properties setup promises, over generated configs in every format
// and layout: setup then undo gives back the same bytes; setup twice is
// setup once; undo after an unrelated edit keeps the edit.
func TestProperties(t *testing.T) {
	const runs = 150
	for i := range runs {
		seed := uint64(i)
		r := rand.New(rand.NewPCG(seed, 0x6b6d))
		for _, format := range []Format{JSONC, TOML} {
			t.Run(fmt.Sprintf("%s/seed=%d", format, seed), func(t *testing.T) {
				m := newMachine(t)
				g := &gen{r: r}
				var path, text, edit string
				if format == TOML {
					path = filepath.Join(m.user, ".codex", "config.toml")
					text = g.toml()
					edit = text + "\n[edited]\nby_the_client = true\n"
					if !strings.HasSuffix(text, "\n") {
						edit = text + "\n" + "\n[edited]\nby_the_client = true\n"
					}
				} else {
					var key string
					path, key = g.jsonTarget(m)
					text = g.json(key, strings.HasSuffix(path, ".claude.json"))
					at := strings.IndexByte(text, '{') + 1
					edit = text[:at] + `"editedByTheClient": 1,` + text[at:]
				}
				m.write(t, path, text, 0o644)

				// The edit in place, checked on its own first: wrap and
				// unwrap of the parsed document give back the bytes.
				loc := locFor(m.env, path)
				doc, err := parseDocument(loc, []byte(text), m.env.Executable)
				if err != nil {
					t.Fatalf("generated file does not parse: %v\n%s", err, text)
				}
				before := doc.servers()
				added := map[Ref]bool{}
				for _, s := range before {
					if s.Unwrappable == "" && !s.Wrapped {
						a, err := doc.wrap(s.Ref(), m.env.Executable)
						if err != nil {
							t.Fatalf("wrap %s: %v\n%s", s.Name, err, text)
						}
						added[s.Ref()] = a
					}
				}
				for r, a := range added {
					if err := doc.unwrap(r, a); err != nil {
						t.Fatalf("unwrap %s: %v", r.Name, err)
					}
				}
				if got := doc.bytes(); !bytes.Equal(got, []byte(text)) {
					t.Fatalf("unwrapping the wraps did not give the bytes back:\n%s", unifiedDiff(path, []byte(text), got))
				}

				first := m.run(t, false, Filter{})
				wrapped := read(t, path)
				checkWrapped(t, m, loc, before, wrapped, text)
				if strings.Contains(text, "\r\n") && strings.Count(wrapped, "\n") != strings.Count(wrapped, "\r\n") {
					t.Errorf("a CRLF file got a bare LF:\n%q", wrapped)
				}
				if !first[0].Pending() && wrapped != text {
					t.Fatal("a change without a pending plan")
				}

				second := m.run(t, false, Filter{})
				if second[0].Pending() || read(t, path) != wrapped {
					t.Fatalf("setup twice differs from setup once:\n%s", unifiedDiff(path, []byte(wrapped), []byte(read(t, path))))
				}

				undo := m.run(t, true, Filter{})
				if got := read(t, path); got != text {
					t.Fatalf("setup then undo changed the file:\n%s", unifiedDiff(path, []byte(text), []byte(got)))
				}
				if len(undo) > 0 && undo[0].Pending() && !undo[0].Restored {
					t.Error("an untouched file was not restored from its backup")
				}

				// Now with the client editing the wrapped file: the edit
				// stays, and so does everything else.
				m.run(t, false, Filter{})
				var editedWrapped string
				if format == TOML {
					editedWrapped = read(t, path) + strings.TrimPrefix(edit, text)
				} else {
					w := read(t, path)
					at := strings.IndexByte(w, '{') + 1
					editedWrapped = w[:at] + `"editedByTheClient": 1,` + w[at:]
				}
				m.write(t, path, editedWrapped, 0o644)
				m.run(t, true, Filter{})
				if got := read(t, path); got != edit {
					t.Fatalf("undo after an edit:\n%s", unifiedDiff(path, []byte(edit), []byte(got)))
				}
			})
		}
	}
}

func locFor(env Env, path string) Location {
	for _, l := range Locations(env) {
		if l.Path == path {
			return l
		}
	}
	panic("no location " + path)
}

// checkWrapped checks that every wrappable server now runs the monitor in
// front of its own command, and that nothing else changed.
func checkWrapped(t *testing.T, m *fakeMachine, loc Location, before []Server, wrapped, orig string) {
	t.Helper()
	doc, err := parseDocument(loc, []byte(wrapped), m.env.Executable)
	if err != nil {
		t.Fatalf("wrapped file does not parse: %v\n%s", err, wrapped)
	}
	after := doc.servers()
	if len(after) != len(before) {
		t.Fatalf("%d servers before, %d after", len(before), len(after))
	}
	for i, b := range before {
		a := after[i]
		if b.Unwrappable != "" || b.Wrapped {
			if a.Command != b.Command || !equalStrings(a.Args, b.Args) {
				t.Errorf("%s changed", b.Name)
			}
			continue
		}
		if a.Command != m.env.Executable || !equalStrings(a.Args, wrappedArgs(b.Name, b.Command, b.Args)) {
			t.Errorf("%s: %q %q", b.Name, a.Command, a.Args)
		}
	}
	if t.Failed() {
		t.Logf("original:\n%s\nwrapped:\n%s", orig, wrapped)
	}
}

// gen makes config files in the layouts people and clients write.
type gen struct {
	r                *rand.Rand
	nl, indent       string
	comments, commas bool
}

func (g *gen) pick(xs ...string) string { return xs[g.r.IntN(len(xs))] }
func (g *gen) chance(p float64) bool    { return g.r.Float64() < p }

func (g *gen) jsonTarget(m *fakeMachine) (path, key string) {
	switch g.r.IntN(4) {
	case 0:
		return filepath.Join(m.user, ".cursor", "mcp.json"), "mcpServers"
	case 1:
		return filepath.Join(m.user, ".config", "Code", "User", "mcp.json"), "servers"
	case 2:
		return filepath.Join(m.user, ".config", "zed", "settings.json"), "context_servers"
	default:
		return filepath.Join(m.user, ".claude.json"), "mcpServers"
	}
}

var words = []string{"fs", "github", "my server", "zoë", `quote"d`, "back\\slash", "时间", "a-b_c", "--", "monitor"}

func (g *gen) word() string { return words[g.r.IntN(len(words))] }

func (g *gen) command() string {
	return g.pick("npx", "uvx", "node", "/opt/My Tools/bin/server", `C:\Program Files\nodejs\node.exe`, "docker", "python3", "/usr/local/bin/kilometers-like")
}

func (g *gen) arg() string {
	return g.pick("-y", "@modelcontextprotocol/server-everything", "--port=8080", "/tmp/a b", `C:\data\app.db`, "${workspaceFolder}", "ünï", "--", "monitor")
}

// jsonString quotes s, sometimes with escapes a client's writer might use.
func (g *gen) jsonString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, c := range s {
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteRune(c)
		case c == '/' && g.chance(0.3):
			b.WriteString(`\/`)
		case c >= utf8.RuneSelf && g.chance(0.5) && c < 0x10000:
			fmt.Fprintf(&b, `\u%04x`, c)
		default:
			b.WriteRune(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func (g *gen) json(key string, projects bool) string {
	g.nl = g.pick("\n", "\r\n")
	g.indent = g.pick("  ", "    ", "\t")
	g.comments, g.commas = g.chance(0.5), g.chance(0.3)
	compact := g.chance(0.15)
	var members []string
	if g.chance(0.5) {
		members = append(members, g.jsonString("theme")+": "+g.jsonString("One Dark"))
	}
	members = append(members, g.jsonString(key)+": "+g.servers(2, compact))
	if projects {
		proj := g.jsonString("/home/ana/src/"+g.word()) + ": {" + g.jsonString(key) + ": " + g.servers(3, true) + "}"
		members = append(members, g.jsonString("projects")+": {"+proj+"}")
	}
	if g.chance(0.5) {
		members = append(members, g.jsonString("numStartups")+": 7")
	}
	out := ""
	if g.comments {
		out = "// generated config" + g.nl
	}
	out += g.object(members, 1, compact)
	if g.chance(0.7) {
		out += g.nl
	}
	return out
}

func (g *gen) object(members []string, depth int, compact bool) string {
	if compact {
		s := "{" + strings.Join(members, ", ")
		if g.commas && len(members) > 0 {
			s += ","
		}
		return s + "}"
	}
	in := strings.Repeat(g.indent, depth)
	var b strings.Builder
	b.WriteString("{")
	for i, m := range members {
		b.WriteString(g.nl + in)
		if g.comments && g.chance(0.2) {
			b.WriteString("/* note */ ")
		}
		b.WriteString(m)
		if i < len(members)-1 || g.commas {
			b.WriteString(",")
		}
		if g.comments && g.chance(0.2) {
			b.WriteString(" // trailing")
		}
	}
	b.WriteString(g.nl + strings.Repeat(g.indent, depth-1) + "}")
	return b.String()
}

func (g *gen) servers(depth int, compact bool) string {
	n := g.r.IntN(4)
	seen := map[string]bool{}
	var members []string
	for range n {
		name := g.word()
		if seen[name] {
			continue
		}
		seen[name] = true
		members = append(members, g.jsonString(name)+": "+g.entry(depth+1, compact || g.chance(0.3)))
	}
	return g.object(members, depth, compact)
}

func (g *gen) entry(depth int, compact bool) string {
	var fields []string
	if g.chance(0.15) {
		fields = append(fields, `"url": "https://example.com/mcp"`)
		if g.chance(0.5) {
			fields = append(fields, `"type": "http"`)
		}
		return g.object(fields, depth, compact)
	}
	if g.chance(0.4) {
		fields = append(fields, `"type": "stdio"`)
	}
	fields = append(fields, `"command": `+g.jsonString(g.command()))
	if !g.chance(0.2) {
		fields = append(fields, `"args": `+g.jsonArgs(depth+1, compact))
	}
	if g.chance(0.3) {
		fields = append(fields, `"env": {"KEY": "value"}`)
	}
	if g.chance(0.2) {
		fields = append(fields, `"unknownField": [1, true, null]`)
	}
	g.r.Shuffle(len(fields), func(i, j int) { fields[i], fields[j] = fields[j], fields[i] })
	return g.object(fields, depth, compact)
}

func (g *gen) jsonArgs(depth int, compact bool) string {
	n := g.r.IntN(4)
	var elems []string
	for range n {
		elems = append(elems, g.jsonString(g.arg()))
	}
	if compact || g.chance(0.5) {
		sep := g.pick(", ", ",")
		s := "[" + strings.Join(elems, sep)
		if g.commas && n > 0 {
			s += ","
		}
		return s + "]"
	}
	in := strings.Repeat(g.indent, depth)
	if n == 0 {
		return "[" + g.nl + strings.Repeat(g.indent, depth-1) + "]"
	}
	s := "["
	for i, e := range elems {
		s += g.nl + in + e
		if i < n-1 || g.commas {
			s += ","
		}
		if g.comments && g.chance(0.3) {
			s += " // why"
		}
	}
	return s + g.nl + strings.Repeat(g.indent, depth-1) + "]"
}

func (g *gen) tomlString(s string) string {
	if !strings.ContainsAny(s, "'\n") && g.chance(0.4) {
		return "'" + s + "'"
	}
	return tomlQuote(s)
}

func (g *gen) tomlKey(s string) string {
	ok := s != ""
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			ok = false
		}
	}
	if ok && g.chance(0.8) {
		return s
	}
	return tomlQuote(s)
}

func (g *gen) toml() string {
	nl := g.pick("\n", "\r\n")
	var b strings.Builder
	if g.chance(0.5) {
		b.WriteString(`model = "gpt-5-codex"` + nl + nl)
	}
	seen := map[string]bool{}
	var inline []string
	for range g.r.IntN(4) {
		name := g.word()
		if seen[name] {
			continue
		}
		seen[name] = true
		if g.chance(0.25) {
			inline = append(inline, g.tomlKey(name)+" = { command = "+g.tomlString(g.command())+g.tomlArgs(true, nl, ", args = ")+" }")
			continue
		}
		if g.chance(0.5) {
			b.WriteString("# " + "server" + nl)
		}
		b.WriteString("[mcp_servers." + g.tomlKey(name) + "]" + nl)
		if g.chance(0.15) {
			b.WriteString(`url = "https://example.com/mcp"` + nl + nl)
			continue
		}
		lines := []string{"command = " + g.tomlString(g.command())}
		if a := g.tomlArgs(false, nl, "args = "); a != "" {
			lines = append(lines, a)
		}
		if g.chance(0.3) {
			lines = append(lines, `env = { "KEY" = "value" }`)
		}
		if g.chance(0.3) {
			lines = append(lines, "startup_timeout_sec = 20")
		}
		g.r.Shuffle(len(lines), func(i, j int) { lines[i], lines[j] = lines[j], lines[i] })
		for _, l := range lines {
			b.WriteString(l)
			if g.chance(0.2) {
				b.WriteString(" # note")
			}
			b.WriteString(nl)
		}
		b.WriteString(nl)
	}
	if len(inline) > 0 {
		b.WriteString("[mcp_servers]" + nl + strings.Join(inline, nl) + nl)
	}
	out := b.String()
	if g.chance(0.2) {
		out = strings.TrimRight(out, "\r\n")
	}
	return out
}

func (g *gen) tomlArgs(inline bool, nl, prefix string) string {
	if g.chance(0.2) {
		return ""
	}
	n := g.r.IntN(4)
	var elems []string
	for range n {
		elems = append(elems, g.tomlString(g.arg()))
	}
	if inline || g.chance(0.5) {
		return prefix + "[" + strings.Join(elems, g.pick(", ", ",")) + "]"
	}
	s := prefix + "["
	for _, e := range elems {
		s += nl + "  " + e + ","
		if g.chance(0.3) {
			s += " # why"
		}
	}
	return s + nl + "]"
}

// The generator itself must make files the parsers accept, or the
// properties above would be checked on nothing.
func TestGeneratorMakesServers(t *testing.T) {
	servers := 0
	for i := range 50 {
		g := &gen{r: rand.New(rand.NewPCG(uint64(i), 1))}
		m := &fakeMachine{user: "/h"}
		path, key := g.jsonTarget(m)
		doc, err := parseDocument(Location{Path: path, Format: JSONC, Key: key, Projects: strings.HasSuffix(path, ".claude.json")}, []byte(g.json(key, true)), "")
		if err != nil {
			t.Fatal(err)
		}
		td, err := parseDocument(Location{Format: TOML, Key: "mcp_servers"}, []byte(g.toml()), "")
		if err != nil {
			t.Fatal(err)
		}
		servers += len(doc.servers()) + len(td.servers())
	}
	if servers < 100 {
		t.Errorf("only %d servers in 100 files", servers)
	}
}
