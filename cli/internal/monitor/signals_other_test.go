//go:build !unix

package monitor_test

import "testing"

// testSignals has nothing to check where the monitor forwards no signals
// (see caughtSignals).
func testSignals(t *testing.T, bin string) {}
