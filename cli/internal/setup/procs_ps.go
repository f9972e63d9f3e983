//go:build darwin || freebsd || netbsd || openbsd || dragonfly

package setup

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// processNames asks ps for every process's command; an app's is the path
// of its executable (/Applications/Cursor.app/Contents/MacOS/Cursor), so
// the base name is kept too.
func processNames() ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ps", "-A", "-o", "comm=").Output()
	if err != nil {
		return nil, err
	}
	var names []string
	for _, line := range strings.Split(string(out), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			names = append(names, line, filepath.Base(line))
		}
	}
	return names, nil
}
