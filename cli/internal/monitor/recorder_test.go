package monitor_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kilometers-ai/kilometers/cli/internal/monitor"
	"github.com/kilometers-ai/kilometers/shared/event"
)

// stuckRecorder is an event store that hangs (Record blocks until release
// is closed) or fails.
type stuckRecorder struct {
	release <-chan struct{}
	fail    bool

	mu       sync.Mutex
	events   int
	sessions []event.Session
}

func (r *stuckRecorder) Record(_ context.Context, evs []event.Event) error {
	if r.release != nil {
		<-r.release
	}
	if r.fail {
		return errors.New("disk full")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events += len(evs)
	return nil
}

func (r *stuckRecorder) RecordSession(_ context.Context, s event.Session) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sessions = append(r.sessions, s)
	return nil
}

func (r *stuckRecorder) Close() error { return nil }

func (r *stuckRecorder) last() event.Session {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.sessions) == 0 {
		return event.Session{}
	}
	return r.sessions[len(r.sessions)-1]
}

// signalWriter collects output and closes full once it has n bytes.
type signalWriter struct {
	bytes.Buffer
	n    int
	full chan struct{}
}

func (w *signalWriter) Write(p []byte) (int, error) {
	n, err := w.Buffer.Write(p)
	if w.Len() >= w.n && w.full != nil {
		close(w.full)
		w.full = nil
	}
	return n, err
}

// A store that hangs or fails costs events, counted and reported, never
// bytes or the session: the relay finishes while Record is still blocked.
func TestSlowOrFailingRecorder(t *testing.T) {
	var in bytes.Buffer
	const lines = 3000
	for i := range lines {
		fmt.Fprintf(&in, `{"jsonrpc":"2.0","id":%d,"method":"ping"}`+"\n", i)
	}
	tests := []struct {
		name string
		// releaseOn: when the blocked recorder is let go; "output" once all
		// bytes came back, "never" not during Run.
		releaseOn string
		fail      bool
		// recorded: some events get through, or none.
		recorded bool
		stderr   []string
	}{
		{"blocked until the relay is done", "output", false, true, []string{"events were not recorded"}},
		{"fails every write", "", true, false, []string{"record events; they are counted as dropped", "disk full", "events were not recorded"}},
		{"hangs for good", "never", false, false, []string{"did not finish within", "events were not recorded"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			release := make(chan struct{})
			defer func() {
				select {
				case <-release:
				default:
					close(release)
				}
			}()
			rec := &stuckRecorder{fail: tt.fail}
			out := &signalWriter{n: in.Len()}
			switch tt.releaseOn {
			case "output":
				rec.release, out.full = release, release
			case "never":
				rec.release = release
			}
			var stderr bytes.Buffer
			res, err := monitor.Run(context.Background(), monitor.Config{
				Command:      []string{os.Args[0]},
				Env:          append(os.Environ(), childEnv+"=cat"),
				Stdin:        bytes.NewReader(in.Bytes()),
				Stdout:       out,
				Stderr:       &stderr,
				Recorder:     rec,
				CloseTimeout: 500 * time.Millisecond,
			})
			if err != nil || res.ExitCode != 0 {
				t.Fatalf("Run: %+v %v\n%s", res, err, stderr.String())
			}
			if !bytes.Equal(out.Bytes(), in.Bytes()) {
				t.Fatalf("%d bytes relayed, want the %d sent", out.Len(), in.Len())
			}
			if res.Dropped == 0 || (res.Recorded > 0) != tt.recorded {
				t.Errorf("recorded %d, dropped %d", res.Recorded, res.Dropped)
			}
			for _, s := range tt.stderr {
				if !strings.Contains(stderr.String(), s) {
					t.Errorf("stderr lacks %q:\n%s", s, stderr.String())
				}
			}
			if !strings.Contains(stderr.String(), fmt.Sprintf("%d events were not recorded", res.Dropped)) {
				t.Errorf("stderr does not report the %d drops:\n%s", res.Dropped, stderr.String())
			}
			if tt.releaseOn == "never" {
				return // the session's end never reached the hung store
			}
			// Every line made one event each way: recorded or dropped.
			if res.Recorded+res.Dropped != 2*lines || int64(rec.events) != res.Recorded {
				t.Errorf("recorded %d (store has %d) + dropped %d, want %d", res.Recorded, rec.events, res.Dropped, 2*lines)
			}
			end := rec.last()
			if end.DroppedEvents != res.Dropped || end.ExitCode == nil || *end.ExitCode != 0 {
				t.Errorf("session end %+v, want %d dropped events and exit 0", end, res.Dropped)
			}
		})
	}
}
