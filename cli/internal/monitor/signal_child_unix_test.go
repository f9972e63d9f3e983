//go:build unix

package monitor_test

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// runSignalChild says it is ready, then reports the first signal it gets
// and exits with 40 + its number.
func runSignalChild() int {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	fmt.Println("ready")
	sig := <-sigs
	fmt.Printf("got %s\n", sig)
	return 40 + int(sig.(syscall.Signal))
}
