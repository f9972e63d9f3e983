//go:build !unix

package monitor

import (
	"errors"
	"os"
	"os/exec"
)

// caughtSignals: Windows cannot send a console interrupt to one process,
// and the console already delivers Ctrl-C to the server too, so nothing is
// forwarded; the monitor still catches os.Interrupt so that it outlives
// the server and reports its exit code.
func caughtSignals() []os.Signal { return []os.Signal{os.Interrupt} }

const canForward = false

func brokenPipe() []os.Signal { return nil }

// terminate stops the server; there is no gentler signal here.
func terminate(p *os.Process) error { return p.Kill() }

func exitCode(err error, st *os.ProcessState) int {
	if st == nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			return 1
		}
		st = ee.ProcessState
	}
	return st.ExitCode()
}
