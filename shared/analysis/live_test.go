package analysis_test

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kilometers-ai/kilometers/shared/analysis"
	"github.com/kilometers-ai/kilometers/shared/event"
	"github.com/kilometers-ai/kilometers/shared/testenv"
)

// -update rewrites the recordings under testdata/ from the live servers.
var update = flag.Bool("update", false, "rewrite testdata recordings from the live MCP servers")

// stdioClient speaks JSON-RPC to a real MCP server over stdio and records
// every message both ways, in the order they crossed.
type stdioClient struct {
	t      testing.TB
	in     io.WriteCloser
	lines  chan []byte
	nextID int
	log    []recorded
}

func startServer(t testing.TB, argv []string, env ...string) *stdioClient {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.Stderr = io.Discard
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &stdioClient{t: t, in: in, lines: make(chan []byte, 64)}
	go func() {
		defer close(c.lines)
		sc := bufio.NewScanner(out)
		sc.Buffer(nil, 16<<20)
		for sc.Scan() {
			c.lines <- append([]byte(nil), sc.Bytes()...)
		}
	}()
	t.Cleanup(func() {
		in.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	return c
}

func (c *stdioClient) send(msg map[string]any) {
	c.t.Helper()
	msg["jsonrpc"] = "2.0"
	b, err := json.Marshal(msg)
	if err != nil {
		c.t.Fatal(err)
	}
	c.log = append(c.log, recorded{event.ClientToServer, b})
	if _, err := c.in.Write(append(b, '\n')); err != nil {
		c.t.Fatal(err)
	}
}

func (c *stdioClient) notify(method string) {
	c.send(map[string]any{"method": method})
}

// call sends a request and returns its response, recording whatever the
// server sends meanwhile.
func (c *stdioClient) call(method string, params any) json.RawMessage {
	c.t.Helper()
	c.nextID++
	id := c.nextID
	msg := map[string]any{"id": id, "method": method}
	if params != nil {
		msg["params"] = params
	}
	c.send(msg)
	// A safety net against a hung server, not a timing assertion.
	timeout := time.After(60 * time.Second)
	for {
		select {
		case line, ok := <-c.lines:
			if !ok {
				c.t.Fatalf("server exited while waiting for %s", method)
			}
			c.log = append(c.log, recorded{event.ServerToClient, line})
			var m struct {
				ID     json.RawMessage `json:"id"`
				Method string          `json:"method"`
				Error  json.RawMessage `json:"error"`
			}
			if err := json.Unmarshal(line, &m); err != nil || m.Method != "" || string(m.ID) != fmt.Sprint(id) {
				continue
			}
			if len(m.Error) > 0 {
				c.t.Fatalf("%s failed: %s", method, line)
			}
			return line
		case <-timeout:
			c.t.Fatalf("no answer to %s", method)
		}
	}
}

func (c *stdioClient) initialize() {
	c.call("initialize", map[string]any{
		"protocolVersion": "2025-06-18",
		"capabilities":    map[string]any{},
		"clientInfo":      map[string]any{"name": "kilometers-analysis-test", "version": "1.0.0"},
	})
	c.notify("notifications/initialized")
}

func toolCall(name string, args map[string]any) map[string]any {
	return map[string]any{"name": name, "arguments": args}
}

// everythingSession drives @modelcontextprotocol/server-everything through a
// realistic session: handshake, listings, many ordinary calls, reads and
// prompts.
func everythingSession(t *testing.T) (log []recorded, toolsList json.RawMessage) {
	c := startServer(t, testenv.NPMServer(t, "mcp-server-everything"))
	c.initialize()
	toolsList = c.call("tools/list", nil)
	c.call("resources/list", nil)
	c.call("resources/templates/list", nil)
	c.call("prompts/list", nil)
	for _, m := range []string{
		"Hello from the Kilometers tests",
		"Summarize the README of this repository",
		"What changed in the last release?",
		"Run the unit tests and report failures",
		"List the open pull requests",
		"Refactor the config loader into its own package",
		"Translate 'good morning' to French",
		"Draft a commit message for the analysis package",
		"Explain what a JSON-RPC notification is",
		"Thanks, that is all for now",
	} {
		c.call("tools/call", toolCall("echo", map[string]any{"message": m}))
	}
	for i := range 10 {
		c.call("tools/call", toolCall("get-sum", map[string]any{"a": i * 7, "b": 100 - i}))
	}
	c.call("tools/call", toolCall("get-tiny-image", map[string]any{}))
	c.call("tools/call", toolCall("get-annotated-message", map[string]any{"messageType": "success", "includeImage": false}))
	c.call("tools/call", toolCall("get-structured-content", map[string]any{"location": "New York"}))
	c.call("tools/call", toolCall("get-resource-reference", map[string]any{"resourceType": "Text", "resourceId": 3}))
	c.call("tools/call", toolCall("get-resource-links", map[string]any{"count": 3}))
	for _, doc := range []string{"architecture.md", "features.md", "how-it-works.md", "startup.md", "structure.md"} {
		c.call("resources/read", map[string]any{"uri": "demo://resource/static/document/" + doc})
	}
	c.call("resources/read", map[string]any{"uri": "demo://resource/dynamic/text/1"})
	c.call("resources/read", map[string]any{"uri": "demo://resource/dynamic/blob/2"})
	c.call("prompts/get", map[string]any{"name": "simple-prompt"})
	c.call("prompts/get", map[string]any{"name": "args-prompt", "arguments": map[string]any{"city": "Lisbon", "state": "Lisboa"}})
	c.call("prompts/get", map[string]any{"name": "resource-prompt", "arguments": map[string]any{"resourceType": "Text", "resourceId": "2"}})
	return c.log, toolsList
}

// benignProject is a small, ordinary code base for the filesystem session;
// it names passwords and tokens the way real code does, without holding any.
var benignProject = map[string]string{
	"README.md": "# invoice-service\n\nRenders PDF invoices from orders.\n\n## Configuration\n\n" +
		"Copy `.env.example` to `.env` and set `DB_PASSWORD`. The service reads\n" +
		"`config.yaml` for everything else; `max_tokens` bounds the summary model.\n",
	"go.mod": "module example.com/invoice\n\ngo 1.22\n",
	"main.go": "package main\n\nimport (\n\t\"log\"\n\t\"net/http\"\n\t\"os\"\n)\n\nfunc main() {\n" +
		"\tpassword := os.Getenv(\"DB_PASSWORD\")\n\tdb := mustOpen(\"app\", password)\n" +
		"\thttp.HandleFunc(\"/invoices\", func(w http.ResponseWriter, r *http.Request) {\n" +
		"\t\ttoken := r.Header.Get(\"Authorization\")\n\t\tif !valid(token) {\n" +
		"\t\t\thttp.Error(w, \"unauthorized\", http.StatusUnauthorized)\n\t\t\treturn\n\t\t}\n" +
		"\t\trender(w, db)\n\t})\n\tlog.Fatal(http.ListenAndServe(\":8080\", nil))\n}\n",
	"config.yaml": "server:\n  port: 8080\nsummary:\n  model: small\n  max_tokens: 1024\n" +
		"database:\n  host: localhost\n  user: app\n  password_env: DB_PASSWORD\n",
	".env.example":              "DB_PASSWORD=\nLOG_LEVEL=info\n",
	"internal/render/render.go": "package render\n\n// Render writes one invoice as PDF.\nfunc Render(id string) error {\n\treturn nil\n}\n",
	"docs/setup.md":             "# Setup\n\n1. Install Go.\n2. Run `make build`.\n3. Run `./bin/invoice`.\n",
}

// filesystemSession drives @modelcontextprotocol/server-filesystem over a
// small project the way an assistant works on code.
func filesystemSession(t *testing.T) (log []recorded, toolsList json.RawMessage) {
	root := filepath.Join(t.TempDir(), "invoice-service")
	for name, body := range benignProject {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c := startServer(t, testenv.NPMServer(t, "mcp-server-filesystem", root))
	c.initialize()
	toolsList = c.call("tools/list", nil)
	p := func(name string) string { return filepath.Join(root, name) }
	c.call("tools/call", toolCall("list_allowed_directories", map[string]any{}))
	c.call("tools/call", toolCall("list_directory", map[string]any{"path": root}))
	c.call("tools/call", toolCall("directory_tree", map[string]any{"path": root}))
	for _, f := range []string{"README.md", "go.mod", "main.go", "config.yaml", "internal/render/render.go", "docs/setup.md"} {
		c.call("tools/call", toolCall("read_text_file", map[string]any{"path": p(f)}))
	}
	c.call("tools/call", toolCall("read_text_file", map[string]any{"path": p("main.go"), "head": 5}))
	c.call("tools/call", toolCall("read_multiple_files", map[string]any{"paths": []string{p("go.mod"), p("docs/setup.md")}}))
	c.call("tools/call", toolCall("get_file_info", map[string]any{"path": p("main.go")}))
	c.call("tools/call", toolCall("search_files", map[string]any{"path": root, "pattern": "**/*.go"}))
	c.call("tools/call", toolCall("list_directory_with_sizes", map[string]any{"path": root, "sortBy": "size"}))
	c.call("tools/call", toolCall("create_directory", map[string]any{"path": p("bin")}))
	c.call("tools/call", toolCall("write_file", map[string]any{"path": p("Makefile"),
		"content": "build:\n\tgo build -o bin/invoice .\n\nclean:\n\trm -rf ./bin\n\ntest:\n\tgo test ./...\n"}))
	c.call("tools/call", toolCall("edit_file", map[string]any{"path": p("docs/setup.md"),
		"edits": []map[string]any{{"oldText": "2. Run `make build`.", "newText": "2. Run `make build` (or `make test`)."}}}))
	c.call("tools/call", toolCall("read_text_file", map[string]any{"path": p("docs/setup.md")}))
	c.call("tools/call", toolCall("move_file", map[string]any{"source": p("docs/setup.md"), "destination": p("docs/SETUP.md")}))
	c.call("tools/call", toolCall("list_directory", map[string]any{"path": p("docs")}))
	return c.log, toolsList
}

// memorySession drives @modelcontextprotocol/server-memory the way an
// assistant keeps notes about a user and their project: entities,
// relations, observations (naming credentials the way people do, without
// holding any), searches and clean-up.
func memorySession(t *testing.T) (log []recorded, toolsList json.RawMessage) {
	c := startServer(t, testenv.NPMServer(t, "mcp-server-memory"), "MEMORY_FILE_PATH="+filepath.Join(t.TempDir(), "memory.jsonl"))
	c.initialize()
	toolsList = c.call("tools/list", nil)
	entity := func(name, typ string, obs ...string) map[string]any {
		return map[string]any{"name": name, "entityType": typ, "observations": obs}
	}
	relation := func(from, to, typ string) map[string]any {
		return map[string]any{"from": from, "to": to, "relationType": typ}
	}
	c.call("tools/call", toolCall("read_graph", map[string]any{}))
	c.call("tools/call", toolCall("create_entities", map[string]any{"entities": []any{
		entity("Ana", "person", "Backend developer", "Prefers Go and PostgreSQL", "Works in Lisbon, UTC+0"),
		entity("invoice-service", "project", "Renders PDF invoices", "Deployed with sam deploy to eu-west-1"),
		entity("Postgres 16", "technology", "Primary database of invoice-service"),
	}}))
	c.call("tools/call", toolCall("create_relations", map[string]any{"relations": []any{
		relation("Ana", "invoice-service", "maintains"),
		relation("invoice-service", "Postgres 16", "stores data in"),
	}}))
	for _, obs := range [][2]string{
		{"Ana", "Keeps database passwords in 1Password, never in the repository"},
		{"Ana", "Rotates the API token every 90 days"},
		{"invoice-service", "Reads DB_PASSWORD from the environment"},
		{"invoice-service", "Runs the migrations at start"},
		{"invoice-service", "Uses the secrets manager for the Stripe key"},
		{"Postgres 16", "Nightly backups with pg_dump to S3"},
		{"Ana", "Asked to delete old rows with a WHERE clause only after a backup"},
	} {
		c.call("tools/call", toolCall("add_observations", map[string]any{"observations": []any{
			map[string]any{"entityName": obs[0], "contents": []string{obs[1]}}}}))
	}
	for _, q := range []string{"Ana", "invoice", "password", "database", "deploy", "token", "backup"} {
		c.call("tools/call", toolCall("search_nodes", map[string]any{"query": q}))
	}
	c.call("tools/call", toolCall("open_nodes", map[string]any{"names": []string{"Ana", "invoice-service"}}))
	c.call("tools/call", toolCall("delete_observations", map[string]any{"deletions": []any{
		map[string]any{"entityName": "invoice-service", "observations": []string{"Runs the migrations at start"}}}}))
	c.call("tools/call", toolCall("delete_relations", map[string]any{"relations": []any{relation("invoice-service", "Postgres 16", "stores data in")}}))
	c.call("tools/call", toolCall("delete_entities", map[string]any{"entityNames": []string{"Postgres 16"}}))
	c.call("tools/call", toolCall("read_graph", map[string]any{}))
	return c.log, toolsList
}

// TestLiveServers runs the real npm servers, checks that their tool lists
// and an ordinary session raise no alarm, and that a second run of the same
// server shows the same definitions (no false rug pull). With -update it
// rewrites the recordings the unit tests use.
func TestLiveServers(t *testing.T) {
	for _, tc := range []struct {
		name      string
		run       func(*testing.T) ([]recorded, json.RawMessage)
		toolsFile string
	}{
		{"everything", everythingSession, "tools_list_everything.json"},
		{"filesystem", filesystemSession, "tools_list_filesystem.json"},
		{"memory", memorySession, "tools_list_memory.json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log, toolsList := tc.run(t)
			store := &memStore{}
			opts := analysis.DefaultOptions()
			opts.Definitions = store
			s := analysis.NewSession(opts)
			s.SetServer(tc.name, []string{tc.name})
			r := newReplayer(s)
			var alarms []string
			for _, m := range log {
				e := r.event(t, m.Direction, m.Message)
				if e.RiskLevel() != event.LevelLow {
					alarms = append(alarms, fmt.Sprintf("%s %s %s: %+v", e.Kind, e.Method, e.Tool, *e.Risk))
				}
			}
			if len(alarms) > 0 {
				t.Errorf("%d of %d messages of an ordinary session raised an alarm:\n%s", len(alarms), len(log), strings.Join(alarms, "\n"))
			}
			if len(log) < 40 {
				t.Errorf("session has %d messages, want a realistic 40+", len(log))
			}

			// The same server again: its definitions must hash the same.
			_, toolsList2 := tc.run(t)
			s2 := analysis.NewSession(opts)
			s2.SetServer(tc.name, []string{tc.name})
			e := &event.Event{Kind: event.KindResponse, Method: "tools/list", Direction: event.ServerToClient,
				Size: int64(len(toolsList2)), Payload: toolsList2}
			s2.Analyze(e, toolsList2)
			if e.Risk.Level != event.LevelLow || len(e.Risk.Reasons) > 0 {
				t.Errorf("second run of %s: risk %+v, want low with no reasons", tc.name, *e.Risk)
			}

			if *update {
				writeRecording(t, "session_"+tc.name+".jsonl", log)
				if err := os.WriteFile(filepath.Join("testdata", tc.toolsFile), append(toolsList, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}
