//go:build !windows

package store

import (
	"errors"
	"fmt"
	"syscall"
)

// syncDir makes a directory's entries (a new or renamed file) durable.
//
// It opens the directory with system calls rather than os.Open: an
// *os.File (its cleanup, the poller's checks) took ten frames of stack on
// the timer's fresh goroutine that runs the first sync of each segment,
// which grew that stack, and the runtime's walk of the frames it copied
// made a third of the binary's function tables resident in the monitor
// (docs/performance.md, "The monitor's resident binary").
func syncDir(dir string) error {
	fd, err := retryEINTR(func() (int, error) {
		return syscall.Open(dir, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	})
	if err != nil {
		return fmt.Errorf("sync directory: open %s: %w", dir, err)
	}
	_, err = retryEINTR(func() (int, error) { return 0, syscall.Fsync(fd) })
	syscall.Close(fd)
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// retryEINTR calls f again while a signal interrupts it, as package os
// does for the same calls.
func retryEINTR(f func() (int, error)) (int, error) {
	for {
		n, err := f()
		if !errors.Is(err, syscall.EINTR) {
			return n, err
		}
	}
}
