package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/kilometers-ai/kilometers/shared/activity"
	"github.com/kilometers-ai/kilometers/shared/event"
	"github.com/kilometers-ai/kilometers/shared/testenv"
)

// npmSession runs one SDK client session through the monitor in front of
// an npm server.
func (u *user) npmSession(t *testing.T, server []string, fn func(cs *mcp.ClientSession)) {
	t.Helper()
	cmd := exec.Command(u.e.cli, append([]string{"monitor", "--"}, server...)...)
	dieWithTest(cmd)
	cmd.Env = u.env
	logs := &testenv.Buffer{}
	cmd.Stderr = logs
	client := mcp.NewClient(&mcp.Implementation{Name: "e2e-client", Version: "1.0.0"}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cs, err := client.Connect(ctx, &mcp.CommandTransport{Command: cmd, TerminateDuration: time.Second}, nil)
	if err != nil {
		t.Fatalf("connect through the monitor: %v\nmonitor stderr:\n%s", err, logs.String())
	}
	fn(cs)
	cs.Close()
}

func (u *user) events(t *testing.T, args ...string) []event.Event {
	t.Helper()
	out := u.mustRun(t, append([]string{"activity", "--json", "--limit", "1000"}, args...)...)
	var p activity.Page
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatalf("activity --json: %v\n%s", err, out)
	}
	if p.NextCursor != "" {
		t.Fatal("more than one page: the test expects fewer events")
	}
	return p.Events
}

// TestReadCommands drives real sessions (the SDK client against this
// binary's server and npm server-filesystem) and checks what the read
// commands say about them: --failed finds exactly the failed calls, show
// pairs every call, export yields exactly the stored events, sessions
// counts them.
func TestReadCommands(t *testing.T) {
	e := setupNoAPI(t)
	u := e.user(t)
	u.session(t, func(cs *mcp.ClientSession, _ *exec.Cmd) {
		calls(t, cs, "echo", 4, "hello")
		calls(t, cs, "fail", 3, "x")
		calls(t, cs, "crash", 2, "x")
		if _, err := cs.ListTools(t.Context(), nil); err != nil {
			t.Fatal(err)
		}
	})
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "notes.txt"), []byte("some notes\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fsFailed := 0
	u.npmSession(t, testenv.NPMServer(t, "mcp-server-filesystem", root), func(cs *mcp.ClientSession) {
		for _, p := range []string{filepath.Join(root, "notes.txt"), "/etc/hostname", filepath.Join(root, "missing.txt")} {
			res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "read_text_file", Arguments: map[string]any{"path": p}})
			if err != nil {
				t.Fatalf("read_text_file %s: %v", p, err)
			}
			if res.IsError {
				fsFailed++
			}
		}
	})
	if fsFailed != 2 {
		t.Fatalf("server-filesystem refused %d reads, want 2 (outside the root, missing)", fsFailed)
	}

	all := u.events(t)
	var wantFailed []string
	failedCalls := 0
	perSession := map[string]int64{}
	for _, ev := range all {
		if ev.Failed() {
			wantFailed = append(wantFailed, ev.ID)
			perSession[ev.SessionID]++
			if ev.Method == "tools/call" {
				failedCalls++
			}
		}
	}
	var gotFailed []string
	for _, ev := range u.events(t, "--failed") {
		gotFailed = append(gotFailed, ev.ID)
	}
	if failedCalls != 3+2+fsFailed || !slices.Equal(gotFailed, wantFailed) {
		t.Errorf("--failed listed %d events (%d failed tool calls), want the %d failed replies (3 fail, 2 crash, %d server-filesystem)",
			len(gotFailed), failedCalls, len(wantFailed), fsFailed)
	}
	table := u.mustRun(t, "activity", "--failed")
	if n := strings.Count(table, "\n") - 1; n != len(wantFailed) {
		t.Errorf("the --failed table has %d rows:\n%s", n, table)
	}

	// show pairs each call, from either half.
	requests := 0
	for _, ev := range all {
		if ev.Kind != event.KindRequest {
			continue
		}
		requests++
		for _, id := range []string{ev.ID} {
			var c activity.Call
			if err := json.Unmarshal([]byte(u.mustRun(t, "show", id, "--json")), &c); err != nil {
				t.Fatal(err)
			}
			if c.Request == nil || c.Request.ID != ev.ID || c.Response == nil {
				t.Fatalf("show %s (%s): %+v", id, ev.Method, c)
			}
			r := c.Response
			if r.SessionID != ev.SessionID || r.RPCID != ev.RPCID || r.Direction == ev.Direction || r.Seq <= ev.Seq || r.Method != ev.Method {
				t.Errorf("show %s paired %s %s with %+v", id, ev.Method, ev.RPCID, r)
			}
			var back activity.Call
			if err := json.Unmarshal([]byte(u.mustRun(t, "show", r.ID, "--json")), &back); err != nil || back.Request == nil || back.Request.ID != ev.ID {
				t.Errorf("show of the reply %s: %+v, %v", r.ID, back, err)
			}
		}
	}
	if requests < 12 {
		t.Errorf("only %d requests recorded", requests)
	}
	text := u.mustRun(t, "show", gotFailed[0])
	for _, want := range []string{"Request", "Response", "Latency", "Error", "Request payload", `"jsonrpc": "2.0"`} {
		if !strings.Contains(text, want) {
			t.Errorf("show lacks %q:\n%s", want, text)
		}
	}

	// export: every stored event, exactly.
	lines := strings.Split(strings.TrimSuffix(u.mustRun(t, "export"), "\n"), "\n")
	if len(lines) != len(all) {
		t.Fatalf("export wrote %d events, the store holds %d", len(lines), len(all))
	}
	for i, line := range lines {
		want, _ := json.Marshal(all[i])
		var a, b any
		json.Unmarshal([]byte(line), &a)
		json.Unmarshal(want, &b)
		if !jsonEqual(a, b) {
			t.Fatalf("export line %d:\n%s\nwant\n%s", i, line, want)
		}
	}

	var sp activity.SessionPage
	if err := json.Unmarshal([]byte(u.mustRun(t, "sessions", "--json")), &sp); err != nil {
		t.Fatal(err)
	}
	if len(sp.Sessions) != 2 || sp.Sessions[1].Calls != 9 || sp.Sessions[0].Calls != 3 {
		t.Fatalf("sessions: %+v", sp.Sessions)
	}
	for _, s := range sp.Sessions {
		if s.Failed != perSession[s.ID] {
			t.Errorf("session %s: %d failed, its events say %d", s.ID, s.Failed, perSession[s.ID])
		}
	}
	if sp.Sessions[0].ClientName != "e2e-client" || sp.Sessions[0].ExitCode == nil {
		t.Errorf("session record %+v", sp.Sessions[0].Session)
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// TestFollow: `activity --follow` prints the events of a session started
// after it, and only those the filter keeps.
func TestFollow(t *testing.T) {
	e := setupNoAPI(t)
	u := e.user(t)
	u.session(t, func(cs *mcp.ClientSession, _ *exec.Cmd) {
		calls(t, cs, "echo", 1, "before")
		calls(t, cs, "fail", 1, "before")
	})

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	follow := exec.CommandContext(ctx, u.e.cli, "activity", "--follow", "--json", "--tool", "fail")
	dieWithTest(follow)
	follow.Env = u.env
	out, err := follow.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel()
		follow.Wait()
	}()

	// The backlog (the earlier session's fail call and its reply) comes
	// first: then the follower is at work, before the next session starts.
	sc := bufio.NewScanner(out)
	var got []event.Event
	for len(got) < 2 && sc.Scan() {
		var ev event.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("follow printed %q: %v", sc.Text(), err)
		}
		got = append(got, ev)
	}
	before := got[0].SessionID
	u.session(t, func(cs *mcp.ClientSession, _ *exec.Cmd) {
		calls(t, cs, "echo", 2, "after")
		calls(t, cs, "fail", 2, "after")
	})
	for len(got) < 6 && sc.Scan() {
		var ev event.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("follow printed %q: %v", sc.Text(), err)
		}
		got = append(got, ev)
	}
	if len(got) != 6 {
		t.Fatalf("follow printed %d events before the deadline: %+v", len(got), got)
	}
	for i, ev := range got {
		if (i < 2) != (ev.SessionID == before) {
			t.Errorf("event %d of session %s: want the backlog's two first, then the new session's four", i, ev.SessionID)
		}
		if ev.Tool != "fail" {
			t.Errorf("event %d: tool %q passed the --tool fail filter", i, ev.Tool)
		}
		if i > 0 && ev.TS.Before(got[i-1].TS) {
			t.Errorf("events out of order: %v before %v", got[i-1].TS, ev.TS)
		}
	}
}

// TestAPIDownFallsBack: with an API configured that nothing answers at,
// read commands answer from the local store, with one notice, within
// about 2 s (they used to hang about 5 s and fail with a dial error).
func TestAPIDownFallsBack(t *testing.T) {
	e := setupNoAPI(t)
	u := e.user(t)
	u.session(t, func(cs *mcp.ClientSession, _ *exec.Cmd) { calls(t, cs, "fail", 2, "x") })
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + l.Addr().String()
	l.Close()
	offline := &user{e: e, home: u.home, env: append(append([]string{}, u.env...), "KILOMETERS_API_URL="+down, "KILOMETERS_API_KEY=km_test_0123456789abcdef")}
	for _, args := range [][]string{{"activity", "--failed", "--json"}, {"stats", "--json"}, {"sessions", "--json"}} {
		start := time.Now()
		out, errOut, code := offline.run(t, "", args...)
		took := time.Since(start)
		t.Logf("kilometers %s with the API down: %v", strings.Join(args, " "), took.Round(time.Millisecond))
		if code != 0 || !json.Valid([]byte(out)) {
			t.Errorf("%v: exit %d\n%s\n%s", args, code, out, errOut)
		}
		if strings.Count(errOut, "unreachable") != 1 || !strings.Contains(errOut, "local store") {
			t.Errorf("%v: stderr %q, want one notice", args, errOut)
		}
		if took > 4*time.Second {
			t.Errorf("%v took %v with the API down", args, took)
		}
	}
}
