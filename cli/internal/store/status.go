package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// shipStatusFile records how the last shipping attempt of this store
// ended: background shippers have no one to tell, and `kilometers doctor`
// asks.
const shipStatusFile = "ship.status"

// ShipStatus is how the last shipping attempt ended.
type ShipStatus struct {
	At time.Time `json:"at"`
	// Error is empty when everything pending was delivered.
	Error string `json:"error,omitempty"`
}

// RecordShipStatus notes how a shipping attempt ended (err nil: fine).
func (s *Store) RecordShipStatus(err error) error {
	st := ShipStatus{At: s.now().UTC()}
	if err != nil {
		st.Error = err.Error()
	}
	b, jerr := json.Marshal(st)
	if jerr != nil {
		return fmt.Errorf("record shipping status: %w", jerr)
	}
	return writeFileAtomic(filepath.Join(s.dir, shipStatusFile), b)
}

// LastShipStatus returns how the last shipping attempt ended; nil when none
// was recorded.
func (s *Store) LastShipStatus() (*ShipStatus, error) {
	b, err := os.ReadFile(filepath.Join(s.dir, shipStatusFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read shipping status: %w", err)
	}
	var st ShipStatus
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("read shipping status: %w", err)
	}
	return &st, nil
}

// Usage describes what the store holds.
type Usage struct {
	Dir string `json:"dir"`
	// Segments counts segment files; Live those a monitor is writing now.
	Segments int `json:"segments"`
	Live     int `json:"live"`
	// Bytes is the size of the segment files.
	Bytes int64 `json:"bytes"`
	// Events counts the events of sealed segments (live ones are still
	// growing).
	Events int64 `json:"events"`
	// Unindexed counts sealed segments whose index could not be read:
	// readers scan them whole.
	Unindexed int `json:"unindexed"`
	// Oldest and Newest bound the sealed segments' events.
	Oldest *time.Time `json:"oldest,omitempty"`
	Newest *time.Time `json:"newest,omitempty"`
}

// Usage reports the store's size and shape.
func (s *Store) Usage(ctx context.Context) (Usage, error) {
	u := Usage{Dir: s.dir}
	segs, err := s.segments()
	if err != nil {
		return u, err
	}
	for _, sg := range segs {
		if err := ctx.Err(); err != nil {
			return u, err
		}
		u.Segments++
		u.Bytes += sg.size
		m := sg.meta
		if m == nil {
			if _, err := os.Stat(s.path(sg.id, ".meta")); err == nil {
				u.Unindexed++
			} else {
				u.Live++ // Open recovered dead writers' segments: this one is written now
			}
			continue
		}
		u.Events += m.Events
		if m.Events == 0 {
			continue
		}
		if u.Oldest == nil || m.MinTS.Before(*u.Oldest) {
			t := m.MinTS
			u.Oldest = &t
		}
		if u.Newest == nil || m.MaxTS.After(*u.Newest) {
			t := m.MaxTS
			u.Newest = &t
		}
	}
	return u, nil
}

// Purged says what Purge deleted, and what it had to leave.
type Purged struct {
	Segments int   `json:"segments"`
	Bytes    int64 `json:"bytes"`
	// Busy counts segments left because a monitor is writing them or a
	// shipper holds them.
	Busy int `json:"busy"`
	// SetAside counts the refused batches deleted.
	SetAside int `json:"set_aside"`
}

// Purge deletes every recorded event, the set-aside batches and the
// records of shipping, but no segment a writer or a shipper holds.
func (s *Store) Purge(ctx context.Context) (Purged, error) {
	var p Purged
	segs, err := s.segments()
	if err != nil {
		return p, err
	}
	for _, sg := range segs {
		if err := ctx.Err(); err != nil {
			return p, err
		}
		ok, err := s.deleteSegment(sg, 0)
		if err != nil {
			return p, fmt.Errorf("purge: %w", err)
		}
		if !ok {
			p.Busy++
			continue
		}
		p.Segments++
		p.Bytes += sg.size
	}
	entries, err := os.ReadDir(s.rejectedDir())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return p, fmt.Errorf("purge: %w", err)
	}
	for _, e := range entries {
		if err := os.Remove(filepath.Join(s.rejectedDir(), e.Name())); err != nil {
			return p, fmt.Errorf("purge: %w", err)
		}
		p.SetAside++
	}
	for _, name := range []string{lostFile, shipStatusFile} {
		if err := os.Remove(filepath.Join(s.dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return p, fmt.Errorf("purge: %w", err)
		}
	}
	return p, nil
}
