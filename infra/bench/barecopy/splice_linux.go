package main

import (
	"errors"
	"io"
	"os"

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
