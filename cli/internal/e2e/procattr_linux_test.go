package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
)

// dieWithTest makes cmd die with the test binary: a test that times out
// panics without running its cleanups, and would leave an API or a sync
// running forever.
func dieWithTest(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// shippersOf lists the background shippers (`kilometers sync
// --background`) working on the store in home, by their command lines and
// environments in /proc.
func shippersOf(home string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(cmdline, []byte("\x00sync\x00--background")) {
			continue
		}
		environ, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil || !bytes.Contains(append([]byte{0}, environ...), []byte("\x00KILOMETERS_HOME="+home+"\x00")) {
			continue
		}
		pids = append(pids, pid)
	}
	return pids
}

const canFindShippers = true
