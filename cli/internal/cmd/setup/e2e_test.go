package setup

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/pelletier/go-toml/v2"

	"github.com/kilometers-ai/kilometers/shared/activity"
	"github.com/kilometers-ai/kilometers/shared/testenv"
)

// TestEndToEnd runs the built binary on a fake home holding several
// clients' files (one of them broken): setup wraps every stdio server, the
// wrapped command from a config file really runs npm's server-everything
// through the monitor, the calls are recorded, and undo puts every file
// back byte for byte.
func TestEndToEnd(t *testing.T) {
	bin := testenv.BuildCLI(t)
	server := testenv.NPMServer(t, "mcp-server-everything")
	root := t.TempDir()
	home, km, project := filepath.Join(root, "home"), filepath.Join(root, "km"), filepath.Join(root, "project")

	q := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	node, script := q(server[0]), q(server[1])
	files := map[string]string{
		filepath.Join(home, ".config", "Claude", "claude_desktop_config.json"): `{
  "mcpServers": {
    "everything": {"command": ` + node + `, "args": [` + script + `]},
    "remote": {"command": "npx", "args": ["-y", "mcp-remote", "https://example.com/mcp"]}
  },
  "globalShortcut": ""
}
`,
		filepath.Join(home, ".claude.json"): `{
  "numStartups": 3,
  "mcpServers": {
    "everything": {"type": "stdio", "command": ` + node + `, "args": [` + script + `], "env": {}},
    "notion": {"type": "http", "url": "https://mcp.notion.com/mcp"}
  },
  "projects": {
    ` + q(project) + `: {"allowedTools": [], "mcpServers": {"local": {"type": "stdio", "command": ` + node + `, "args": [` + script + `]}}}
  }
}
`,
		filepath.Join(home, ".cursor", "mcp.json"): `{
    "mcpServers": {
        "everything": {
            "command": ` + node + `,
            "args": [
                ` + script + `
            ],
            "env": {"CURSOR": "1"}
        }
    }
}
`,
		filepath.Join(home, ".config", "Code", "User", "mcp.json"): `{
	// VS Code: servers, with comments and trailing commas.
	"servers": {
		"everything": {
			"type": "stdio",
			"command": ` + node + `, // node from PATH
			"args": [` + script + `,],
		},
		"github": {"type": "http", "url": "https://api.githubcopilot.com/mcp/"},
	},
	"inputs": [],
}
`,
		filepath.Join(home, ".codex", "config.toml"): `# Codex
model = "gpt-5-codex"

[mcp_servers.everything]
command = ` + q(server[0]) + `
args = [` + q(server[1]) + `] # the npm server

[mcp_servers.figma]
url = "https://mcp.figma.com/mcp"
`,
		filepath.Join(home, ".config", "zed", "settings.json"): `// Zed settings
{
  "context_servers": {
    "everything": {"source": "custom", "command": ` + node + `, "args": [` + script + `]},
  },
}
`,
		filepath.Join(project, ".mcp.json"): `{"mcpServers": {"everything": {"command": ` + node + `, "args": [` + script + `]}}}`,
	}
	broken := filepath.Join(home, ".codeium", "windsurf", "mcp_config.json")
	files[broken] = "{\n  \"mcpServers\": {\n    \"x\": {\"command\": \"npx\",,}\n  }\n}\n"
	for p, content := range files {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	env := []string{"HOME=" + home, "KILOMETERS_HOME=" + km, "PATH=" + os.Getenv("PATH")}
	run := func(args ...string) (string, int) {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env, cmd.Dir = env, project
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		var ee *exec.ExitError
		switch {
		case err == nil:
			return out.String(), 0
		case errors.As(err, &ee):
			return out.String(), ee.ExitCode()
		}
		t.Fatalf("kilometers %v: %v", args, err)
		return "", 0
	}

	out, code := run("setup", "--all", "--yes")
	if code != 1 {
		t.Fatalf("setup --all --yes with a broken file: exit %d, want 1\n%s", code, out)
	}
	if !strings.Contains(out, "refused, left unchanged: "+broken+":3:28: ") {
		t.Errorf("the broken file is not reported with its position:\n%s", out)
	}
	for p, content := range files {
		got, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if p == broken {
			if string(got) != content {
				t.Error("the broken file was changed")
			}
			continue
		}
		if !bytes.Contains(got, []byte(`"monitor"`)) || !bytes.Contains(got, []byte(bin)) {
			t.Errorf("%s was not wrapped:\n%s", p, got)
		}
	}

	// The listing agrees: every stdio server is wrapped, the remote ones
	// are not and say why.
	out, code = run("setup", "--json")
	if code != 0 {
		t.Fatalf("setup --json: exit %d\n%s", code, out)
	}
	var listed []struct {
		Path    string `json:"path"`
		Error   string `json:"error"`
		Servers []struct {
			Name, Transport string
			Wrapped         bool
			NotWrappable    string `json:"not_wrappable"`
		} `json:"servers"`
	}
	if err := json.Unmarshal([]byte(out), &listed); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(listed) != len(files) {
		t.Errorf("listed %d files, want %d", len(listed), len(files))
	}
	for _, f := range listed {
		for _, s := range f.Servers {
			remote := s.Transport != "stdio"
			if s.Wrapped == remote || remote != (s.NotWrappable != "") {
				t.Errorf("%s %s: %+v", f.Path, s.Name, s)
			}
		}
	}

	// The wrapped commands, as the clients would start them.
	var cursor struct {
		MCPServers map[string]struct {
			Command string
			Args    []string
		} `json:"mcpServers"`
	}
	if err := json.Unmarshal(mustRead(t, filepath.Join(home, ".cursor", "mcp.json")), &cursor); err != nil {
		t.Fatal(err)
	}
	var codex struct {
		MCPServers map[string]struct {
			Command string
			Args    []string
		} `toml:"mcp_servers"`
	}
	if err := toml.Unmarshal(mustRead(t, filepath.Join(home, ".codex", "config.toml")), &codex); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		Command string
		Args    []string
	}{"cursor": cursor.MCPServers["everything"], "codex": codex.MCPServers["everything"]} {
		if c.Command != bin {
			t.Fatalf("%s: command %q, want %q", name, c.Command, bin)
		}
		cmd := exec.Command(c.Command, c.Args...)
		cmd.Env = env
		session(t, cmd, name, 3)
	}
	out, code = run("activity", "--json", "--limit", "1000")
	var page activity.Page
	if code != 0 || json.Unmarshal([]byte(out), &page) != nil {
		t.Fatalf("activity --json: exit %d\n%s", code, out)
	}
	calls, sessions := 0, map[string]bool{}
	for _, e := range page.Events {
		if e.IsToolCall() && e.Tool == "echo" {
			calls++
			sessions[e.SessionID] = true
		}
	}
	if calls != 6 || len(sessions) != 2 {
		t.Errorf("recorded %d echo calls in %d sessions, want 6 in 2", calls, len(sessions))
	}

	out, code = run("setup", "--undo", "--all", "--yes")
	if code != 0 {
		t.Fatalf("setup --undo --all --yes: exit %d\n%s", code, out)
	}
	for p, content := range files {
		if got := mustRead(t, p); string(got) != content {
			t.Errorf("%s not restored byte for byte:\n%s", p, got)
		}
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// session drives the server through cmd with the MCP SDK client: it calls
// echo n times.
func session(t *testing.T, cmd *exec.Cmd, name string, n int) {
	t.Helper()
	var stderr testenv.Buffer
	cmd.Stderr = &stderr
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	client := mcp.NewClient(&mcp.Implementation{Name: "setup-e2e", Version: "1.0.0"}, nil)
	// server-everything outlives its stdin's EOF; the SDK's shutdown then
	// stops it, and quickly will do.
	cs, err := client.Connect(ctx, &mcp.CommandTransport{Command: cmd, TerminateDuration: time.Second}, nil)
	if err != nil {
		t.Fatalf("%s: connect through the wrapped command: %v\n%s", name, err, stderr.String())
	}
	for i := range n {
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"message": name}})
		if err != nil || res.IsError {
			t.Fatalf("%s: echo %d: %v %+v\n%s", name, i, err, res, stderr.String())
		}
	}
	cs.Close()
}
