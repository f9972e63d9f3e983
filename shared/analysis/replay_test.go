package analysis_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/kilometers-ai/kilometers/shared/analysis"
	"github.com/kilometers-ai/kilometers/shared/event"
	"github.com/kilometers-ai/kilometers/shared/rpcpair"
)

// recorded is one line of a recorded session under testdata/: a message
// exactly as it crossed the pipe and which way it went.
type recorded struct {
	Direction event.Direction `json:"direction"`
	Message   json.RawMessage `json:"message"`
}

// replayer turns messages into events the way the monitor does (kind,
// method by correlation on direction and id, tool name), so the tests feed
// Analyze what it gets in production.
type replayer struct {
	s       *analysis.Session
	pending *rpcpair.Pending[[2]string] // method, tool of a request
}

func newReplayer(s *analysis.Session) *replayer {
	return &replayer{s: s, pending: rpcpair.NewPending[[2]string](1 << 20)}
}

func (r *replayer) event(t testing.TB, dir event.Direction, msg []byte) *event.Event {
	t.Helper()
	var m struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
		Params struct {
			Name string `json:"name"`
		} `json:"params"`
		Error json.RawMessage `json:"error"`
	}
	e := &event.Event{Direction: dir, Size: int64(len(msg)), Payload: msg}
	if err := json.Unmarshal(msg, &m); err != nil {
		e.Kind = event.KindInvalid
		r.s.Analyze(e, msg)
		return e
	}
	if len(m.ID) > 0 {
		if s, err := strconv.Unquote(string(m.ID)); err == nil {
			e.RPCID = s
		} else {
			e.RPCID = string(m.ID)
		}
	}
	switch {
	case m.Method != "" && e.RPCID != "":
		e.Kind, e.Method = event.KindRequest, m.Method
		if m.Method == "tools/call" {
			e.Tool = m.Params.Name
		}
		r.pending.Request(dir, e.RPCID, [2]string{e.Method, e.Tool})
	case m.Method != "":
		e.Kind, e.Method = event.KindNotification, m.Method
	default:
		e.Kind = event.KindResponse
		if len(m.Error) > 0 && string(m.Error) != "null" {
			e.Kind = event.KindError
		}
		if mt, ok := r.pending.Reply(dir, e.RPCID); ok {
			e.Method, e.Tool = mt[0], mt[1]
		}
	}
	r.s.Analyze(e, msg)
	return e
}

func readRecording(t testing.TB, name string) []recorded {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []recorded
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var r recorded
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out = append(out, r)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func writeRecording(t testing.TB, name string, msgs []recorded) {
	t.Helper()
	var buf bytes.Buffer
	for _, m := range msgs {
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		buf.Write(b)
		buf.WriteByte('\n')
	}
	if err := os.WriteFile(filepath.Join("testdata", name), buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// memStore is a DefinitionStore in memory.
type memStore struct {
	m     map[string]map[string]string
	saves int
}

func (m *memStore) Load(_ context.Context, key string) (map[string]string, bool, error) {
	d, ok := m.m[key]
	return d, ok, nil
}

func (m *memStore) Save(_ context.Context, key string, defs map[string]string) error {
	if m.m == nil {
		m.m = make(map[string]map[string]string)
	}
	m.m[key] = defs
	m.saves++
	return nil
}
