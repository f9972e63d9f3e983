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
	"testing/synctest"
	"time"
)

// fakeLaunches stands in for shipper processes: each launch is recorded
// and its process "exits" with whatever is sent on exit.
type fakeLaunches struct {
	// recorded is the session's Recorded count.
	recorded atomic.Int64

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

// beside starts Beside over f's launches and recorded count.
func (f *fakeLaunches) beside(interval time.Duration, log *slog.Logger) (stop func()) {
	return Beside(context.Background(), SideOptions{Interval: interval, Recorded: f.recorded.Load, Launch: f.launch, Logger: log})
}

func (f *fakeLaunches) counts() (normal, final int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.normal, f.final
}

// pass lets d of the bubble's fake time go by and returns once every
// goroutine of the bubble is blocked again: what was due has happened.
func pass(d time.Duration) {
	time.Sleep(d)
	synctest.Wait()
}

func TestBesideLaunchesOneShipperAtATimeForNewEvents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const interval = time.Second
		f := newFakeLaunches()
		stop := f.beside(interval, nil)

		pass(10 * interval)
		if n, _ := f.counts(); n != 0 {
			t.Fatalf("%d shippers launched with nothing recorded", n)
		}
		f.recorded.Add(3)
		pass(interval)
		if n, _ := f.counts(); n != 1 {
			t.Fatalf("%d shippers launched an interval after the first events, want 1", n)
		}
		f.recorded.Add(3) // more while it runs: no second shipper beside it
		pass(10 * interval)
		if n, _ := f.counts(); n != 1 {
			t.Fatalf("%d shippers launched while one was running", n)
		}
		f.exit <- nil
		pass(interval)
		if n, _ := f.counts(); n != 2 {
			t.Fatalf("%d shippers launched once the first exited, want 2 for the events recorded meanwhile", n)
		}
		f.exit <- nil
		pass(10 * interval)
		if n, _ := f.counts(); n != 2 {
			t.Fatalf("%d shippers launched for nothing new", n)
		}

		stop()
		if _, final := f.counts(); final != 0 {
			t.Errorf("final shipper launched with everything already taken")
		}
	})
}

// stop does not wait for a running shipper; it launches the final one only
// for events that shipper did not start with.
func TestBesideStopLeavesARunningShipper(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const interval = time.Second
		f := newFakeLaunches()
		stop := f.beside(interval, nil)
		f.recorded.Add(2)
		pass(interval)
		stop()
		if n, final := f.counts(); n != 1 || final != 0 {
			t.Errorf("launches: %d normal, %d final; want the running one only", n, final)
		}

		stop = f.beside(interval, nil)
		f.recorded.Add(2)
		pass(interval)
		f.recorded.Add(1)
		stop()
		if n, final := f.counts(); n != 2 || final != 1 {
			t.Errorf("launches: %d normal, %d final; want a final one for the event recorded last", n, final)
		}
		close(f.exit) // the shippers exit after the test
	})
}

func TestBesideFinalShipperTakesWhatIsLeft(t *testing.T) {
	f := newFakeLaunches()
	// An interval longer than the test: only the final launch can happen.
	stop := f.beside(time.Hour, nil)
	f.recorded.Add(5)
	stop()
	if n, final := f.counts(); n != 0 || final != 1 {
		t.Errorf("launches: %d normal, %d final; want the final one only", n, final)
	}
}

func TestBesideBacksOffAfterFailureAndWarnsOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const interval = time.Second
		log, logged := captureLog()
		f := newFakeLaunches()
		stop := f.beside(interval, log)
		for i := 1; i <= 3; i++ {
			f.recorded.Add(1)
			pass(maxRetryWait + interval) // past any backoff
			if n, _ := f.counts(); n != i {
				t.Fatalf("%d shippers launched, want %d", n, i)
			}
			f.exit <- errors.New("API unreachable")
		}
		synctest.Wait()
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
	})
}

func TestBesideBackoffDelaysTheNextLaunch(t *testing.T) {
	f := newFakeLaunches()
	b := &beside{o: SideOptions{Interval: time.Second, Recorded: f.recorded.Load, Launch: f.launch, Logger: slog.New(slog.DiscardHandler)}}
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	f.failTo = errors.New("no executable")
	f.recorded.Add(1)
	if b.launch(now) != nil {
		t.Fatal("a launch that failed to start has an outcome to wait for")
	}
	f.failTo = nil
	if b.launch(now.Add(time.Millisecond)) != nil {
		t.Fatalf("launched again %v after a failure", time.Millisecond)
	}
	exited := b.launch(now.Add(maxRetryWait + time.Second))
	if n, _ := f.counts(); n != 1 || exited == nil {
		t.Fatalf("no launch once the backoff was over")
	}
	f.exit <- nil
	if err := <-exited; err != nil {
		t.Errorf("outcome %v, want the shipper's", err)
	}
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
