package e2e

import (
	"os/exec"
	"syscall"
)

// dieWithTest makes cmd die with the test binary: a test that times out
// panics without running its cleanups, and would leave an API or a sync
// running forever.
func dieWithTest(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
