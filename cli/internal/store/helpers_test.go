package store

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/kilometers-ai/kilometers/shared/event"
)

// The test binary re-executes itself as a helper process (a monitor writing,
// a shipper claiming) when KM_STORE_HELPER names a role.
func TestMain(m *testing.M) {
	if role := os.Getenv("KM_STORE_HELPER"); role != "" {
		if err := runHelper(role, os.Args[len(os.Args)-1]); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// helperArgs is what a helper process is told, as JSON in its last argument.
type helperArgs struct {
	Home      string `json:"home"`
	SessionID string `json:"session_id"`
	Prefix    string `json:"prefix"`
	N         int    `json:"n"`
	Batch     int    `json:"batch"`
}

func runHelper(role, arg string) error {
	var a helperArgs
	if err := json.Unmarshal([]byte(arg), &a); err != nil {
		return err
	}
	ctx := context.Background()
	s, err := Open(ctx, a.Home, Options{SegmentBytes: 64 << 10})
	if err != nil {
		return err
	}
	switch role {
	case "write":
		// Two goroutines share one writer and a third has its own, as a
		// monitor's reader and writer loops might.
		w1, err := s.NewWriter(ctx, a.SessionID)
		if err != nil {
			return err
		}
		w2, err := s.NewWriter(ctx, a.SessionID)
		if err != nil {
			return err
		}
		if err := w1.RecordSession(ctx, testSession(a.SessionID, a.Prefix)); err != nil {
			return err
		}
		var wg sync.WaitGroup
		errs := make(chan error, 3)
		for g, w := range []*Writer{w1, w1, w2} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := g; i < a.N; i += 3 {
					e := testEvent(a.SessionID, fmt.Sprintf("%s-%d", a.Prefix, i), i, baseTime.Add(time.Duration(i)*time.Millisecond))
					if err := w.Record(ctx, []event.Event{e}); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		if err := <-errs; err != nil {
			return err
		}
		if err := w1.Close(); err != nil {
			return err
		}
		return w2.Close()
	case "crash":
		// Record N events and close; then record more without closing and
		// wait to be killed.
		w, err := s.NewWriter(ctx, a.SessionID)
		if err != nil {
			return err
		}
		for i := 0; i < a.N; i++ {
			if err := w.Record(ctx, []event.Event{testEvent(a.SessionID, fmt.Sprintf("%s-%d", a.Prefix, i), i, baseTime)}); err != nil {
				return err
			}
		}
		if err := w.Close(); err != nil {
			return err
		}
		w2, err := s.NewWriter(ctx, a.SessionID)
		if err != nil {
			return err
		}
		for i := a.N; i < 2*a.N; i++ {
			if err := w2.Record(ctx, []event.Event{testEvent(a.SessionID, fmt.Sprintf("%s-%d", a.Prefix, i), i, baseTime)}); err != nil {
				return err
			}
		}
		if err := w2.Flush(); err != nil {
			return err
		}
		// A half-written line, as a kill in the middle of a write leaves.
		w2.mu.Lock()
		w2.seg.w.WriteString(`{"e":{"id":"torn`)
		w2.seg.w.Flush()
		w2.mu.Unlock()
		fmt.Println("ready")
		select {}
	case "ship":
		// Claim and ack batches until nothing is left, printing the ids.
		out := bufio.NewWriter(os.Stdout)
		defer out.Flush()
		for {
			c, err := s.Claim(ctx, a.Batch, 0)
			if err != nil {
				return err
			}
			if c == nil {
				return nil
			}
			for _, e := range c.Events() {
				fmt.Fprintln(out, e.ID)
			}
			if err := c.Ack(ctx); err != nil {
				return err
			}
		}
	case "claim-once":
		// Claim everything it can, print the ids, ack and exit.
		c, err := s.Claim(ctx, 1<<20, 0)
		if err != nil || c == nil {
			return err
		}
		for _, e := range c.Events() {
			fmt.Println(e.ID)
		}
		return c.Ack(ctx)
	}
	return fmt.Errorf("unknown helper role %q", role)
}

// helper starts the test binary as a helper process.
func helper(t *testing.T, role string, a helperArgs) *exec.Cmd {
	t.Helper()
	b, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$", string(b))
	cmd.Env = append(os.Environ(), "KM_STORE_HELPER="+role)
	cmd.Stderr = os.Stderr
	return cmd
}

func runHelperOutput(t *testing.T, cmd *exec.Cmd) []string {
	t.Helper()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helper %v: %v", cmd.Args, err)
	}
	return lines(string(out))
}

func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}

var baseTime = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

// testID turns a readable key into a stable UUID, so tests can name events.
func testID(key string) string {
	return uuid.NewSHA1(uuid.NameSpaceOID, []byte(key)).String()
}

func testSession(id, server string) event.Session {
	return event.Session{ID: id, Server: server, ServerName: server, StartedAt: baseTime, Command: []string{"server", server}}
}

// testEvent makes a varied event: kinds, tools, latencies, risks and a
// payload depend on i.
func testEvent(sessionID, key string, i int, ts time.Time) event.Event {
	e := event.Event{
		ID:        testID(key),
		SessionID: sessionID,
		Seq:       int64(i),
		TS:        ts,
		Server:    []string{"files", "git", "web"}[i%3],
		Size:      int64(100 + i%1000),
		CostUSD:   float64(i%7) * 0.0001,
		Tokens:    int64(i % 50),
	}
	tool := []string{"read_file", "write_file", "search", "fetch"}[i%4]
	switch i % 4 {
	case 0:
		e.Direction, e.Kind, e.Method, e.Tool = event.ClientToServer, event.KindRequest, "tools/call", tool
	case 1:
		lat := float64(i%97) + 0.5
		isErr := i%5 == 0
		e.Direction, e.Kind, e.Method, e.Tool, e.LatencyMS, e.IsError = event.ServerToClient, event.KindResponse, "tools/call", tool, &lat, &isErr
	case 2:
		lat := float64(i % 13)
		code := -32602
		e.Direction, e.Kind, e.Method, e.LatencyMS, e.ErrorCode = event.ServerToClient, event.KindError, "resources/read", &lat, &code
	case 3:
		e.Direction, e.Kind, e.Method = event.ClientToServer, event.KindNotification, "notifications/progress"
	}
	if i%6 == 0 {
		lvl := []event.Level{event.LevelLow, event.LevelMedium, event.LevelHigh}[i%18/6]
		e.Risk = &event.Risk{Score: 10 + i%90, Level: lvl, Reasons: []string{"sensitive_path"}}
	}
	e.Payload = json.RawMessage(`{"jsonrpc":"2.0","id":` + strconv.Itoa(i) + `,"params":{"text":"line\nwith \"quotes\" and },\"p\": tricks"}}`)
	return e
}

// readAllLines returns every line of every segment file.
func segmentFiles(t *testing.T, s *Store) []string {
	t.Helper()
	segs, err := s.segments()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, sg := range segs {
		out = append(out, s.path(sg.id, ".jsonl"))
	}
	return out
}

func mustOpen(t testing.TB, home string, opts Options) *Store {
	t.Helper()
	s, err := Open(context.Background(), home, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// readLine reads one line from r, failing the test at EOF.
func readLine(t *testing.T, r io.Reader) string {
	t.Helper()
	l, err := bufio.NewReader(r).ReadString('\n')
	if err != nil {
		t.Fatalf("read from helper: %v", err)
	}
	return strings.TrimSpace(l)
}
