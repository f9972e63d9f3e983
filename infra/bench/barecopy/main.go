// Command barecopy is the floor any stdio wrapper pays: it starts a command
// and copies its stdin to the child and the child's stdout to its own, with
// io.Copy and nothing else. The monitor benchmark measures
// `kilometers monitor` against it.
//
//	barecopy COMMAND [ARGS...]
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
)

func main() {
	code, err := run(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "barecopy:", err)
	}
	os.Exit(code)
}

func run(args []string) (int, error) {
	if len(args) == 0 {
		return 2, errors.New("usage: barecopy COMMAND [ARGS...]")
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return 1, fmt.Errorf("stdin pipe: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return 1, fmt.Errorf("stdout pipe: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return 127, fmt.Errorf("start: %w", err)
	}
	// The stdin copy is not waited for: once the child is gone, nothing
	// reads what is left.
	go func() {
		io.Copy(stdin, os.Stdin)
		stdin.Close()
	}()
	if _, err := io.Copy(os.Stdout, stdout); err != nil {
		return 1, fmt.Errorf("copy stdout: %w", err)
	}
	err = cmd.Wait()
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		return exitErr.ExitCode(), nil
	}
	if err != nil {
		return 1, fmt.Errorf("wait: %w", err)
	}
	return 0, nil
}
