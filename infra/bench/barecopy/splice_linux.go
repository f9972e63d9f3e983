package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// pipe makes the child's stdio pipes. The splice copy wants them blocking,
// so each splice waits in the kernel instead of in Go's poller.
func pipe(blocking bool) (r, w *os.File, err error) {
	if !blocking {
		return os.Pipe()
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return nil, nil, err
	}
	return os.NewFile(uintptr(p[0]), "|0"), os.NewFile(uintptr(p[1]), "|1"), nil
}

// spliceCopy moves src to dst inside the kernel until src ends; both must
// be pipes (splice needs a pipe on one side, and this one takes no detour
// through a pipe of its own).
func spliceCopy(dst io.Writer, src io.Reader) error {
	in, ok1 := src.(*os.File)
	out, ok2 := dst.(*os.File)
	if !ok1 || !ok2 {
		return errors.New("-splice needs files")
	}
	for {
		n, err := unix.Splice(int(in.Fd()), nil, int(out.Fd()), nil, 1<<20, unix.SPLICE_F_MOVE)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
	}
}

// teeCopy is spliceCopy with a capture: each piece is first duplicated
// with tee(2) into a pipe that a reader drains into user space, as a
// monitor's capture side would, then moved on with splice(2). The tee
// never waits: when the capture pipe is full the piece goes on uncaptured.
// It measures what a zero-copy relay with a capture costs (-tee).
func teeCopy(dst io.Writer, src io.Reader) error {
	in, ok1 := src.(*os.File)
	out, ok2 := dst.(*os.File)
	if !ok1 || !ok2 {
		return errors.New("-tee needs files")
	}
	capR, capW, err := pipe(true)
	if err != nil {
		return err
	}
	defer capW.Close()
	// The largest pipe an unprivileged process may ask for: room for a
	// capture that falls behind by a whole large message.
	unix.FcntlInt(capW.Fd(), unix.F_SETPIPE_SZ, 1<<20)
	go func() {
		io.Copy(io.Discard, struct{ io.Reader }{capR})
		capR.Close()
	}()
	inFD, outFD, capFD := int(in.Fd()), int(out.Fd()), int(capW.Fd())
	// Only the descriptors are used below: the files must not be
	// finalized (and closed) under them.
	defer runtime.KeepAlive(in)
	defer runtime.KeepAlive(out)
	for {
		if _, err := unix.Poll([]unix.PollFd{{Fd: int32(inFD), Events: unix.POLLIN}}, -1); err != nil && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("poll: %w", err)
		}
		n, err := unix.Tee(inFD, capFD, 1<<20, unix.SPLICE_F_NONBLOCK)
		uncaptured := errors.Is(err, unix.EAGAIN)
		switch {
		case uncaptured:
			// The capture pipe is full: what is there now goes on
			// uncaptured, and the relay does not wait.
			n = 1 << 20
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			return fmt.Errorf("tee: %w", err)
		case n == 0:
			return nil // src ended
		}
		// The teed bytes are in src already: moving them never waits for
		// more input.
		for n > 0 {
			m, err := unix.Splice(inFD, nil, outFD, nil, int(n), unix.SPLICE_F_MOVE)
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if err != nil {
				return fmt.Errorf("splice: %w", err)
			}
			if m == 0 {
				return nil
			}
			if n -= m; uncaptured {
				break
			}
		}
	}
}
