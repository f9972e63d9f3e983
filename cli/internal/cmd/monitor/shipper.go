package monitor

import (
	"fmt"
	"os"
	"sync"

	"github.com/kilometers-ai/kilometers/cli/internal/ship"
)

// shipperProcess launches `kilometers sync --background` for the store in
// home, from this very executable. The process gets no stdin and no
// stdout: the monitor's streams are the MCP session's, and not one stray
// byte may reach them. It runs in a session (Unix) or process group
// (Windows) of its own, so the client stopping the monitor does not cut
// short the delivery of the session's last events.
//
// The monitor launches one every ship interval for as long as the session
// lasts, so what does not change between launches (the executable, its
// environment, /dev/null for the three streams) is found once, on the
// first, and each launch is one os.StartProcess: through os/exec each
// opened /dev/null three times and rebuilt the environment, and made a
// megabyte of the binary resident that the relay never touches
// (docs/performance.md, "The monitor's resident binary").
func shipperProcess(home string) ship.Launch {
	var (
		mu   sync.Mutex
		spec *launchSpec // kept once made; a launch that failed to make it is retried by the next
	)
	return func(final bool) (func() error, error) {
		mu.Lock()
		if spec == nil {
			s, err := newLaunchSpec(home)
			if err != nil {
				mu.Unlock()
				return nil, err
			}
			spec = s
		}
		mu.Unlock()
		p, err := os.StartProcess(spec.path, spec.argv, &spec.attr)
		if err != nil {
			return nil, fmt.Errorf("start a background shipper: %w", err)
		}
		if final {
			// Nobody waits: the monitor exits now.
			return nil, p.Release()
		}
		return func() error {
			st, err := p.Wait()
			if err != nil {
				return fmt.Errorf("wait for the background shipper: %w", err)
			}
			if !st.Success() {
				return fmt.Errorf("background shipper exited with %d", st.ExitCode())
			}
			return nil
		}, nil
	}
}

// launchSpec is what every shipper launch of a session shares.
type launchSpec struct {
	path string
	argv []string
	attr os.ProcAttr
}

func newLaunchSpec(home string) (*launchSpec, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find the kilometers executable: %w", err)
	}
	// Kept open for the session: the shippers' three streams.
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("start a background shipper: %w", err)
	}
	return &launchSpec{
		path: self,
		argv: []string{self, "sync", "--background"},
		attr: os.ProcAttr{
			Env:   append(os.Environ(), "KILOMETERS_HOME="+home),
			Files: []*os.File{null, null, null},
			Sys:   detached(),
		},
	}, nil
}
