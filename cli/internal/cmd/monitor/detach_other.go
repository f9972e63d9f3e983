//go:build !unix && !windows

package monitor

import "syscall"

func detached() *syscall.SysProcAttr { return nil }
