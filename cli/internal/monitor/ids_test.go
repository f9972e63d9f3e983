package monitor

import (
	"sync"
	"testing"

	"github.com/google/uuid"
)

// The events' ids are what the API deduplicates on: every one must be a
// UUIDv7 of its own, from any number of goroutines.
func TestRuntimeRandFillsEveryByte(t *testing.T) {
	for _, n := range []int{0, 1, 7, 8, 9, 16, 33} {
		// Two reads of n bytes agree on a byte with odds 1/256: all of
		// them agreeing means bytes left unwritten.
		a, b := make([]byte, n), make([]byte, n)
		for i := 0; i < 3 && n > 0; i++ {
			runtimeRand{}.Read(a)
			runtimeRand{}.Read(b)
			same := 0
			for j := range a {
				if a[j] == b[j] {
					same++
				}
			}
			if same < n {
				break
			}
			if i == 2 {
				t.Errorf("Read of %d bytes: the same %x three times", n, a)
			}
		}
	}
}

func TestEventIDsAreDistinctUUIDv7s(t *testing.T) {
	const goroutines, each = 4, 5000
	seen := make(map[string]bool, goroutines*each)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			ids := make([]string, each)
			for i := range ids {
				ids[i] = eventID()
			}
			mu.Lock()
			defer mu.Unlock()
			for _, id := range ids {
				u, err := uuid.Parse(id)
				if err != nil || u.Version() != 7 || u.Variant() != uuid.RFC4122 {
					t.Errorf("id %q: version %v, variant %v, err %v", id, u.Version(), u.Variant(), err)
				}
				if seen[id] {
					t.Errorf("id %q made twice", id)
				}
				seen[id] = true
			}
		})
	}
	wg.Wait()
}
