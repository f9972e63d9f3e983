package setup

import (
	"os"
	"path/filepath"
	"strings"
)

// processNames reads the names of running processes from /proc: the
// command name and the base name of argv[0] (Electron apps and node
// scripts show their own name there).
func processNames() ([]string, error) {
	dirs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil {
		return nil, err
	}
	var names []string
	for _, d := range dirs {
		if b, err := os.ReadFile(filepath.Join(d, "comm")); err == nil {
			names = append(names, strings.TrimSpace(string(b)))
		}
		if b, err := os.ReadFile(filepath.Join(d, "cmdline")); err == nil && len(b) > 0 {
			argv0, _, _ := strings.Cut(string(b), "\x00")
			names = append(names, filepath.Base(argv0))
			// node /path/to/claude: the script names the program.
			if filepath.Base(argv0) == "node" {
				rest := strings.Split(string(b), "\x00")
				if len(rest) > 1 && rest[1] != "" {
					names = append(names, filepath.Base(rest[1]))
				}
			}
		}
	}
	return names, nil
}
