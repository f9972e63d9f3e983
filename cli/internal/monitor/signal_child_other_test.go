//go:build !unix

package monitor_test

import (
	"fmt"
	"os"
)

func runSignalChild() int {
	fmt.Fprintln(os.Stderr, "signals are not forwarded on this platform")
	return 2
}
