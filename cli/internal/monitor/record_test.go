package monitor

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kilometers-ai/kilometers/shared/analysis"
	"github.com/kilometers-ai/kilometers/shared/event"
)

// memRecorder keeps what it is given; safe for concurrent use.
type memRecorder struct {
	mu       sync.Mutex
	evs      []event.Event
	sessions []event.Session
	closed   bool
	// addrs, when set, counts the payloads recorded at each address.
	addrs map[*byte]int
}

func (r *memRecorder) Record(_ context.Context, evs []event.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	// Recorders must not keep payloads (the monitor reuses their memory),
	// so a recorder that keeps events keeps copies.
	for _, e := range evs {
		if r.addrs != nil && cap(e.Payload) > 0 {
			r.addrs[&e.Payload[:1][0]]++
		}
		e.Payload = bytes.Clone(e.Payload)
		r.evs = append(r.evs, e)
	}
	return nil
}

func (r *memRecorder) RecordSession(_ context.Context, s event.Session) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sessions = append(r.sessions, s)
	return nil
}

func (r *memRecorder) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	return nil
}

func (r *memRecorder) events() []event.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.evs)
}

// pipelineRun is a pipeline running on its goroutine.
type pipelineRun struct {
	p    *pipeline
	rec  *memRecorder
	stop chan sessionEnd
	done chan struct{}
}

func startPipeline(t *testing.T) *pipelineRun {
	t.Helper()
	return startNamedPipeline(t, "")
}

// startNamedPipeline starts a pipeline as `kilometers monitor --name name`
// would (no --name when empty); the command's name is "srv". Its clock is
// time.Now: inside a synctest bubble, the bubble's.
func startNamedPipeline(t *testing.T, name string) *pipelineRun {
	t.Helper()
	pr := newPipelineRun(t, name)
	pr.start(t)
	return pr
}

// newPipelineRun makes the pipeline of startNamedPipeline without starting
// it, so that lines can be queued before it takes any.
func newPipelineRun(t *testing.T, name string) *pipelineRun {
	t.Helper()
	n := 0
	rec := &memRecorder{}
	pr := &pipelineRun{rec: rec, stop: make(chan sessionEnd, 1), done: make(chan struct{})}
	pr.p = newPipeline(rec, slog.New(slog.NewTextHandler(io.Discard, nil)), time.Now,
		event.Session{ID: "0196f1c2-6e00-7a55-8c1d-2f4b6a8e0c31", Server: "srv", StartedAt: t0}, name, "srv",
		func() string { n++; return fmt.Sprintf("0196f1c2-7a3b-7c11-9d2e-%012d", n) }, analysis.DefaultOptions(),
		newPrefixPool(DefaultPayloadCap, prefixPoolBuffers))
	return pr
}

func (pr *pipelineRun) start(t *testing.T) {
	go func() {
		defer close(pr.done)
		pr.p.run(context.Background(), pr.stop)
	}()
	t.Cleanup(func() { pr.end() })
}

// settle lets the pipeline take what was offered and record it: it waits
// out the coalescing window by the bubble's clock (see run), then until
// every goroutine of the bubble is blocked again.
func settle() {
	time.Sleep(coalesceWindow)
	synctest.Wait()
}

func (pr *pipelineRun) end() {
	select {
	case <-pr.done:
		return
	case pr.stop <- sessionEnd{at: t0.Add(time.Second)}:
	default:
	}
	<-pr.done
}

// oneLine frames text (one line) as dir, read at ts.
func oneLine(t *testing.T, dir event.Direction, text string, ts time.Time) *line {
	t.Helper()
	ls := frameAll(dir, []byte(text), 0, DefaultPayloadCap)
	if len(ls) != 1 {
		t.Fatalf("%q framed as %d lines", text, len(ls))
	}
	ls[0].ts = ts
	return ls[0]
}

// sdkFailReply is what the MCP Go SDK v1.8.0 writes for a tool whose handler
// returned an error.
const (
	failCall  = `{"jsonrpc":"2.0","id":23,"method":"tools/call","params":{"name":"fail","arguments":{"text":"x #1"}}}` + "\n"
	failReply = `{"jsonrpc":"2.0","id":23,"result":{"_meta":{"io.modelcontextprotocol/serverInfo":{"name":"e2e-server","version":"1.0.0"}},"content":[{"type":"text","text":"this tool always fails"}],"isError":true}}` + "\n"
)

// The two relay goroutines tap a chunk only after writing it on, so a fast
// server's reply can reach the pipeline before the request it answers.
// That reply must still be correlated: this is what made the API count 7-9
// of 10 tool errors with five monitors running at once.
func TestReplyTappedBeforeItsRequest(t *testing.T) {
	pr := startPipeline(t)
	pr.p.offer(oneLine(t, s2c, failReply, t0.Add(5*time.Millisecond)))
	pr.p.offer(oneLine(t, c2s, failCall, t0))
	pr.end()

	evs := pr.rec.events()
	if len(evs) != 2 {
		t.Fatalf("got %d events, want 2", len(evs))
	}
	req, rep := evs[0], evs[1]
	if req.Kind != event.KindRequest || req.Seq != 1 {
		t.Errorf("first event %s seq %d, want the request with seq 1", req.Kind, req.Seq)
	}
	if rep.Kind != event.KindResponse || rep.Seq != 2 || rep.Method != "tools/call" || rep.Tool != "fail" ||
		rep.IsError == nil || !*rep.IsError || rep.LatencyMS == nil || *rep.LatencyMS != 5 || !rep.Failed() {
		t.Errorf("reply not correlated: %s", summary(&rep))
	}
}

// A reply to a request the monitor never saw (dropped, or before the
// monitor started) waits parkWait by the session's clock, not a moment
// less, then is recorded uncorrelated while the session runs.
func TestReplyWithoutRequestIsRecordedAnyway(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pr := startPipeline(t)
		pr.p.offer(oneLine(t, s2c, failReply, t0))
		time.Sleep(parkWait - time.Nanosecond)
		synctest.Wait()
		if evs := pr.rec.events(); len(evs) != 0 {
			t.Fatalf("the orphan reply was recorded before its wait was over: %+v", evs)
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		evs := pr.rec.events()
		if len(evs) != 1 || evs[0].Kind != event.KindResponse || evs[0].Method != "" || evs[0].LatencyMS != nil {
			t.Fatalf("after the wait, got %+v", evs)
		}
	})
}

// The request arriving while its reply waits lets the reply go at once,
// correlated, however much of the wait is left.
func TestParkedReplyGoesWhenItsRequestArrives(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pr := startNamedPipeline(t, "srv")
		pr.p.offer(oneLine(t, s2c, failReply, t0.Add(5*time.Millisecond)))
		time.Sleep(parkWait / 2)
		synctest.Wait()
		if evs := pr.rec.events(); len(evs) != 0 {
			t.Fatalf("the reply went before its request came: %+v", evs)
		}
		pr.p.offer(oneLine(t, c2s, failCall, t0))
		settle()
		evs := pr.rec.events()
		if len(evs) != 2 || evs[1].Tool != "fail" || evs[1].LatencyMS == nil || *evs[1].LatencyMS != 5 {
			t.Fatalf("got %d events, want the request and its correlated reply: %+v", len(evs), evs)
		}
	})
}

// Replies waiting at the session's end are recorded, not lost; the number
// waiting is bounded.
func TestParkedRepliesAreBoundedAndFlushedAtEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// All queued before the pipeline starts, so it takes them in one
		// go and one coalescing window later has recorded what it built.
		pr := newPipelineRun(t, "srv")
		n := parkLines + 10
		for i := range n {
			pr.p.offer(oneLine(t, s2c, fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"result":{}}`, i), t0))
		}
		pr.start(t)
		settle()
		// The replies past the bound did not wait; those within it did.
		if got := len(pr.rec.events()); got != n-parkLines {
			t.Errorf("%d replies recorded before the end, want the %d past the bound", got, n-parkLines)
		}
		pr.end()
		if got := len(pr.rec.events()); got != n {
			t.Errorf("%d of %d replies recorded", got, n)
		}
		if pr.p.parkedBytes != 0 || len(pr.p.parked) != 0 {
			t.Errorf("%d lines (%d bytes) still parked", len(pr.p.parked), pr.p.parkedBytes)
		}
	})
}

// The first hypothesis for the lost errors: the incremental scan missing
// isError when a reply arrives in pieces. Every split of the line into
// three reads must give the same event.
func TestReplySplitAtEveryOffset(t *testing.T) {
	tests := []struct{ req, reply string }{
		{failCall, failReply},
		{`{"jsonrpc":"2.0","id":"a\"b","method":"tools/call","params":{"name":"t"}}` + "\n",
			`{"result":{"content":[],"isError":true},"jsonrpc":"2.0","id":"a\"b"}` + "\r\n"},
		{failCall, `{"jsonrpc":"2.0","id":23,"error":{"code":-32603,"message":"crashed \"x\""}}` + "\n"},
	}
	now := func() time.Time { return t0 }
	for _, tt := range tests {
		var want string
		for i := 0; i <= len(tt.reply); i++ {
			for j := i; j <= len(tt.reply); j++ {
				var ls []*line
				emit := func(l *line) { ls = append(ls, l) }
				newFramer(c2s, DefaultPayloadCap, nil, now, emit).write([]byte(tt.req), t0)
				f := newFramer(s2c, DefaultPayloadCap, nil, now, emit)
				f.write([]byte(tt.reply[:i]), t0)
				f.write([]byte(tt.reply[i:j]), t0)
				f.write([]byte(tt.reply[j:]), t0)
				f.flush()
				b := newBuilder("s", func() string { return "x" })
				var evs []built
				for _, l := range ls {
					evs = append(evs, b.events(l)...)
				}
				if len(evs) != 2 {
					t.Fatalf("split %d/%d: %d events", i, j, len(evs))
				}
				got := summary(&evs[1].ev)
				if want == "" {
					want = got
					if evs[1].ev.Method != "tools/call" || !evs[1].ev.Failed() {
						t.Fatalf("whole reply is not a failed tools/call: %s", got)
					}
				}
				if got != want {
					t.Fatalf("split %d/%d: %s, want %s", i, j, got, want)
				}
			}
		}
	}
}

// failingRecorder fails every Record with err.
type failingRecorder struct {
	memRecorder
	err error
}

func (r *failingRecorder) Record(context.Context, []event.Event) error { return r.err }

// partialErr is a Record failure after the first n events were recorded,
// as the store's *PartialError reports it.
type partialErr struct{ n int }

func (e partialErr) Error() string       { return fmt.Sprintf("recorded %d, then disk full", e.n) }
func (e partialErr) RecordedEvents() int { return e.n }

// Events a store recorded before it failed are counted as recorded, only
// the rest as dropped.
func TestFlushCountsPartialRecordFailure(t *testing.T) {
	for _, tc := range []struct {
		name                   string
		err                    error
		wantRecorded, wantDrop int64
	}{
		{"success", nil, 3, 0},
		{"failure", fmt.Errorf("disk full"), 0, 3},
		{"partial", partialErr{2}, 2, 1},
		{"partial, wrapped", fmt.Errorf("store: %w", partialErr{1}), 1, 2},
		{"partial claims too many", partialErr{9}, 3, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &failingRecorder{err: tc.err}
			p := newPipeline(rec, slog.New(slog.NewTextHandler(io.Discard, nil)), time.Now,
				event.Session{ID: "0196f1c2-6e00-7a55-8c1d-2f4b6a8e0c31"}, "", "srv",
				func() string { return "0196f1c2-7a3b-7c11-9d2e-000000000001" }, analysis.DefaultOptions(), nil)
			p.out = make([]event.Event, 3)
			p.flush(context.Background())
			if got, want := p.recorded.Load(), tc.wantRecorded; got != want {
				t.Errorf("recorded = %d, want %d", got, want)
			}
			if got, want := p.dropped.Load(), tc.wantDrop; got != want {
				t.Errorf("dropped = %d, want %d", got, want)
			}
		})
	}
}

// Large prefixes, and the string payloads of messages bigger than the
// cap, go back to their pools once their events are recorded and are
// reused for later lines. A buffer recycled too early would show up here
// as a payload holding another message's bytes.
func TestRecycledPrefixesKeepPayloadsIntact(t *testing.T) {
	for _, tc := range []struct {
		name string
		size int // of the message's text
	}{
		// Whole within the cap, so the payload is the prefix itself.
		{"whole", DefaultPayloadCap - 200},
		// Over the cap: the payload is a string from the payload pool.
		{"over the cap", 3 * DefaultPayloadCap},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { testRecycledPrefixes(t, tc.size) })
		})
	}
}

func testRecycledPrefixes(t *testing.T, size int) {
	pr := startPipeline(t)
	pr.rec.addrs = map[*byte]int{}
	whole := size < DefaultPayloadCap
	seen := map[*byte]int{}
	f := newFramer(s2c, DefaultPayloadCap, pr.p.pool, func() time.Time { return t0 }, func(l *line) {
		if l.pooled {
			seen[&l.prefix[:1][0]]++
		}
		pr.p.offer(l)
	})
	var want []string
	send := func(i int) {
		// Over a relay read, so the prefix comes from the pool. A
		// notification, because a reply would wait for its request.
		text := strings.Repeat(string(rune('a'+i%26)), size)
		msg := fmt.Sprintf(`{"jsonrpc":"2.0","method":"notifications/message","params":{"n":%d,"data":%q}}`, i, text)
		if whole {
			want = append(want, msg)
		} else {
			p, _ := stringPayload([]byte(msg[:DefaultPayloadCap]), int64(len(msg)))
			want = append(want, string(p))
		}
		for p := []byte(msg + "\n"); len(p) > 0; {
			k := min(len(p), relayBufSize)
			f.write(p[:k], t0)
			p = p[k:]
		}
	}
	reused := func(m map[*byte]int) int {
		n := 0
		for _, k := range m {
			n += k - 1
		}
		return n
	}
	// One at a time, each recorded before the next needs a buffer: the
	// buffers must come round again.
	const slow, burst = 6, 16
	for i := range slow {
		send(i)
		// The server never names itself here, so the events wait out the
		// hold on unlabelled events (by the bubble's clock) the first time.
		time.Sleep(holdTimeout)
		settle()
		if n := len(pr.rec.events()); n != i+1 {
			t.Fatalf("%d events recorded after line %d, want %d", n, i, i+1)
		}
	}
	if len(seen) == 0 || reused(seen) == 0 {
		t.Errorf("%d distinct pooled buffers for %d lines: the pool was never used again", len(seen), slow)
	}
	if !whole && reused(pr.rec.addrs) == 0 {
		t.Errorf("%d distinct payload buffers for %d lines: the payload pool was never used again", len(pr.rec.addrs), slow)
	}
	// Then all at once, faster than the pipeline records: buffers of lines
	// not yet recorded must not be handed out again.
	for i := slow; i < slow+burst; i++ {
		send(i)
	}
	pr.end()
	evs := pr.rec.events()
	if len(evs) != slow+burst {
		t.Fatalf("%d events, want %d", len(evs), slow+burst)
	}
	for i, e := range evs {
		if string(e.Payload) != want[i] {
			got := string(e.Payload)
			if j := strings.Index(got, `"n":`); j >= 0 {
				got = got[j:min(len(got), j+12)]
			}
			t.Errorf("event %d: payload of %d bytes holds %q: not its own message", i, len(e.Payload), got)
		}
	}
}

// The pipeline lets small lines gather for a window before it takes them,
// but takes a line at the payload cap at once: in a burst of large results
// every line left waiting holds a buffer of the cap.
func TestCoalescingWindowSparesLargeLines(t *testing.T) {
	for _, tc := range []struct {
		name string
		size int // of the message's text
		// waits is whether a second line, offered while the pipeline is
		// in its window after the first, stays queued until the window
		// ends.
		waits bool
	}{
		{"small", 100, true},
		{"at the cap", 2 * DefaultPayloadCap, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				pr := startNamedPipeline(t, "srv")
				f := newFramer(s2c, DefaultPayloadCap, pr.p.pool, time.Now, pr.p.offer)
				send := func(i int) {
					msg := fmt.Sprintf(`{"jsonrpc":"2.0","method":"notifications/message","params":{"n":%d,"data":%q}}`+"\n", i, strings.Repeat("a", tc.size))
					for p := []byte(msg); len(p) > 0; {
						k := min(len(p), relayBufSize)
						f.write(p[:k], time.Now())
						p = p[k:]
					}
				}
				start := time.Now()
				send(0)
				synctest.Wait()
				send(1)
				synctest.Wait()
				if !time.Now().Equal(start) {
					t.Fatalf("the bubble's clock moved: %v", time.Since(start))
				}
				queued := pr.p.queued.Load() > 0 || len(pr.p.lines) > 0
				if queued != tc.waits {
					t.Errorf("second line still queued within the window: %v, want %v", queued, tc.waits)
				}
				pr.end()
				if n := len(pr.rec.events()); n != 2 {
					t.Errorf("%d events recorded, want 2", n)
				}
			})
		})
	}
}

// The label is --name when given, else serverInfo.name, else the command's
// name; the handshake's names are recorded in the session either way.
func TestServerLabel(t *testing.T) {
	initReq := `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","clientInfo":{"name":"c","version":"1"}}}` + "\n"
	initReply := `{"jsonrpc":"2.0","id":0,"result":{"protocolVersion":"2025-06-18","serverInfo":{"name":"everything","version":"2"}}}` + "\n"
	anon := `{"jsonrpc":"2.0","id":0,"result":{"protocolVersion":"2025-06-18"}}` + "\n"
	for _, tc := range []struct {
		name, reply, want string
	}{
		{"memory", initReply, "memory"},
		{"", initReply, "everything"},
		{"", anon, "srv"},
		{"memory", anon, "memory"},
	} {
		t.Run(tc.name+"/"+tc.want, func(t *testing.T) {
			pr := startNamedPipeline(t, tc.name)
			pr.p.offer(oneLine(t, c2s, initReq, t0))
			pr.p.offer(oneLine(t, s2c, tc.reply, t0.Add(time.Millisecond)))
			pr.end()
			evs := pr.rec.events()
			if len(evs) != 2 {
				t.Fatalf("got %d events", len(evs))
			}
			for _, e := range evs {
				if e.Server != tc.want {
					t.Errorf("event %d labelled %q, want %q", e.Seq, e.Server, tc.want)
				}
			}
			pr.rec.mu.Lock()
			defer pr.rec.mu.Unlock()
			last := pr.rec.sessions[len(pr.rec.sessions)-1]
			if last.Server != tc.want {
				t.Errorf("session labelled %q, want %q", last.Server, tc.want)
			}
			if tc.reply == initReply && last.ServerName != "everything" {
				t.Errorf("session server_name %q, want the server's own name", last.ServerName)
			}
		})
	}
}
