//go:build !linux

package monitor

import "os/exec"

// setSysProcAttr has nothing to add where there is no parent-death signal;
// the shutdown ladder in Run stops the server instead.
func setSysProcAttr(cmd *exec.Cmd) {}
