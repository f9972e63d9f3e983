package output

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"

	"github.com/kilometers-ai/kilometers/cli/internal/cmdutil"
)

// StartPager sends ios.Out through ios.Pager while the command writes, on
// a terminal only; the returned stop waits for the pager to end. When no
// pager is wanted or it cannot start, output goes straight on and stop does
// nothing.
func StartPager(ios *cmdutil.IOStreams) (stop func()) {
	args := strings.Fields(ios.Pager)
	if !ios.OutIsTerminal || len(args) == 0 || args[0] == "cat" {
		return func() {}
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = ios.Out, ios.ErrOut
	cmd.Env = os.Environ()
	if os.Getenv("LESS") == "" {
		// less without -R would show colour codes as text.
		cmd.Env = append(cmd.Env, "LESS=FRX")
	}
	in, err := cmd.StdinPipe()
	if err != nil {
		return func() {}
	}
	if err := cmd.Start(); err != nil {
		return func() {}
	}
	orig := ios.Out
	ios.Out = &pagerWriter{w: in}
	return func() {
		in.Close()
		_ = cmd.Wait() // the pager's exit status is the user's business
		ios.Out = orig
	}
}

// pagerWriter drops what is written after the user quit the pager, so a
// command does not fail with "broken pipe" for it.
type pagerWriter struct {
	w      io.Writer
	closed bool
}

func (p *pagerWriter) Write(b []byte) (int, error) {
	if p.closed {
		return len(b), nil
	}
	n, err := p.w.Write(b)
	if errors.Is(err, syscall.EPIPE) || errors.Is(err, os.ErrClosed) {
		p.closed = true
		return len(b), nil
	}
	return n, err
}
