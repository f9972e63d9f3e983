//go:build windows

package monitor

import "syscall"

// detachedProcess is DETACHED_PROCESS: no console of the monitor's.
const detachedProcess = 0x00000008

// detached puts a shipper in a process group of its own, with no console.
func detached() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{CreationFlags: syscall.CREATE_NEW_PROCESS_GROUP | detachedProcess}
}
