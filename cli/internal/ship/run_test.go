package ship

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeLaunches stands in for shipper processes: each launch is recorded
// and its process "exits" with whatever is sent on exit.
type fakeLaunches struct {
	mu     sync.Mutex
	normal int
	final  int
	exit   chan error
	failTo error // Launch itself fails with this
}

func newFakeLaunches() *fakeLaunches { return &fakeLaunches{exit: make(chan error)} }

func (f *fakeLaunches) launch(final bool) (func() error, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failTo != nil {
		return nil, f.failTo
	}
	if final {
		f.final++
		return nil, nil
	}
	f.normal++
	return func() error { return <-f.exit }, nil
}

func (f *fakeLaunches) counts() (normal, final int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.normal, f.final
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
	}
}

// settle lets several intervals pass, for checks that something did not
// happen.
func settle(interval time.Duration) { time.Sleep(10 * interval) }

func TestBesideLaunchesOneShipperAtATimeForNewEvents(t *testing.T) {
	const interval = 5 * time.Millisecond
	var recorded atomic.Int64
	f := newFakeLaunches()
	stop := Beside(context.Background(), SideOptions{Interval: interval, Recorded: recorded.Load, Launch: f.launch})

	settle(interval)
	if n, _ := f.counts(); n != 0 {
		t.Fatalf("%d shippers launched with nothing recorded", n)
	}
	recorded.Add(3)
	eventually(t, "a shipper for the first events", func() bool { n, _ := f.counts(); return n == 1 })
	recorded.Add(3) // more while it runs: no second shipper beside it
	settle(interval)
	if n, _ := f.counts(); n != 1 {
		t.Fatalf("%d shippers launched while one was running", n)
	}
	f.exit <- nil
	eventually(t, "a shipper for the events recorded meanwhile", func() bool { n, _ := f.counts(); return n == 2 })
	f.exit <- nil
	settle(interval)
	if n, _ := f.counts(); n != 2 {
		t.Fatalf("%d shippers launched for nothing new", n)
	}

	stop()
	if _, final := f.counts(); final != 0 {
		t.Errorf("final shipper launched with everything already taken")
	}
}

// A shipper that found another at work leaves no failure behind and does
// not count as having taken the events: the next tick launches again.
func TestBesideLaunchesAgainAfterBusy(t *testing.T) {
	const interval = 5 * time.Millisecond
	var recorded atomic.Int64
	log, logged := captureLog()
	f := newFakeLaunches()
	stop := Beside(context.Background(), SideOptions{Interval: interval, Recorded: recorded.Load, Launch: f.launch, Logger: log})
	recorded.Add(4)
	eventually(t, "a shipper", func() bool { n, _ := f.counts(); return n == 1 })
	f.exit <- ErrBusy
	eventually(t, "a second shipper for the same events", func() bool { n, _ := f.counts(); return n == 2 })
	f.exit <- nil
	stop()
	if _, final := f.counts(); final != 0 {
		t.Errorf("final shipper launched although the second one took everything")
	}
	if out := logged(); strings.Contains(out, "level=WARN") {
		t.Errorf("warned about a busy shipper:\n%s", out)
	}
}

func TestBesideFinalShipperTakesWhatIsLeft(t *testing.T) {
	var recorded atomic.Int64
	f := newFakeLaunches()
	// An interval longer than the test: only the final launch can happen.
	stop := Beside(context.Background(), SideOptions{Interval: time.Hour, Recorded: recorded.Load, Launch: f.launch})
	recorded.Add(5)
	stop()
	if n, final := f.counts(); n != 0 || final != 1 {
		t.Errorf("launches: %d normal, %d final; want the final one only", n, final)
	}
}

func TestBesideBacksOffAfterFailureAndWarnsOnce(t *testing.T) {
	const interval = 5 * time.Millisecond
	var recorded atomic.Int64
	log, logged := captureLog()
	f := newFakeLaunches()
	stop := Beside(context.Background(), SideOptions{Interval: interval, Recorded: recorded.Load, Launch: f.launch, Logger: log})
	for i := 1; i <= 3; i++ {
		recorded.Add(1)
		eventually(t, "a shipper", func() bool { n, _ := f.counts(); return n == i })
		f.exit <- errors.New("API unreachable")
	}
	stop()
	// The last shipper failed: the final one tries again, whatever the
	// backoff, since the monitor will not be there to.
	if _, final := f.counts(); final != 1 {
		t.Errorf("%d final shippers after a failure, want 1", final)
	}
	out := logged()
	if w := strings.Count(out, "level=WARN"); w != 1 {
		t.Errorf("%d warnings for 3 failures, want 1:\n%s", w, out)
	}
}

func TestBesideBackoffDelaysTheNextLaunch(t *testing.T) {
	var recorded atomic.Int64
	f := newFakeLaunches()
	b := &beside{o: SideOptions{Interval: time.Second, Recorded: recorded.Load, Launch: f.launch, Logger: slog.New(slog.DiscardHandler)}}
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	f.failTo = errors.New("no executable")
	recorded.Add(1)
	b.tick(now)
	f.failTo = nil
	b.tick(now.Add(time.Millisecond))
	if n, _ := f.counts(); n != 0 {
		t.Fatalf("launched again %v after a failure", time.Millisecond)
	}
	b.tick(now.Add(maxRetryWait + time.Second))
	if n, _ := f.counts(); n != 1 {
		t.Fatalf("no launch once the backoff was over")
	}
	f.exit <- nil
}

// captureLog is a logger and what it has written so far; safe for
// concurrent use.
func captureLog() (*slog.Logger, func() string) {
	var mu sync.Mutex
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return buf.Write(p)
	}), nil))
	return log, func() string {
		mu.Lock()
		defer mu.Unlock()
		return buf.String()
	}
}

type writerFunc func([]byte) (int, error)

func (w writerFunc) Write(p []byte) (int, error) { return w(p) }
