package monitor

import (
	"sync"
	"testing"

	"github.com/google/uuid"
)

// The events' ids are what the API deduplicates on: every one must be a
// UUIDv7 of its own, from any number of goroutines and from two sessions
// (two streams seeded apart).
func TestEventIDsAreDistinctUUIDv7s(t *testing.T) {
	const goroutines, each = 4, 5000
	seen := make(map[string]bool, 2*goroutines*each)
	var mu sync.Mutex
	for range 2 {
		next := eventIDs()
		var wg sync.WaitGroup
		for range goroutines {
			wg.Go(func() {
				ids := make([]string, each)
				for i := range ids {
					ids[i] = next()
				}
				mu.Lock()
				defer mu.Unlock()
				for _, id := range ids {
					u, err := uuid.Parse(id)
					if err != nil || u.Version() != 7 || u.Variant() != uuid.RFC4122 {
						t.Fatalf("id %q: version %v, variant %v, err %v", id, u.Version(), u.Variant(), err)
					}
					if seen[id] {
						t.Fatalf("id %q made twice", id)
					}
					seen[id] = true
				}
			})
		}
		wg.Wait()
	}
}
