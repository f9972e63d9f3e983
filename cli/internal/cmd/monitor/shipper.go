package monitor

import (
	"errors"
	"fmt"
	"os"
	"os/exec"

	"github.com/kilometers-ai/kilometers/cli/internal/ship"
)

// shipperProcess launches `kilometers sync --background` for the store in
// home, from this very executable. The process gets no stdin and no
// stdout: the monitor's streams are the MCP session's, and not one stray
// byte may reach them. It runs in a session (Unix) or process group
// (Windows) of its own, so the client stopping the monitor does not cut
// short the delivery of the session's last events.
func shipperProcess(home string) ship.Launch {
	return func(final bool) (func() error, error) {
		self, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("find the kilometers executable: %w", err)
		}
		cmd := exec.Command(self, "sync", "--background")
		cmd.Env = append(os.Environ(), "KILOMETERS_HOME="+home)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, nil, nil
		detach(cmd)
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("start a background shipper: %w", err)
		}
		if final {
			// Nobody waits: the monitor exits now.
			return nil, cmd.Process.Release()
		}
		return func() error {
			err := cmd.Wait()
			var exit *exec.ExitError
			if errors.As(err, &exit) {
				return fmt.Errorf("background shipper exited with %d", exit.ExitCode())
			}
			return err
		}, nil
	}
}
