package monitor_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/kilometers-ai/kilometers/cli/internal/store"
	"github.com/kilometers-ai/kilometers/shared/activity"
	"github.com/kilometers-ai/kilometers/shared/event"
	"github.com/kilometers-ai/kilometers/shared/stats"
	"github.com/kilometers-ai/kilometers/shared/testenv"
)

// home is one Kilometers home used by the built binary.
type home struct {
	bin, dir string
	env      []string
}

func newHome(t *testing.T, bin string) *home {
	t.Helper()
	dir := t.TempDir()
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KILOMETERS_") { // the machine's own settings stay out
			env = append(env, kv)
		}
	}
	return &home{bin: bin, dir: dir, env: append(env, "KILOMETERS_HOME="+dir)}
}

// monitor is `kilometers monitor -- <server>` with the server's environment
// extended by kv.
func (h *home) monitor(server []string, kv ...string) *exec.Cmd {
	cmd := exec.Command(h.bin, append([]string{"monitor", "--"}, server...)...)
	cmd.Env = append(append([]string{}, h.env...), kv...)
	return cmd
}

// child is the test binary as a server in the given mode.
func (h *home) child(mode string, kv ...string) *exec.Cmd {
	return h.monitor([]string{os.Args[0]}, append([]string{childEnv + "=" + mode}, kv...)...)
}

// run runs the CLI and returns its stdout, stderr and exit code.
func (h *home) run(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(h.bin, args...)
	cmd.Env = h.env
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	code := exitCode(t, cmd.Run())
	return out.String(), errOut.String(), code
}

// cmdErr is the error Wait gave for an exited command, as Run returns it.
func cmdErr(cmd *exec.Cmd) error {
	if cmd.ProcessState.Success() {
		return nil
	}
	return &exec.ExitError{ProcessState: cmd.ProcessState}
}

func exitCode(t *testing.T, err error) int {
	t.Helper()
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("run: %v", err)
	}
	return ee.ExitCode()
}

func (h *home) stats(t *testing.T) stats.Stats {
	t.Helper()
	out, errOut, code := h.run(t, "stats", "--json", "--since", "1h")
	var s stats.Stats
	if code != 0 || json.Unmarshal([]byte(out), &s) != nil {
		t.Fatalf("kilometers stats --json: exit %d\n%s\n%s", code, out, errOut)
	}
	return s
}

func (h *home) activity(t *testing.T) []event.Event {
	t.Helper()
	out, errOut, code := h.run(t, "activity", "--json", "--limit", strconv.Itoa(activity.MaxLimit))
	var p activity.Page
	if code != 0 || json.Unmarshal([]byte(out), &p) != nil {
		t.Fatalf("kilometers activity --json: exit %d\n%s\n%s", code, out, errOut)
	}
	if p.NextCursor != "" {
		t.Fatalf("more than %d events: the test expects one page", activity.MaxLimit)
	}
	return p.Events
}

// session runs an MCP SDK client through the monitor in front of server
// and returns the monitor's stderr once it has exited, which must be with
// one of exits (0 when none are given).
func (h *home) session(t *testing.T, cmd *exec.Cmd, fn func(cs *mcp.ClientSession), exits ...int) string {
	t.Helper()
	return h.sessionWith(t, cmd, nil, fn, exits...)
}

// sessionWith is session with a client made with opts.
func (h *home) sessionWith(t *testing.T, cmd *exec.Cmd, opts *mcp.ClientOptions, fn func(cs *mcp.ClientSession), exits ...int) string {
	t.Helper()
	var stderr testenv.Buffer
	cmd.Stderr = &stderr
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	client := mcp.NewClient(&mcp.Implementation{Name: "monitor-test-client", Version: "1.0.0"}, opts)
	tr := &mcp.CommandTransport{Command: cmd}
	if slices.Contains(exits, 128+int(syscall.SIGTERM)) {
		tr.TerminateDuration = time.Second // no need to wait long for a server that will be stopped anyway
	}
	cs, err := client.Connect(ctx, tr, nil)
	if err != nil {
		t.Fatalf("connect through the monitor: %v\nmonitor stderr:\n%s", err, stderr.String())
	}
	fn(cs)
	closeErr := cs.Close()
	if len(exits) == 0 {
		exits = []int{0}
	}
	if code := exitCode(t, cmdErr(cmd)); !slices.Contains(exits, code) {
		t.Errorf("monitor exited %d (close: %v), want one of %v\nmonitor stderr:\n%s", code, closeErr, exits, stderr.String())
	}
	return stderr.String()
}

// callResults counts what tool calls came back as.
type callResults struct{ ok, toolErrors, rpcErrors int }

func call(t *testing.T, cs *mcp.ClientSession, tool string, args map[string]any, n int) callResults {
	t.Helper()
	var r callResults
	for range n {
		res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: tool, Arguments: args})
		switch {
		case err != nil:
			r.rpcErrors++
		case res.IsError:
			r.toolErrors++
		default:
			r.ok++
		}
	}
	return r
}

func toolStats(s stats.Stats, name string) stats.Tool {
	for _, t := range s.Tools {
		if t.Tool == name {
			return t
		}
	}
	return stats.Tool{Tool: name}
}

// checkEvents checks what every session's events must satisfy: unique ids,
// and every tools/call reply correlated with its request.
func checkEvents(t *testing.T, evs []event.Event, totals stats.Totals) {
	t.Helper()
	ids := map[string]bool{}
	for _, e := range evs {
		if ids[e.ID] {
			t.Errorf("event %s recorded twice", e.ID)
		}
		ids[e.ID] = true
		if e.IsReply() && e.RPCID != "" && (e.Method == "" || e.LatencyMS == nil) {
			t.Errorf("reply %s (id %s) not correlated: method %q", e.ID, e.RPCID, e.Method)
		}
	}
	if int64(len(evs)) != totals.Events {
		t.Errorf("activity lists %d events, stats count %d", len(evs), totals.Events)
	}
	if totals.DroppedEvents != 0 {
		t.Errorf("%d events dropped", totals.DroppedEvents)
	}
}

// TestMonitorBinary runs the built kilometers binary. The npm subtest needs
// node and infra/testservers (make deps).
func TestMonitorBinary(t *testing.T) {
	bin := testenv.BuildCLI(t)

	t.Run("SDK client and server, counted exactly", func(t *testing.T) {
		t.Parallel()
		h := newHome(t, bin)
		var echo, fail, crash callResults
		h.session(t, h.child("mcp"), func(cs *mcp.ClientSession) {
			if _, err := cs.ListTools(context.Background(), nil); err != nil {
				t.Fatalf("tools/list: %v", err)
			}
			echo = call(t, cs, "echo", map[string]any{"text": "hi"}, 7)
			fail = call(t, cs, "fail", map[string]any{"text": "x"}, 3)
			crash = call(t, cs, "crash", map[string]any{}, 2)
		})
		if echo.ok != 7 || fail.toolErrors != 3 || crash.rpcErrors != 2 {
			t.Fatalf("the server did not answer as built: echo %+v fail %+v crash %+v", echo, fail, crash)
		}
		s := h.stats(t)
		for _, want := range []stats.Tool{{Tool: "echo", Calls: 7}, {Tool: "fail", Calls: 3, Errors: 3}, {Tool: "crash", Calls: 2, Errors: 2}} {
			if got := toolStats(s, want.Tool); got.Calls != want.Calls || got.Errors != want.Errors {
				t.Errorf("stats for %s: %d calls, %d errors; want %d, %d", want.Tool, got.Calls, got.Errors, want.Calls, want.Errors)
			}
		}
		if s.Totals.Sessions != 1 || s.Totals.Errors != 5 {
			t.Errorf("totals %+v, want 1 session and 5 errors", s.Totals)
		}
		evs := h.activity(t)
		checkEvents(t, evs, s.Totals)
		messages := map[string]int{}
		for _, e := range evs {
			if e.Failed() {
				messages[e.Tool+": "+e.ErrorMessage]++
			}
		}
		if want := map[string]int{"fail: this tool always fails": 3, "crash: crashed": 2}; !maps.Equal(messages, want) {
			t.Errorf("failed replies say %v, want %v", messages, want)
		}
		for _, e := range evs {
			if e.Server != serverName {
				t.Errorf("event %s labelled %q, want the server's own name", e.ID, e.Server)
				break
			}
		}
	})

	t.Run("tool definitions remembered across sessions", func(t *testing.T) {
		t.Parallel()
		h := newHome(t, bin)
		list := func(cs *mcp.ClientSession) {
			if _, err := cs.ListTools(context.Background(), nil); err != nil {
				t.Fatalf("tools/list: %v", err)
			}
		}
		h.session(t, h.child("mcp"), list)
		h.session(t, h.child("mcp", echoDescEnv+"=echoes, and now something else"), list)
		var reasons [][]string
		for _, e := range h.activity(t) { // newest first
			if e.Kind == event.KindResponse && e.Method == "tools/list" {
				reasons = append(reasons, e.Risk.Reasons)
			}
		}
		if len(reasons) != 2 || !slices.Contains(reasons[0], "definition_changed:echo") || len(reasons[1]) != 0 {
			t.Errorf("tools/list reasons, newest first: %q; want definition_changed:echo in the second session only", reasons)
		}
	})

	t.Run("npm server-everything, counted exactly", func(t *testing.T) {
		t.Parallel()
		h := newHome(t, bin)
		server := testenv.NPMServer(t, "mcp-server-everything")
		var good, bad callResults
		h.session(t, h.monitor(server), func(cs *mcp.ClientSession) {
			if _, err := cs.ListTools(context.Background(), nil); err != nil {
				t.Fatalf("tools/list: %v", err)
			}
			good = call(t, cs, "echo", map[string]any{"message": "hello"}, 5)
			bad = call(t, cs, "echo", map[string]any{"message": 42}, 2) // wrong type: refused
			// server-everything outlives its stdin's EOF when the SDK client
			// answered its requests; the client's shutdown ladder then
			// sends SIGTERM, which the monitor passes on and reports as a
			// shell does. (It does the same without the monitor.)
		}, 0, 128+int(syscall.SIGTERM))
		if good.ok != 5 || bad.ok != 0 {
			t.Fatalf("server-everything did not answer as expected: %+v %+v", good, bad)
		}
		s := h.stats(t)
		if got := toolStats(s, "echo"); got.Calls != 7 || got.Errors != 2 {
			t.Errorf("stats for echo: %d calls, %d errors; want 7, 2", got.Calls, got.Errors)
		}
		// The SDK client probes server/discover first; this server
		// predates it and answers "method not found", and the client falls
		// back to initialize. That is negotiation: the only errors are the
		// two refused echoes.
		if s.Totals.Errors != 2 {
			t.Errorf("%d errors in total, want the 2 refused echoes", s.Totals.Errors)
		}
		evs := h.activity(t)
		checkEvents(t, evs, s.Totals)
		var probes, initialized int
		for _, e := range evs {
			switch {
			case e.Kind == event.KindError && e.Method == "server/discover" && e.ErrorCode != nil && *e.ErrorCode == event.CodeMethodNotFound:
				probes++
			case e.Kind == event.KindResponse && e.Method == "initialize":
				initialized++
			case e.Failed() && (e.Tool != "echo" || e.ErrorMessage == ""):
				t.Errorf("failed reply %s (%s) without its message: %q", e.ID, e.Tool, e.ErrorMessage)
			}
		}
		if probes != 1 || initialized != 1 {
			t.Errorf("%d discover probes refused and %d initialize answers, want the SDK's fallback: 1 and 1", probes, initialized)
		}
	})

	t.Run("--name wins over the server's own name", func(t *testing.T) {
		t.Parallel()
		h := newHome(t, bin)
		cmd := exec.Command(h.bin, "monitor", "--name", "memory", "--", os.Args[0])
		cmd.Env = append(append([]string{}, h.env...), childEnv+"=mcp")
		h.session(t, cmd, func(cs *mcp.ClientSession) {
			call(t, cs, "echo", map[string]any{"text": "hi"}, 3)
		})
		out, errOut, code := h.run(t, "stats", "--json", "--since", "1h", "--server", "memory")
		var s stats.Stats
		if code != 0 || json.Unmarshal([]byte(out), &s) != nil {
			t.Fatalf("stats --server memory: exit %d\n%s\n%s", code, out, errOut)
		}
		if got := toolStats(s, "echo"); got.Calls != 3 || s.Totals.Sessions != 1 {
			t.Errorf("stats --server memory: echo %+v, %d sessions; want 3 calls in 1 session", got, s.Totals.Sessions)
		}
		for _, e := range h.activity(t) {
			if e.Server != "memory" {
				t.Errorf("event %s labelled %q, want memory", e.ID, e.Server)
				break
			}
		}
	})

	t.Run("a bad setting records with the default and says so", func(t *testing.T) {
		t.Parallel()
		h := newHome(t, bin)
		conf := "{\n  \"capture_mode\": \"ful\",\n  \"captur_mode\": \"full\"\n}\n"
		if err := os.WriteFile(filepath.Join(h.dir, "config.json"), []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		stderr := h.session(t, h.child("mcp"), func(cs *mcp.ClientSession) {
			call(t, cs, "echo", map[string]any{"text": "hi"}, 2)
		})
		file := filepath.Join(h.dir, "config.json")
		want := []string{
			file + `:2:19: capture_mode: must be full, redacted or metadata, got "ful"; using redacted (the default)`,
			file + `:3:3: unknown setting "captur_mode"; did you mean "capture_mode"?`,
		}
		for _, w := range want {
			if !strings.Contains(stderr, "kilometers monitor: warning: "+w+"\n") {
				t.Errorf("stderr lacks %q:\n%s", w, stderr)
			}
		}
		// Reading commands do not use capture_mode: they work.
		s := h.stats(t)
		if got := toolStats(s, "echo"); got.Calls != 2 {
			t.Errorf("echo recorded %d times, want 2", got.Calls)
		}
		st, err := store.Open(context.Background(), h.dir, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		sessions, err := st.Sessions(context.Background())
		if err != nil || len(sessions) != 1 {
			t.Fatalf("sessions %+v, %v", sessions, err)
		}
		if !slices.Equal(sessions[0].Warnings, want) {
			t.Errorf("session warnings %q, want %q", sessions[0].Warnings, want)
		}
	})

	t.Run("npm server-filesystem, a healthy session has no errors", func(t *testing.T) {
		t.Parallel()
		h := newHome(t, bin)
		root := t.TempDir()
		if err := os.WriteFile(filepath.Join(root, "a.txt"), []byte("hello"), 0o600); err != nil {
			t.Fatal(err)
		}
		var read callResults
		h.session(t, h.monitor(testenv.NPMServer(t, "mcp-server-filesystem", root)), func(cs *mcp.ClientSession) {
			read = call(t, cs, "read_text_file", map[string]any{"path": filepath.Join(root, "a.txt")}, 3)
		}, 0, 128+int(syscall.SIGTERM))
		if read.ok != 3 {
			t.Fatalf("read_text_file: %+v", read)
		}
		// The SDK's refused server/discover probe is the only error reply
		// on the wire, and it is negotiation.
		if s := h.stats(t); s.Totals.Errors != 0 || s.Totals.ErrorRate != 0 {
			t.Errorf("totals %+v, want no errors", s.Totals)
		}
		var probes int
		for _, e := range h.activity(t) {
			if e.Negotiation() {
				probes++
			}
		}
		if probes != 1 {
			t.Errorf("%d refused discover probes recorded, want the SDK's one", probes)
		}
	})

	t.Run("input_required and the retry are one call", func(t *testing.T) {
		t.Parallel()
		h := newHome(t, bin)
		opts := &mcp.ClientOptions{ElicitationHandler: func(context.Context, *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"name": "Ada"}}, nil
		}}
		var answers []string
		h.sessionWith(t, h.child("mcp"), opts, func(cs *mcp.ClientSession) {
			for range 3 {
				res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "ask", Arguments: map[string]any{"text": "x"}})
				if err != nil || res.IsError || len(res.Content) != 1 {
					t.Fatalf("ask: %+v, %v", res, err)
				}
				answers = append(answers, res.Content[0].(*mcp.TextContent).Text)
			}
		})
		if !slices.Equal(answers, []string{"hello Ada", "hello Ada", "hello Ada"}) {
			t.Fatalf("ask answered %q", answers)
		}
		s := h.stats(t)
		if got := toolStats(s, "ask"); got.Calls != 3 || got.Errors != 0 {
			t.Errorf("stats for ask: %d calls, %d errors; want 3, 0", got.Calls, got.Errors)
		}
		var requests, retries int
		for _, e := range h.activity(t) {
			if e.Kind == event.KindRequest && e.Tool == "ask" {
				requests++
				if e.Retry {
					retries++
				}
			}
		}
		// The SDK really sends each call twice, with new ids.
		if requests != 6 || retries != 3 {
			t.Errorf("%d ask requests recorded, %d marked as retries; want 6 and 3", requests, retries)
		}
	})

	t.Run("concurrent monitors on one home", func(t *testing.T) {
		t.Parallel()
		h := newHome(t, bin)
		const monitors, echoes, fails = 4, 6, 2
		var wg sync.WaitGroup
		for i := range monitors {
			wg.Go(func() {
				h.session(t, h.child("mcp"), func(cs *mcp.ClientSession) {
					call(t, cs, "echo", map[string]any{"text": fmt.Sprint("monitor ", i)}, echoes)
					call(t, cs, "fail", map[string]any{"text": "x"}, fails)
				})
			})
		}
		wg.Wait()
		s := h.stats(t)
		if e, f := toolStats(s, "echo"), toolStats(s, "fail"); e.Calls != monitors*echoes || e.Errors != 0 ||
			f.Calls != monitors*fails || f.Errors != monitors*fails || s.Totals.Sessions != monitors {
			t.Errorf("stats: echo %+v, fail %+v, %d sessions", e, f, s.Totals.Sessions)
		}
		checkEvents(t, h.activity(t), s.Totals)
	})

	t.Run("byte fidelity", func(t *testing.T) { testByteFidelity(t, bin) })
	t.Run("interactive latency", func(t *testing.T) {
		t.Parallel()
		testInteractive(t, bin)
	})
	t.Run("signals are forwarded", func(t *testing.T) { testSignals(t, bin) })

	t.Run("exit codes", func(t *testing.T) {
		t.Parallel()
		h := newHome(t, bin)
		notExec := h.dir + "/not-executable"
		if err := os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name   string
			cmd    *exec.Cmd
			code   int
			stderr string
		}{
			{"server's code", h.child("exit", childExitEnv+"=3"), 3, "server says goodbye on stderr"},
			{"server's zero", h.child("exit", childExitEnv+"=0"), 0, "server says goodbye on stderr"},
			{"not on PATH", h.monitor([]string{"kilometers-test-no-such-server"}), 127, "cannot start kilometers-test-no-such-server: command not found"},
			{"no such file", h.monitor([]string{h.dir + "/missing"}), 127, "command not found"},
			{"not executable", h.monitor([]string{notExec}), 126, "not executable"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				var out, errOut bytes.Buffer
				tt.cmd.Stdout, tt.cmd.Stderr = &out, &errOut
				// stdin stays open: the monitor must exit because the
				// server did, not because its client went away.
				stdin, err := tt.cmd.StdinPipe()
				if err != nil {
					t.Fatal(err)
				}
				defer stdin.Close()
				code := exitCode(t, tt.cmd.Run())
				if code != tt.code || !strings.Contains(errOut.String(), tt.stderr) || out.Len() != 0 {
					t.Errorf("exit %d, stdout %q, stderr %q; want exit %d, no stdout, stderr with %q", code, out.String(), errOut.String(), tt.code, tt.stderr)
				}
			})
		}
	})

	t.Run("stdin EOF reaches the server", func(t *testing.T) {
		t.Parallel()
		h := newHome(t, bin)
		cmd := h.child("eof")
		cmd.Stdin = strings.NewReader("some bytes\nand a last line")
		out, err := cmd.Output()
		if err != nil || string(out) != "eof after 26 bytes (<nil>)\n" {
			t.Errorf("got %q, %v", out, err)
		}
	})

	t.Run("server crash keeps the events so far", func(t *testing.T) {
		t.Parallel()
		h := newHome(t, bin)
		cmd := h.child("crash")
		var in bytes.Buffer
		for i := 1; i <= 3; i++ {
			fmt.Fprintf(&in, `{"jsonrpc":"2.0","id":%d,"method":"ping"}`+"\n", i)
		}
		in.WriteString(`{"jsonrpc":"2.0","id":4,"method":"crash"}` + "\n")
		cmd.Stdin = &in
		var errOut bytes.Buffer
		cmd.Stderr = &errOut
		out, err := cmd.Output()
		if code := exitCode(t, err); code != 70 {
			t.Fatalf("exit %d, want the server's 70\n%s", code, errOut.String())
		}
		if want := `{"jsonrpc":"2.0","id":1,"result":{}}` + "\n" + `{"jsonrpc":"2.0","id":2,"result":{}}` + "\n" +
			`{"jsonrpc":"2.0","id":3,"result":{}}` + "\n" + `{"jsonrpc":"2.0","id":`; string(out) != want {
			t.Errorf("stdout %q, want %q", out, want)
		}
		kinds := map[event.Kind]int{}
		for _, e := range h.activity(t) {
			kinds[e.Kind]++
		}
		if kinds[event.KindRequest] != 4 || kinds[event.KindResponse] != 3 || kinds[event.KindInvalid] != 1 {
			t.Errorf("recorded %v, want 4 requests, 3 responses and the cut line as invalid", kinds)
		}
	})
}
