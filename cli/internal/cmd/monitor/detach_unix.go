//go:build unix

package monitor

import "syscall"

// detached puts a shipper in a session of its own.
func detached() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setsid: true} }
