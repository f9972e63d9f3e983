package monitor

import (
	"os/exec"
	"syscall"
)

// setSysProcAttr makes the kernel kill the server if the monitor dies
// without a chance to stop it (SIGKILL, a crash): no orphaned servers.
func setSysProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
