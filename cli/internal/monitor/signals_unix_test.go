//go:build unix

package monitor_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"syscall"
	"testing"
)

func testSignals(t *testing.T, bin string) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
			h := newHome(t, bin)
			cmd := h.child("signal")
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			r := bufio.NewReader(stdout)
			if l, err := r.ReadString('\n'); err != nil || l != "ready\n" {
				t.Fatalf("server did not start: %q %v\n%s", l, err, stderr.String())
			}
			// To the monitor alone: only forwarding gets it to the server.
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			rest, _ := io.ReadAll(r)
			code := exitCode(t, cmd.Wait())
			if want := fmt.Sprintf("got %s\n", sig); string(rest) != want || code != 40+int(sig) {
				t.Errorf("server said %q and the monitor exited %d; want %q and %d\n%s", rest, code, want, 40+int(sig), stderr.String())
			}
		})
	}
}
