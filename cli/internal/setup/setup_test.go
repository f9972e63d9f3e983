package setup

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestLocations(t *testing.T) {
	tests := []struct {
		name string
		env  Env
		want map[string][]string // client -> paths in order
	}{
		{
			name: "linux defaults",
			env:  Env{GOOS: "linux", UserHome: "/home/ana", ProjectDir: "/home/ana/src/shop"},
			want: map[string][]string{
				"claude-desktop": {"/home/ana/.config/Claude/claude_desktop_config.json"},
				"claude-code":    {"/home/ana/.claude.json", "/home/ana/src/shop/.mcp.json"},
				"cursor":         {"/home/ana/.cursor/mcp.json", "/home/ana/src/shop/.cursor/mcp.json"},
				"vscode":         {"/home/ana/.config/Code/User/mcp.json", "/home/ana/src/shop/.vscode/mcp.json"},
				"windsurf":       {"/home/ana/.codeium/windsurf/mcp_config.json"},
				"codex":          {"/home/ana/.codex/config.toml", "/home/ana/src/shop/.codex/config.toml"},
				"zed":            {"/home/ana/.config/zed/settings.json", "/home/ana/src/shop/.zed/settings.json"},
			},
		},
		{
			name: "linux XDG_CONFIG_HOME and CODEX_HOME, no project",
			env: Env{GOOS: "linux", UserHome: "/home/ana", Getenv: mapEnv(map[string]string{
				"XDG_CONFIG_HOME": "/home/ana/.xdg", "CODEX_HOME": "/srv/codex"})},
			want: map[string][]string{
				"claude-desktop": {"/home/ana/.xdg/Claude/claude_desktop_config.json"},
				"claude-code":    {"/home/ana/.claude.json"},
				"cursor":         {"/home/ana/.cursor/mcp.json"},
				"vscode":         {"/home/ana/.xdg/Code/User/mcp.json"},
				"windsurf":       {"/home/ana/.codeium/windsurf/mcp_config.json"},
				"codex":          {"/srv/codex/config.toml"},
				"zed":            {"/home/ana/.xdg/zed/settings.json"},
			},
		},
		{
			name: "linux relative XDG_CONFIG_HOME is ignored",
			env:  Env{GOOS: "linux", UserHome: "/home/ana", Getenv: mapEnv(map[string]string{"XDG_CONFIG_HOME": "rel"})},
			want: map[string][]string{"vscode": {"/home/ana/.config/Code/User/mcp.json"}},
		},
		{
			name: "macOS",
			env:  Env{GOOS: "darwin", UserHome: "/Users/ana", Getenv: mapEnv(map[string]string{"XDG_CONFIG_HOME": "/ignored"})},
			want: map[string][]string{
				"claude-desktop": {"/Users/ana/Library/Application Support/Claude/claude_desktop_config.json"},
				"claude-code":    {"/Users/ana/.claude.json"},
				"vscode":         {"/Users/ana/Library/Application Support/Code/User/mcp.json"},
				"zed":            {"/Users/ana/.config/zed/settings.json"},
			},
		},
		{
			name: "Windows with APPDATA and LOCALAPPDATA",
			env: Env{GOOS: "windows", UserHome: `C:\Users\Ana Lu`, ProjectDir: `D:\src\shop`, Getenv: mapEnv(map[string]string{
				"APPDATA": `C:\Users\Ana Lu\AppData\Roaming`, "LOCALAPPDATA": `C:\Users\Ana Lu\AppData\Local`})},
			want: map[string][]string{
				"claude-desktop": {
					`C:\Users\Ana Lu\AppData\Roaming\Claude\claude_desktop_config.json`,
					`C:\Users\Ana Lu\AppData\Local\Packages\Claude_pzs8sxrjxfjjc\LocalCache\Roaming\Claude\claude_desktop_config.json`,
				},
				"claude-code": {`C:\Users\Ana Lu\.claude.json`, `D:\src\shop\.mcp.json`},
				"cursor":      {`C:\Users\Ana Lu\.cursor\mcp.json`, `D:\src\shop\.cursor\mcp.json`},
				"vscode":      {`C:\Users\Ana Lu\AppData\Roaming\Code\User\mcp.json`, `D:\src\shop\.vscode\mcp.json`},
				"windsurf":    {`C:\Users\Ana Lu\.codeium\windsurf\mcp_config.json`},
				"codex":       {`C:\Users\Ana Lu\.codex\config.toml`, `D:\src\shop\.codex\config.toml`},
				"zed":         {`C:\Users\Ana Lu\AppData\Roaming\Zed\settings.json`, `D:\src\shop\.zed\settings.json`},
			},
		},
		{
			name: "Windows without APPDATA falls back under the profile",
			env:  Env{GOOS: "windows", UserHome: `C:\Users\ana`},
			want: map[string][]string{
				"claude-desktop": {
					`C:\Users\ana\AppData\Roaming\Claude\claude_desktop_config.json`,
					`C:\Users\ana\AppData\Local\Packages\Claude_pzs8sxrjxfjjc\LocalCache\Roaming\Claude\claude_desktop_config.json`,
				},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := map[string][]string{}
			for _, l := range Locations(tt.env) {
				got[l.Client] = append(got[l.Client], l.Path)
			}
			for client, want := range tt.want {
				if !slices.Equal(got[client], want) {
					t.Errorf("%s: got %q, want %q", client, got[client], want)
				}
			}
		})
	}
}

func TestLocationKeysAndFormats(t *testing.T) {
	for _, l := range Locations(Env{GOOS: "linux", UserHome: "/h", ProjectDir: "/p"}) {
		want := map[string]string{"vscode": "servers", "codex": "mcp_servers", "zed": "context_servers"}[l.Client]
		if want == "" {
			want = "mcpServers"
		}
		if l.Key != want {
			t.Errorf("%s %s: key %q, want %q", l.Client, l.Path, l.Key, want)
		}
		if (l.Format == TOML) != (l.Client == "codex") {
			t.Errorf("%s: format %s", l.Path, l.Format)
		}
		if l.Projects != (l.Path == "/h/.claude.json") {
			t.Errorf("%s: projects %v", l.Path, l.Projects)
		}
	}
}

func TestSplitWrapped(t *testing.T) {
	tests := []struct {
		command string
		args    []string
		dd      int
		ok      bool
	}{
		{"/usr/bin/kilometers", []string{"monitor", "--name", "x", "--", "npx", "-y"}, 3, true},
		{`C:\Program Files\Kilometers\Kilometers.EXE`, []string{"monitor", "--", "npx"}, 1, true},
		{"/self/km", []string{"monitor", "--name", "--", "--", "npx"}, 3, true}, // a server named "--"
		{"kilometers", []string{"monitor", "--capture-mode", "metadata", "--", "uvx", "x"}, 3, true},
		{"/usr/bin/kilometers", []string{"monitor", "--name", "x", "--"}, 0, false}, // no command after --
		{"/usr/bin/kilometers", []string{"stats", "--", "npx"}, 0, false},
		{"/usr/bin/kilometers", []string{"monitor", "npx", "--", "x"}, 0, false},
		{"npx", []string{"monitor", "--", "npx"}, 0, false},
		{"/usr/bin/kilometers-other", []string{"monitor", "--", "npx"}, 0, false},
	}
	for _, tt := range tests {
		dd, ok := splitWrapped("/self/km", tt.command, tt.args)
		if ok != tt.ok || (ok && dd != tt.dd) {
			t.Errorf("splitWrapped(%q, %q) = %d, %v; want %d, %v", tt.command, tt.args, dd, ok, tt.dd, tt.ok)
		}
	}
}

func mapEnv(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// fakeMachine is a Linux-like machine inside temporary folders.
type fakeMachine struct {
	env     Env
	user    string
	project string
	clock   time.Time
}

func newMachine(t *testing.T) *fakeMachine {
	t.Helper()
	root := t.TempDir()
	m := &fakeMachine{user: filepath.Join(root, "home"), project: filepath.Join(root, "project"), clock: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
	m.env = Env{
		GOOS: "linux", UserHome: m.user, ProjectDir: m.project, Home: filepath.Join(root, "km"),
		Executable: "/opt/kilometers/bin/kilometers", Getenv: mapEnv(nil),
		Now: func() time.Time { m.clock = m.clock.Add(time.Second); return m.clock },
	}
	return m
}

func (m *fakeMachine) write(t *testing.T, path, content string, mode os.FileMode) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func (m *fakeMachine) run(t *testing.T, undo bool, f Filter) []*Change {
	t.Helper()
	changes, err := Plan(m.env, undo, f)
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	if err := Apply(m.env, changes); err != nil {
		t.Fatalf("apply: %v", err)
	}
	return changes
}

func changeFor(t *testing.T, changes []*Change, path string) *Change {
	t.Helper()
	for _, c := range changes {
		if c.File.Path == path {
			return c
		}
	}
	t.Fatalf("no change for %s", path)
	return nil
}

const cursorFile = `{
  // my servers
  "mcpServers": {
    "fs": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "/tmp"]},
    "web": {"url": "https://example.com/mcp"}
  }
}
`

const codexFile = `# codex
[mcp_servers.time]
command = "uvx"
args = ["mcp-server-time"]
`

func TestSetupAndUndoRestoreEveryFile(t *testing.T) {
	m := newMachine(t)
	cursor := m.write(t, filepath.Join(m.user, ".cursor", "mcp.json"), cursorFile, 0o600)
	codex := m.write(t, filepath.Join(m.user, ".codex", "config.toml"), codexFile, 0o644)
	project := m.write(t, filepath.Join(m.project, ".mcp.json"), `{"mcpServers": {"db": {"type": "stdio", "command": "uvx", "args": ["postgres-mcp"]}}}`, 0o664)

	changes := m.run(t, false, Filter{})
	for _, c := range changes {
		if c.Err != nil {
			t.Fatalf("%s refused: %v", c.File.Path, c.Err)
		}
	}
	if c := changeFor(t, changes, cursor); !slices.Equal(c.Changed, []Ref{{Name: "fs"}}) || !slices.ContainsFunc(c.Notes, func(n string) bool { return strings.Contains(n, "web: not wrapped: remote server") }) {
		t.Errorf("cursor: changed %v, notes %q", c.Changed, c.Notes)
	}
	if got := read(t, cursor); !strings.Contains(got, `"command": "/opt/kilometers/bin/kilometers", "args": ["monitor", "--name", "fs", "--", "npx", "-y"`) || !strings.Contains(got, "// my servers") {
		t.Errorf("cursor file not wrapped in place:\n%s", got)
	}
	// Modes are kept; backups hold the originals.
	for path, mode := range map[string]os.FileMode{cursor: 0o600, codex: 0o644, project: 0o664} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, want %v", path, fi.Mode().Perm(), mode)
		}
	}
	rec, err := LoadRecord(m.env.Home)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Files) != 3 {
		t.Fatalf("record has %d files, want 3", len(rec.Files))
	}
	if got := read(t, rec.file(cursor).Backup); got != cursorFile {
		t.Errorf("backup of %s holds %q", cursor, got)
	}
	// Setting up again changes nothing.
	for _, c := range m.run(t, false, Filter{}) {
		if c.Pending() || len(c.Changed) > 0 {
			t.Errorf("second setup changes %s: %v", c.File.Path, c.Changed)
		}
	}

	undo := m.run(t, true, Filter{})
	for _, c := range undo {
		if c.Err != nil || !c.Restored {
			t.Errorf("undo %s: err %v, restored %v", c.File.Path, c.Err, c.Restored)
		}
	}
	if read(t, cursor) != cursorFile || read(t, codex) != codexFile || !strings.HasPrefix(read(t, project), `{"mcpServers": {"db": {"type": "stdio", "command": "uvx"`) {
		t.Error("undo did not restore the files")
	}
	rec, _ = LoadRecord(m.env.Home)
	if len(rec.Files) != 0 {
		t.Errorf("record after undo: %+v", rec.Files)
	}
	if c := m.run(t, true, Filter{}); len(c) != 0 {
		t.Errorf("second undo planned %d changes", len(c))
	}
}

func TestBrokenFileIsReportedAndLeftAlone(t *testing.T) {
	m := newMachine(t)
	broken := "{\n  \"mcpServers\": {\n    \"a\": {\"command\": \"npx\" \"args\": []}\n  }\n}\n"
	bad := m.write(t, filepath.Join(m.user, ".cursor", "mcp.json"), broken, 0o644)
	badTOML := m.write(t, filepath.Join(m.user, ".codex", "config.toml"), "[mcp_servers.x]\ncommand = \"a\"\ncommand = \"b\"\n", 0o644)
	good := m.write(t, filepath.Join(m.user, ".codeium", "windsurf", "mcp_config.json"), `{"mcpServers": {"a": {"command": "npx"}}}`, 0o644)

	changes := m.run(t, false, Filter{})
	var pe *ParseError
	if c := changeFor(t, changes, bad); !errors.As(c.Err, &pe) || pe.Line != 3 || pe.Column != 28 || !strings.HasPrefix(c.Err.Error(), bad+":3:28: ") {
		t.Errorf("broken JSON: %v", c.Err)
	}
	if c := changeFor(t, changes, badTOML); !errors.As(c.Err, &pe) || pe.Line != 3 || !strings.HasPrefix(c.Err.Error(), badTOML+":3:") {
		t.Errorf("broken TOML: %v", c.Err)
	}
	if read(t, bad) != broken {
		t.Error("the broken file was written")
	}
	if !strings.Contains(read(t, good), `"args": ["monitor", "--name", "a", "--", "npx"]`) {
		t.Errorf("the good file was not wrapped: %s", read(t, good))
	}
	files, err := Scan(m.env, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if f.Path == bad && !strings.Contains(f.Error, ":3:28: ") {
			t.Errorf("scan of the broken file: %q", f.Error)
		}
	}
}

func TestUndoAfterTheClientEditedKeepsTheEdit(t *testing.T) {
	m := newMachine(t)
	p := m.write(t, filepath.Join(m.user, ".cursor", "mcp.json"), cursorFile, 0o644)
	m.run(t, false, Filter{})
	// The client rewrites the file: a new server, a changed setting.
	edited := strings.Replace(read(t, p), `"web": {"url": "https://example.com/mcp"}`,
		`"web": {"url": "https://example.com/v2/mcp"},
    "new": {"command": "node", "args": ["new.js"]}`, 1)
	m.write(t, p, edited, 0o644)

	c := changeFor(t, m.run(t, true, Filter{}), p)
	if c.Err != nil || c.Restored || !slices.Equal(c.Changed, []Ref{{Name: "fs"}}) {
		t.Fatalf("undo: err %v, restored %v, changed %v", c.Err, c.Restored, c.Changed)
	}
	want := strings.Replace(cursorFile, `"web": {"url": "https://example.com/mcp"}`,
		`"web": {"url": "https://example.com/v2/mcp"},
    "new": {"command": "node", "args": ["new.js"]}`, 1)
	if got := read(t, p); got != want {
		t.Errorf("after undo:\n%s\nwant:\n%s", got, want)
	}
}

func TestUndoOfEntriesTheUserUnwrapped(t *testing.T) {
	m := newMachine(t)
	p := m.write(t, filepath.Join(m.user, ".cursor", "mcp.json"), cursorFile, 0o644)
	m.run(t, false, Filter{})
	m.write(t, p, cursorFile, 0o644) // the user put it back by hand
	c := changeFor(t, m.run(t, true, Filter{}), p)
	if c.Err != nil || c.Pending() || len(c.Notes) != 1 || !strings.Contains(c.Notes[0], "fs: no longer wrapped") {
		t.Errorf("undo: err %v, notes %q", c.Err, c.Notes)
	}
	if rec, _ := LoadRecord(m.env.Home); len(rec.Files) != 0 {
		t.Errorf("the record still holds %+v", rec.Files)
	}
}

func TestSetupTwiceWithAnEditInBetween(t *testing.T) {
	m := newMachine(t)
	p := m.write(t, filepath.Join(m.user, ".cursor", "mcp.json"), cursorFile, 0o644)
	m.run(t, false, Filter{})
	withNew := strings.Replace(read(t, p), `"web":`, `"new": {"command": "node"},
    "web":`, 1)
	m.write(t, p, withNew, 0o644)
	c := changeFor(t, m.run(t, false, Filter{}), p)
	if !slices.Equal(c.Changed, []Ref{{Name: "new"}}) {
		t.Fatalf("second setup changed %v", c.Changed)
	}
	rec, _ := LoadRecord(m.env.Home)
	if fr := rec.file(p); fr.Exact || len(fr.Servers) != 2 || !fr.Servers[1].ArgsAdded {
		t.Errorf("record: %+v", fr)
	}
	m.run(t, true, Filter{})
	want := strings.Replace(cursorFile, `"web":`, `"new": {"command": "node"},
    "web":`, 1)
	if got := read(t, p); got != want {
		t.Errorf("after undo:\n%s\nwant:\n%s", got, want)
	}
}

func TestPartialUndo(t *testing.T) {
	m := newMachine(t)
	two := `{"mcpServers": {"a": {"command": "x"}, "b": {"command": "y", "args": ["1"]}}}`
	p := m.write(t, filepath.Join(m.user, ".cursor", "mcp.json"), two, 0o644)
	m.run(t, false, Filter{})
	c := changeFor(t, m.run(t, true, Filter{Client: "cursor", Server: "b"}), p)
	if c.Restored || !slices.Equal(c.Changed, []Ref{{Name: "b"}}) {
		t.Fatalf("partial undo: restored %v, changed %v", c.Restored, c.Changed)
	}
	if got := read(t, p); !strings.Contains(got, `"b": {"command": "y", "args": ["1"]}`) || !strings.Contains(got, `"--name", "a"`) {
		t.Errorf("after undoing b: %s", got)
	}
	c = changeFor(t, m.run(t, true, Filter{}), p)
	if !c.Restored || read(t, p) != two {
		t.Errorf("full undo: restored %v, file %s", c.Restored, read(t, p))
	}
}

func TestFilters(t *testing.T) {
	m := newMachine(t)
	cursor := m.write(t, filepath.Join(m.user, ".cursor", "mcp.json"), cursorFile, 0o644)
	codex := m.write(t, filepath.Join(m.user, ".codex", "config.toml"), codexFile, 0o644)
	claude := m.write(t, filepath.Join(m.user, ".claude.json"), `{"projects": {"/a": {"mcpServers": {"p": {"command": "x"}}}, "/b": {"mcpServers": {"p": {"command": "x"}}}}}`, 0o600)

	if _, err := Plan(m.env, false, Filter{Client: "nope"}); err == nil || !strings.Contains(err.Error(), "unknown client") {
		t.Errorf("unknown client: %v", err)
	}
	if _, err := Plan(m.env, false, Filter{Client: "cursor", Server: "nope"}); err == nil || !strings.Contains(err.Error(), `no server named "nope" in Cursor's config files`) {
		t.Errorf("unknown server: %v", err)
	}
	changes := m.run(t, false, Filter{Client: "cursor", Server: "fs"})
	if len(changes) != 1 || read(t, codex) != codexFile {
		t.Errorf("--client cursor touched other clients (%d changes)", len(changes))
	}
	if !strings.Contains(read(t, cursor), `"--name", "fs"`) {
		t.Error("cursor's fs not wrapped")
	}
	m.run(t, false, Filter{Client: "claude-code", Project: "/b"})
	got := read(t, claude)
	if !strings.Contains(got, `"/a": {"mcpServers": {"p": {"command": "x"}}}`) || !strings.Contains(got, `"/b": {"mcpServers": {"p": {"command": "/opt/kilometers/bin/kilometers"`) {
		t.Errorf("--project /b: %s", got)
	}
}

func TestChangedWhileSetupRan(t *testing.T) {
	m := newMachine(t)
	p := m.write(t, filepath.Join(m.user, ".cursor", "mcp.json"), cursorFile, 0o644)
	changes, err := Plan(m.env, false, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	// The client writes between the plan and the write.
	clientEdit := strings.Replace(cursorFile, "// my servers", "// my servers, edited by the client", 1)
	m.write(t, p, clientEdit, 0o644)
	if err := Apply(m.env, changes); err != nil {
		t.Fatal(err)
	}
	c := changeFor(t, changes, p)
	got := read(t, p)
	if c.Err != nil || !strings.Contains(got, "edited by the client") || !strings.Contains(got, `"--name", "fs"`) {
		t.Errorf("err %v; file:\n%s", c.Err, got)
	}
	if !c.Replanned {
		t.Error("not marked as planned again")
	}
	// The client broke the file meanwhile: refused, not written.
	m.write(t, p, cursorFile, 0o644)
	m.run(t, true, Filter{})
	changes, _ = Plan(m.env, false, Filter{})
	m.write(t, p, "{ broken", 0o644)
	Apply(m.env, changes)
	if c := changeFor(t, changes, p); c.Err == nil || read(t, p) != "{ broken" {
		t.Errorf("a file broken after planning: err %v, file %q", c.Err, read(t, p))
	}
}

func TestSymlinkedConfigStaysALink(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("symlinks need privileges on Windows")
	}
	m := newMachine(t)
	target := m.write(t, filepath.Join(m.user, "dotfiles", "cursor-mcp.json"), cursorFile, 0o644)
	link := filepath.Join(m.user, ".cursor", "mcp.json")
	os.MkdirAll(filepath.Dir(link), 0o755)
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	m.run(t, false, Filter{})
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the link was replaced: %v", err)
	}
	if !strings.Contains(read(t, target), `"--name", "fs"`) {
		t.Error("the link's target was not wrapped")
	}
}

func TestRunningClientsMustBeRestarted(t *testing.T) {
	m := newMachine(t)
	m.env.Processes = func() ([]string, error) { return []string{"bash", "claude", "cursor"}, nil }
	m.write(t, filepath.Join(m.user, ".cursor", "mcp.json"), cursorFile, 0o644)
	m.write(t, filepath.Join(m.user, ".claude.json"), `{"mcpServers": {"a": {"command": "x"}}}`, 0o644)
	m.write(t, filepath.Join(m.user, ".codex", "config.toml"), codexFile, 0o644)
	changes, err := Plan(m.env, false, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	notes := map[string]string{}
	for _, c := range changes {
		notes[c.File.Client] = c.RestartNote()
	}
	if !strings.Contains(notes["cursor"], "Cursor seems to be running: restart it") || strings.Contains(notes["cursor"], "rewrites") {
		t.Errorf("cursor: %q", notes["cursor"])
	}
	if !strings.Contains(notes["claude-code"], "rewrites") {
		t.Errorf("claude code: %q", notes["claude-code"])
	}
	if notes["codex"] != "" {
		t.Errorf("codex is not running: %q", notes["codex"])
	}
	m.env.Processes = func() ([]string, error) { return nil, errors.New("no /proc") }
	changes, _ = Plan(m.env, false, Filter{})
	for _, c := range changes {
		if c.RestartNote() != "" {
			t.Errorf("%s: a note without knowing: %q", c.File.Client, c.RestartNote())
		}
	}
}

func TestStatus(t *testing.T) {
	m := newMachine(t)
	m.write(t, filepath.Join(m.user, ".cursor", "mcp.json"), cursorFile, 0o644)
	m.write(t, filepath.Join(m.user, ".codex", "config.toml"), codexFile, 0o644)
	m.run(t, false, Filter{Client: "codex"})
	got := map[string][2]int{}
	for _, f := range Status(m.env) {
		w, n := f.Wrapped()
		got[f.Client] = [2]int{w, n}
	}
	if got["cursor"] != [2]int{0, 1} || got["codex"] != [2]int{1, 1} {
		t.Errorf("status: %v", got)
	}
}

func TestEmptyAndMissingFiles(t *testing.T) {
	m := newMachine(t)
	p := m.write(t, filepath.Join(m.user, ".cursor", "mcp.json"), "\n", 0o644)
	changes := m.run(t, false, Filter{})
	if c := changeFor(t, changes, p); c.Err != nil || c.Pending() {
		t.Errorf("empty file: %v", c.Err)
	}
	notObject := m.write(t, filepath.Join(m.user, ".codeium", "windsurf", "mcp_config.json"), "  [1]", 0o644)
	changes = m.run(t, false, Filter{})
	if c := changeFor(t, changes, notObject); c.Err == nil || !strings.Contains(c.Err.Error(), ":1:3: the file is not a JSON object") {
		t.Errorf("array file: %v", c.Err)
	}
	// A wrapped file that disappears: undo says so and forgets it.
	os.Remove(notObject)
	c := m.write(t, filepath.Join(m.user, ".codex", "config.toml"), codexFile, 0o644)
	m.run(t, false, Filter{Client: "codex"})
	os.Remove(c)
	undo := m.run(t, true, Filter{})
	if len(undo) != 1 || undo[0].Err != nil || !strings.Contains(strings.Join(undo[0].Notes, ""), "no longer exists") {
		t.Errorf("undo of a removed file: %+v", undo)
	}
	if rec, _ := LoadRecord(m.env.Home); len(rec.Files) != 0 {
		t.Errorf("record: %+v", rec.Files)
	}
}

func TestDamagedRecord(t *testing.T) {
	m := newMachine(t)
	m.write(t, recordPath(m.env.Home), "{nope", 0o600)
	if _, err := Plan(m.env, true, Filter{}); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Errorf("damaged record: %v", err)
	}
}

func TestWriteAtomicLeavesNoTemporaryFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f.json")
	if err := writeAtomic(p, []byte("x"), 0o640); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("folder holds %d entries", len(entries))
	}
	if err := writeAtomic(filepath.Join(dir, "missing", "f.json"), []byte("x"), 0o640); err == nil {
		t.Error("write into a missing folder succeeded")
	}
	if b, _ := os.ReadFile(p); !bytes.Equal(b, []byte("x")) {
		t.Errorf("content %q", b)
	}
}

func TestUndoWorksFromTheRecordWhenTheEnvironmentChanged(t *testing.T) {
	m := newMachine(t)
	xdg := filepath.Join(m.user, "xdg")
	m.env.Getenv = mapEnv(map[string]string{"XDG_CONFIG_HOME": xdg})
	vscode := `{
	// comments survive
	"servers": {"a": {"type": "stdio", "command": "uvx", "args": ["x"]}},
}
`
	p := m.write(t, filepath.Join(xdg, "Code", "User", "mcp.json"), vscode, 0o644)
	m.run(t, false, Filter{})
	m.env.Getenv = mapEnv(nil) // XDG_CONFIG_HOME unset since
	m.env.ProjectDir = ""
	undo := m.run(t, true, Filter{})
	if len(undo) != 1 || undo[0].Err != nil || read(t, p) != vscode {
		t.Errorf("undo: %+v\n%s", undo, read(t, p))
	}
}

func TestOddEntriesAreLeftAlone(t *testing.T) {
	m := newMachine(t)
	odd := `{"mcpServers": {
  "empty": {"command": ""},
  "number": {"command": 42},
  "badargs": {"command": "x", "args": "not a list"},
  "mixed": {"command": "x", "args": ["a", 1]},
  "list": ["not", "an", "object"],
  "nested": {"command": {"path": "x", "args": []}}
}}`
	p := m.write(t, filepath.Join(m.user, ".cursor", "mcp.json"), odd, 0o644)
	toml := "[mcp_servers.e]\ncommand = \"\"\n[mcp_servers.n]\ncommand = 1\n[mcp_servers.a]\ncommand = \"x\"\nargs = [1]\n[mcp_servers.s]\ncommand = \"x\"\nargs = \"y\"\n[mcp_servers.none]\ncwd = \"/\"\n"
	q := m.write(t, filepath.Join(m.user, ".codex", "config.toml"), toml, 0o644)
	changes := m.run(t, false, Filter{})
	for _, c := range changes {
		if c.Err != nil || len(c.Changed) != 0 || c.Pending() {
			t.Errorf("%s: err %v, changed %v", c.File.Path, c.Err, c.Changed)
		}
		if len(c.Notes) != len(c.File.Servers) {
			t.Errorf("%s: notes %q for %d servers", c.File.Path, c.Notes, len(c.File.Servers))
		}
	}
	if read(t, p) != odd || read(t, q) != toml {
		t.Error("a file with only odd entries was written")
	}
}

func TestByteOrderMarkIsKept(t *testing.T) {
	m := newMachine(t)
	bom := "\ufeff"
	j := m.write(t, filepath.Join(m.user, ".cursor", "mcp.json"), bom+cursorFile, 0o644)
	k := m.write(t, filepath.Join(m.user, ".codex", "config.toml"), bom+codexFile, 0o644)
	for _, c := range m.run(t, false, Filter{}) {
		if c.Err != nil || len(c.Changed) != 1 {
			t.Errorf("%s: %v %v", c.File.Path, c.Err, c.Changed)
		}
	}
	if !strings.HasPrefix(read(t, j), bom+"{") || !strings.HasPrefix(read(t, k), bom+"# codex") {
		t.Error("the byte order mark was lost")
	}
	m.run(t, true, Filter{})
	if read(t, j) != bom+cursorFile || read(t, k) != bom+codexFile {
		t.Error("undo did not restore the files")
	}
}

func TestWrapsOfAGoneBinaryArePointedAtThisOne(t *testing.T) {
	m := newMachine(t)
	old := m.write(t, filepath.Join(m.user, "old", "kilometers"), "#!/bin/sh\n", 0o755)
	m.env.Executable = old
	p := m.write(t, filepath.Join(m.user, ".cursor", "mcp.json"), cursorFile, 0o644)
	q := m.write(t, filepath.Join(m.user, ".codex", "config.toml"), codexFile, 0o644)
	m.run(t, false, Filter{})
	// Still there: another install, not setup's business.
	m.env.Executable = "/opt/new/kilometers"
	for _, c := range m.run(t, false, Filter{}) {
		if c.Pending() || len(c.Changed) != 0 {
			t.Errorf("%s changed while the old binary exists", c.File.Path)
		}
	}
	os.Remove(old)
	changes := m.run(t, false, Filter{})
	for _, c := range changes {
		if c.Err != nil || len(c.Changed) != 1 || !strings.Contains(strings.Join(c.Notes, "\n"), "which is gone; now /opt/new/kilometers") {
			t.Errorf("%s: err %v, changed %v, notes %q", c.File.Path, c.Err, c.Changed, c.Notes)
		}
	}
	if !strings.Contains(read(t, p), `"command": "/opt/new/kilometers", "args": ["monitor", "--name", "fs", "--", "npx"`) ||
		!strings.Contains(read(t, q), "command = \"/opt/new/kilometers\"\nargs = [\"monitor\", \"--name\", \"time\", \"--\", \"uvx\"") {
		t.Errorf("not re-pointed:\n%s\n%s", read(t, p), read(t, q))
	}
	// A hand-made wrap of a gone binary is not setup's to change.
	hand := `{"mcpServers": {"h": {"command": "/gone/kilometers", "args": ["monitor", "--", "x"]}}}`
	w := m.write(t, filepath.Join(m.user, ".codeium", "windsurf", "mcp_config.json"), hand, 0o644)
	m.run(t, false, Filter{Client: "windsurf"})
	if read(t, w) != hand {
		t.Error("a wrap setup did not make was changed")
	}
	m.run(t, true, Filter{})
	if read(t, p) != cursorFile || read(t, q) != codexFile {
		t.Errorf("undo after re-pointing:\n%s\n%s", read(t, p), read(t, q))
	}
}
