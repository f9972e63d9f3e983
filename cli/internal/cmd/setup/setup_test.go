package setup

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kilometers-ai/kilometers/cli/internal/cmdutil"
	"github.com/kilometers-ai/kilometers/cli/internal/setup"
)

const cursorJSON = `{
  "mcpServers": {
    "fs": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "/tmp"]},
    "web": {"url": "https://example.com/mcp"}
  }
}
`

type machine struct {
	t          *testing.T
	env        setup.Env
	out, errs  bytes.Buffer
	cursorPath string
}

func newMachine(t *testing.T) *machine {
	t.Helper()
	root := t.TempDir()
	m := &machine{t: t}
	m.env = setup.Env{
		GOOS: "linux", UserHome: filepath.Join(root, "home"), ProjectDir: filepath.Join(root, "project"),
		Home: filepath.Join(root, "km"), Executable: "/opt/km/kilometers",
		Getenv: func(string) string { return "" }, Now: time.Now,
	}
	m.cursorPath = m.write(filepath.Join(m.env.UserHome, ".cursor", "mcp.json"), cursorJSON)
	return m
}

func (m *machine) write(path, content string) string {
	m.t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		m.t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		m.t.Fatal(err)
	}
	return path
}

func (m *machine) read(path string) string {
	m.t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		m.t.Fatal(err)
	}
	return string(b)
}

// run runs the command with opts; stdin is in, a terminal when tty.
func (m *machine) run(opts Options, in string, tty bool) error {
	m.out.Reset()
	m.errs.Reset()
	opts.IO = &cmdutil.IOStreams{In: strings.NewReader(in), Out: &m.out, ErrOut: &m.errs}
	opts.InIsTerminal = tty
	opts.Env = func() (setup.Env, error) { return m.env, nil }
	return Run(context.Background(), &opts)
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if c, ok := cmdutil.IsExit(err); ok {
		return c
	}
	return -1
}

func TestList(t *testing.T) {
	m := newMachine(t)
	m.write(filepath.Join(m.env.UserHome, ".codex", "config.toml"), "[mcp_servers.t]\ncommand = \"/opt/km/kilometers\"\nargs = [\"monitor\", \"--\", \"uvx\"]\n")
	m.write(filepath.Join(m.env.ProjectDir, ".vscode", "mcp.json"), "{ nope")
	if err := m.run(Options{}, "", false); err != nil {
		t.Fatal(err)
	}
	out := m.out.String()
	for _, want := range []string{
		"Cursor (user) " + m.cursorPath, "fs", "not wrapped", "web", "http", "not wrappable", "web: remote server",
		"Codex (user)", "wrapped",
		"VS Code (project)", "cannot read it: " + filepath.Join(m.env.ProjectDir, ".vscode", "mcp.json") + ":1:3: ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("listing lacks %q:\n%s", want, out)
		}
	}
	if err := m.run(Options{JSON: true}, "", false); err != nil {
		t.Fatal(err)
	}
	var files []setup.File
	if err := json.Unmarshal(m.out.Bytes(), &files); err != nil {
		t.Fatalf("--json: %v\n%s", err, m.out.String())
	}
	if len(files) != 3 || files[0].Client != "cursor" || len(files[0].Servers) != 2 || files[0].Servers[1].Unwrappable == "" || files[1].Error == "" || !files[2].Servers[0].Wrapped {
		t.Errorf("--json: %+v", files)
	}
}

func TestListNothing(t *testing.T) {
	m := newMachine(t)
	os.Remove(m.cursorPath)
	if err := m.run(Options{}, "", false); err != nil || !strings.Contains(m.out.String(), "No MCP client config files found") {
		t.Errorf("err %v, out %q", err, m.out.String())
	}
	if err := m.run(Options{JSON: true}, "", false); err != nil || strings.TrimSpace(m.out.String()) != "[]" {
		t.Errorf("err %v, out %q", err, m.out.String())
	}
}

func TestFlagMistakes(t *testing.T) {
	m := newMachine(t)
	for _, opts := range []Options{{Server: "fs"}, {DryRun: true}, {Yes: true}} {
		var fe *cmdutil.FlagError
		if err := m.run(opts, "", false); err == nil || !asFlagError(err, &fe) {
			t.Errorf("%+v: %v, want a usage error", opts, err)
		}
	}
	var fe *cmdutil.FlagError
	if err := m.run(Options{Client: "nope", Yes: true}, "", false); !asFlagError(err, &fe) || !strings.Contains(err.Error(), "unknown client \"nope\" (known: claude-desktop, claude-code, cursor, vscode, windsurf, codex, zed)") {
		t.Errorf("unknown client: %v", err)
	}
}

func asFlagError(err error, fe **cmdutil.FlagError) bool {
	e, ok := err.(*cmdutil.FlagError)
	*fe = e
	return ok
}

func TestDryRunChangesNothing(t *testing.T) {
	m := newMachine(t)
	if err := m.run(Options{All: true, DryRun: true}, "", false); err != nil {
		t.Fatal(err)
	}
	out := m.out.String()
	for _, want := range []string{"--- " + m.cursorPath, "+++ " + m.cursorPath, `-    "fs": {"command": "npx"`, `+    "fs": {"command": "/opt/km/kilometers", "args": ["monitor", "--name", "fs", "--", "npx"`, "web: not wrapped: remote server", "Dry run: 1 file(s) would change; nothing was written."} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run lacks %q:\n%s", want, out)
		}
	}
	if m.read(m.cursorPath) != cursorJSON {
		t.Error("dry run wrote the file")
	}
}

func TestAsksOnce(t *testing.T) {
	m := newMachine(t)
	m.write(filepath.Join(m.env.UserHome, ".codeium", "windsurf", "mcp_config.json"), `{"mcpServers": {"a": {"command": "x"}}}`)

	err := m.run(Options{All: true}, "y\n", false)
	if err == nil || !strings.Contains(err.Error(), "standard input is not a terminal") || !strings.Contains(err.Error(), "--yes") {
		t.Errorf("no terminal: %v", err)
	}
	if m.read(m.cursorPath) != cursorJSON {
		t.Error("wrote without asking")
	}

	err = m.run(Options{All: true}, "n\n", true)
	if exitCode(err) != 1 || !strings.Contains(m.errs.String(), "Write these changes to 2 file(s)? [y/N] ") || !strings.Contains(m.errs.String(), "Nothing changed.") {
		t.Errorf("answered no: %v, stderr %q", err, m.errs.String())
	}
	if m.read(m.cursorPath) != cursorJSON {
		t.Error("wrote after a no")
	}

	if err := m.run(Options{All: true}, "yes\n", true); err != nil {
		t.Fatalf("answered yes: %v\n%s", err, m.errs.String())
	}
	if strings.Count(m.errs.String(), "[y/N]") != 1 {
		t.Errorf("asked more than once: %q", m.errs.String())
	}
	if !strings.Contains(m.read(m.cursorPath), `"--name", "fs"`) || !strings.Contains(m.out.String(), "Wrapped fs in "+m.cursorPath) {
		t.Errorf("not wrapped; out:\n%s", m.out.String())
	}
}

func TestRefusedFileExitsOne(t *testing.T) {
	m := newMachine(t)
	broken := m.write(filepath.Join(m.env.UserHome, ".codex", "config.toml"), "[mcp_servers.x]\ncommand = \n")
	err := m.run(Options{All: true, Yes: true}, "", false)
	if exitCode(err) != 1 {
		t.Fatalf("exit %d (%v), want 1", exitCode(err), err)
	}
	out := m.out.String()
	if !strings.Contains(out, "refused, left unchanged: "+broken+":2:") || !strings.Contains(out, "Refused "+broken) || !strings.Contains(out, "Wrapped fs in "+m.cursorPath) {
		t.Errorf("output:\n%s", out)
	}
	if m.read(broken) != "[mcp_servers.x]\ncommand = \n" {
		t.Error("the broken file was written")
	}
}

func TestJSONChangeAndUndo(t *testing.T) {
	m := newMachine(t)
	if err := m.run(Options{Client: "cursor", Yes: true, JSON: true}, "", false); err != nil {
		t.Fatal(err)
	}
	var out ChangeOutput
	if err := json.Unmarshal(m.out.Bytes(), &out); err != nil {
		t.Fatalf("%v\n%s", err, m.out.String())
	}
	if !out.OK || len(out.Files) != 1 || !out.Files[0].Applied || out.Files[0].Changed[0] != "fs" || out.Files[0].Backup == "" || !strings.Contains(out.Files[0].Diff, "+++ ") {
		t.Errorf("%+v", out)
	}
	if err := m.run(Options{Undo: true, Yes: true, JSON: true}, "", false); err != nil {
		t.Fatal(err)
	}
	out = ChangeOutput{}
	if err := json.Unmarshal(m.out.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	if !out.OK || !out.Undo || len(out.Files) != 1 || !out.Files[0].Restored || m.read(m.cursorPath) != cursorJSON {
		t.Errorf("undo: %+v", out)
	}
	if err := m.run(Options{Undo: true, Yes: true}, "", false); err != nil || !strings.Contains(m.out.String(), "Nothing to undo") {
		t.Errorf("second undo: %v %q", err, m.out.String())
	}
}

func TestUndoText(t *testing.T) {
	m := newMachine(t)
	if err := m.run(Options{All: true, Yes: true}, "", false); err != nil {
		t.Fatal(err)
	}
	if err := m.run(Options{Undo: true, All: true, Yes: true}, "", false); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(m.out.String(), "Restored "+m.cursorPath+" byte for byte.") || m.read(m.cursorPath) != cursorJSON {
		t.Errorf("undo output:\n%s", m.out.String())
	}
}

func TestProjectFlag(t *testing.T) {
	m := newMachine(t)
	other := filepath.Join(t.TempDir(), "shop")
	p := m.write(filepath.Join(other, ".mcp.json"), `{"mcpServers": {"db": {"command": "uvx", "args": ["postgres-mcp"]}}}`)
	if err := m.run(Options{Client: "claude-code", Project: other, Yes: true}, "", false); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(m.read(p), `"--name", "db"`) {
		t.Errorf("project file not wrapped: %s", m.read(p))
	}
	// Undo from anywhere: the record knows the file.
	if err := m.run(Options{Undo: true, Yes: true}, "", false); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(m.read(p), `{"mcpServers": {"db": {"command": "uvx"`) {
		t.Errorf("project file not restored: %s", m.read(p))
	}
}

func TestCommandFlags(t *testing.T) {
	f := &cmdutil.Factory{IO: &cmdutil.IOStreams{In: strings.NewReader(""), Out: &bytes.Buffer{}, ErrOut: &bytes.Buffer{}}}
	var got *Options
	cmd := NewCmd(f, func(_ context.Context, o *Options) error { got = o; return nil })
	cmd.SetArgs([]string{"--client", "zed", "--server", "x", "--project", "/p", "--dry-run", "--json"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if got.Client != "zed" || got.Server != "x" || got.Project != "/p" || !got.DryRun || !got.JSON || got.InIsTerminal {
		t.Errorf("%+v", got)
	}
	for _, args := range [][]string{{"--all", "--client", "zed"}, {"--all", "--dry-run", "--yes"}, {"extra"}} {
		cmd := NewCmd(f, func(context.Context, *Options) error { return nil })
		cmd.SetArgs(args)
		cmd.SetOut(&bytes.Buffer{})
		cmd.SetErr(&bytes.Buffer{})
		if err := cmd.Execute(); err == nil {
			t.Errorf("%q accepted", args)
		}
	}
}

func TestFileChangedBetweenDiffAndWrite(t *testing.T) {
	m := newMachine(t)
	// The clock is read right before each file is written: the moment a
	// client writes the file in this test.
	edited := strings.Replace(cursorJSON, `"web"`, `"new": {"command": "node"},
    "web"`, 1)
	once := false
	m.env.Now = func() time.Time {
		if !once {
			once = true
			m.write(m.cursorPath, edited)
		}
		return time.Now()
	}
	if err := m.run(Options{All: true, Yes: true}, "", false); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(m.out.String(), m.cursorPath+" changed while setup ran") {
		t.Errorf("output:\n%s", m.out.String())
	}
	got := m.read(m.cursorPath)
	if !strings.Contains(got, `"--name", "new", "--", "node"`) || !strings.Contains(got, `"--name", "fs"`) {
		t.Errorf("file:\n%s", got)
	}
}
