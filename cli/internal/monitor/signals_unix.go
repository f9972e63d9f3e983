//go:build unix

package monitor

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
)

// caughtSignals are the signals the monitor catches; it forwards them all
// to the server.
func caughtSignals() []os.Signal { return []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP} }

const canForward = true

// brokenPipe is the signal to catch so that writing to a client that went
// away fails with EPIPE instead of killing the monitor before it can stop
// the server. Catching (not ignoring) it leaves the server's default alone,
// as exec resets caught signals but not ignored ones.
func brokenPipe() []os.Signal { return []os.Signal{syscall.SIGPIPE} }

// terminate asks the server to stop.
func terminate(p *os.Process) error { return p.Signal(syscall.SIGTERM) }

// exitCode is the server's exit status as a shell reports it: 128+N when
// it was killed by signal N.
func exitCode(err error, st *os.ProcessState) int {
	if st == nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			return 1
		}
		st = ee.ProcessState
	}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return st.ExitCode()
}
