//go:build windows

package monitor

import (
	"os/exec"
	"syscall"
)

// detachedProcess is DETACHED_PROCESS: no console of the monitor's.
const detachedProcess = 0x00000008

func detach(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{CreationFlags: syscall.CREATE_NEW_PROCESS_GROUP | detachedProcess}
}
