package testenv

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
)

// CanFindShippers says whether Shippers works here.
const CanFindShippers = true

// Shippers lists the background shippers (`kilometers sync --background`)
// running for the store in home, found by their command lines and
// environments in /proc. Monitors launch them and do not wait for the last
// one, so tests and benchmarks that must not leave them behind, or must
// count what they cost, look for them this way.
func Shippers(home string) []int {
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
