package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kilometers-ai/kilometers/shared/event"
)

// blockingHook returns a hook that, for the ids it is told to hold, waits
// until release is closed, and reports each id it was called with.
func blockingHook(hold func(id string) bool, release <-chan struct{}, called chan<- string) func(string) error {
	return func(id string) error {
		if hold(id) {
			called <- id
			<-release
		}
		return nil
	}
}

func recordN(t *testing.T, w *Writer, sid string, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		if err := w.Record(context.Background(), []event.Event{testEvent(sid, fmt.Sprint(sid, i), i, baseTime)}); err != nil {
			t.Fatalf("Record %d: %v", i, err)
		}
	}
}

func mustWriter(t *testing.T, s *Store, sid string) *Writer {
	t.Helper()
	w, err := s.NewWriter(context.Background(), sid)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// closeAsync runs w.Close in the background and hands back its answer.
func closeAsync(w *Writer) <-chan error {
	done := make(chan error, 1)
	go func() { done <- w.Close() }()
	return done
}

// stillWaiting fails the test if done holds an answer once every other
// goroutine of the synctest bubble is blocked.
func stillWaiting(t *testing.T, done <-chan error, what string) {
	t.Helper()
	synctest.Wait()
	select {
	case err := <-done:
		t.Fatalf("%s returned (%v)", what, err)
	default:
	}
}

// sealedEvents is the event count of every sealed segment's index, and
// how many segments have none.
func sealedEvents(t *testing.T, s *Store) (events int64, unsealed int) {
	t.Helper()
	segs, err := s.segments()
	if err != nil {
		t.Fatal(err)
	}
	for _, sg := range segs {
		m, err := s.readMeta(sg.id)
		if err != nil {
			unsealed++
			continue
		}
		events += m.Events
	}
	return events, unsealed
}

// A rotation does not wait for the old segment's seal, and Close waits
// for a seal in flight: every event is durable, and every segment sealed,
// once Close returns.
func TestCloseWaitsForBackgroundSeal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := mustOpen(t, t.TempDir(), Options{SegmentBytes: 1})
		release := make(chan struct{})
		called := make(chan string, 8)
		first := ""
		s.sealHook = blockingHook(func(id string) bool {
			if first == "" {
				first = id
			}
			return id == first
		}, release, called)
		sid := testID("sess")
		w := mustWriter(t, s, sid)
		if err := w.RecordSession(context.Background(), testSession(sid, "srv")); err != nil {
			t.Fatal(err)
		}
		// SegmentBytes 1: the session line rotated; the next event's rotation
		// waits for nothing either (one seal in flight, below maxSeals).
		<-called
		recordN(t, w, sid, 0, 1)
		done := closeAsync(w)
		stillWaiting(t, done, "Close, while a seal was in flight,")
		close(release)
		if err := <-done; err != nil {
			t.Fatalf("Close: %v", err)
		}
		if got := w.Durable(); got != 1 {
			t.Errorf("Durable() = %d after Close, want 1", got)
		}
		if n, unsealed := sealedEvents(t, s); n != 1 || unsealed != 0 {
			t.Errorf("sealed segments hold %d events with %d unsealed, want 1 and 0", n, unsealed)
		}
	})
}

// At most maxSeals segments seal at once: the rotation after them waits.
func TestRotationWaitsForSealsInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := mustOpen(t, t.TempDir(), Options{SegmentBytes: 1})
		release := make(chan struct{})
		called := make(chan string, 8)
		s.sealHook = blockingHook(func(string) bool { return true }, release, called)
		sid := testID("sess")
		w := mustWriter(t, s, sid)
		recordN(t, w, sid, 0, maxSeals)
		done := make(chan struct{})
		go func() {
			defer close(done)
			e := testEvent(sid, "last", maxSeals, baseTime)
			if err := w.Record(context.Background(), []event.Event{e}); err != nil {
				t.Errorf("Record: %v", err)
			}
		}()
		synctest.Wait()
		select {
		case <-done:
			t.Fatal("a rotation did not wait with maxSeals seals in flight")
		default:
		}
		close(release)
		<-done
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if n, unsealed := sealedEvents(t, s); n != maxSeals+1 || unsealed != 0 {
			t.Errorf("sealed segments hold %d events with %d unsealed, want %d and 0", n, unsealed, maxSeals+1)
		}
	})
}

// A background seal that fails is reported by the writer's next call, and
// the segment it left unsealed (as a crash in the middle of a seal would)
// is recovered whole by the next Open.
func TestFailedBackgroundSeal(t *testing.T) {
	home := t.TempDir()
	s := mustOpen(t, home, Options{SegmentBytes: 1})
	boom := errors.New("seal failed")
	failed := make(chan string, 1)
	var once atomic.Bool
	s.sealHook = func(id string) error {
		if once.CompareAndSwap(false, true) {
			failed <- id
			return boom
		}
		return nil
	}
	sid := testID("sess")
	w := mustWriter(t, s, sid)
	if err := w.RecordSession(context.Background(), testSession(sid, "srv")); err != nil {
		t.Fatal(err)
	}
	id := <-failed
	// Flush waits for the seal and reports it.
	if err := w.Flush(); !errors.Is(err, boom) {
		t.Fatalf("Flush = %v, want the seal's error", err)
	}
	if err := w.Flush(); err != nil {
		t.Fatalf("the seal's error was reported twice: %v", err)
	}
	recordN(t, w, sid, 0, 3)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.readMeta(id); err == nil {
		t.Fatal("the failed seal wrote an index")
	}
	s2 := mustOpen(t, home, Options{})
	m, err := s2.readMeta(id)
	if err != nil {
		t.Fatalf("segment not recovered: %v", err)
	}
	if !m.Recovered || len(m.Sessions) != 1 || m.Sessions[0].ID != sid {
		t.Errorf("recovered index %+v: want recovered with the session", m)
	}
	if n, unsealed := sealedEvents(t, s2); n != 3 || unsealed != 0 {
		t.Errorf("sealed segments hold %d events with %d unsealed, want 3 and 0", n, unsealed)
	}
}

// The timer's fsync runs outside the writer's lock: Record goes on while it
// runs, and only the events flushed before it began count as durable.
func TestTimedSyncDoesNotBlockRecord(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := mustOpen(t, t.TempDir(), Options{SyncInterval: time.Second})
		release := make(chan struct{})
		called := make(chan string, 8)
		hold := true
		s.syncHook = blockingHook(func(string) bool { return hold }, release, called)
		sid := testID("sess")
		w := mustWriter(t, s, sid)
		recordN(t, w, sid, 0, 2)
		time.Sleep(time.Second)
		<-called // the timer's fsync has begun, with 2 events flushed
		recordN(t, w, sid, 2, 3)
		if got := w.Durable(); got != 0 {
			t.Errorf("Durable() = %d before the fsync ended, want 0", got)
		}
		hold = false
		close(release)
		synctest.Wait()
		if got := w.Durable(); got != 2 {
			t.Errorf("Durable() = %d after the first fsync, want 2", got)
		}
		time.Sleep(time.Second) // the timer, set again, syncs the rest
		synctest.Wait()
		if got := w.Durable(); got != 5 {
			t.Errorf("Durable() = %d after the second fsync, want 5", got)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

// Close waits for the timer's fsync in flight, so Durable counts every
// event once it returns.
func TestCloseWaitsForTimedSync(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := mustOpen(t, t.TempDir(), Options{SyncInterval: time.Second})
		release := make(chan struct{})
		called := make(chan string, 8)
		first := true
		s.syncHook = blockingHook(func(string) bool {
			h := first
			first = false
			return h
		}, release, called)
		sid := testID("sess")
		w := mustWriter(t, s, sid)
		recordN(t, w, sid, 0, 2)
		time.Sleep(time.Second)
		<-called
		recordN(t, w, sid, 2, 1)
		done := closeAsync(w)
		stillWaiting(t, done, "Close, while the timer's fsync ran,")
		close(release)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if got := w.Durable(); got != 3 {
			t.Errorf("Durable() = %d after Close, want 3", got)
		}
	})
}

// A timer fsync that fails is reported by the next call, and its events
// are counted durable only by a later sync that succeeds.
func TestFailedTimedSync(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := mustOpen(t, t.TempDir(), Options{SyncInterval: time.Second})
		boom := errors.New("fsync failed")
		fail := true
		s.syncHook = func(string) error {
			if fail {
				fail = false
				return boom
			}
			return nil
		}
		sid := testID("sess")
		w := mustWriter(t, s, sid)
		recordN(t, w, sid, 0, 2)
		time.Sleep(time.Second)
		synctest.Wait()
		if got := w.Durable(); got != 0 {
			t.Errorf("Durable() = %d after a failed fsync, want 0", got)
		}
		err := w.Record(context.Background(), []event.Event{testEvent(sid, "late", 9, baseTime)})
		if !errors.Is(err, boom) {
			t.Fatalf("Record = %v, want the fsync's error", err)
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		if got := w.Durable(); got != 2 {
			t.Errorf("Durable() = %d after Flush, want 2", got)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

// A rotated segment's file entry is synced into its directory before its
// events count as durable, by its first fsync rather than by the Record
// that created it.
func TestNewSegmentDirectorySyncedBeforeDurable(t *testing.T) {
	home := t.TempDir()
	s := mustOpen(t, home, Options{})
	sid := testID("sess")
	w := mustWriter(t, s, sid)
	if !w.seg.dirSync {
		t.Fatal("a new segment is not marked for a directory sync")
	}
	recordN(t, w, sid, 0, 1)
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if w.seg.dirSync {
		t.Error("Flush left the directory unsynced")
	}
	// A directory that cannot be synced fails the sync of a new segment.
	w2, err := s.NewWriter(context.Background(), testID("other"))
	if err != nil {
		t.Fatal(err)
	}
	recordN(t, w2, testID("other"), 0, 1)
	if err := os.Rename(s.Dir(), s.Dir()+".gone"); err != nil {
		t.Fatal(err)
	}
	if err := w2.Flush(); err == nil {
		t.Error("Flush succeeded with the store's directory gone")
	}
	if got := w2.Durable(); got != 0 {
		t.Errorf("Durable() = %d with the directory unsynced, want 0", got)
	}
	os.Rename(s.Dir()+".gone", s.Dir())
	w2.Close()
	w.Close()
}

// A second Close, while the first is still sealing (with the writer's lock
// released for the disk), returns only once the first has sealed.
func TestSecondCloseWaitsForFirst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := mustOpen(t, t.TempDir(), Options{})
		release := make(chan struct{})
		called := make(chan string, 8)
		s.sealHook = blockingHook(func(string) bool { return true }, release, called)
		sid := testID("sess")
		w := mustWriter(t, s, sid)
		recordN(t, w, sid, 0, 2)
		first := closeAsync(w)
		<-called // the first Close is sealing
		second := closeAsync(w)
		stillWaiting(t, second, "the second Close, before the first sealed,")
		close(release)
		if err := <-first; err != nil {
			t.Fatal(err)
		}
		if err := <-second; err != nil {
			t.Fatal(err)
		}
		if got := w.Durable(); got != 2 {
			t.Errorf("Durable() = %d after Close, want 2", got)
		}
	})
}
