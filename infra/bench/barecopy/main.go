// Command barecopy is the floor any stdio wrapper pays: it starts a command
// and copies its stdin to the child and the child's stdout to its own, with
// io.CopyBuffer and nothing else. The monitor benchmark measures
// `kilometers monitor` against it.
//
//	barecopy [-splice|-tee] COMMAND [ARGS...]
//
// With -splice (Linux, stdio that are pipes) it moves the bytes with
// splice(2) instead, never through its own memory: the physical limit of a
// wrapper, reported beside the floor. With -tee it also duplicates every
// piece with tee(2) into a pipe that a reader drains into user space: what
// a zero-copy relay with a capture side would cost.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
)

// bufSize is what one read may take: a Linux pipe's whole capacity, as the
// monitor reads. io.Copy's own 32 KiB would cost this floor twice the
// system calls the monitor makes for a large message.
const bufSize = 64 << 10

func main() {
	code, err := run(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "barecopy:", err)
	}
	os.Exit(code)
}

func run(args []string) (int, error) {
	mode := ""
	if len(args) > 0 && (args[0] == "-splice" || args[0] == "-tee") {
		mode, args = args[0], args[1:]
	}
	useSplice := mode != ""
	if len(args) == 0 {
		return 2, errors.New("usage: barecopy [-splice|-tee] COMMAND [ARGS...]")
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stderr = os.Stderr
	copyFn := func(dst io.Writer, src io.Reader) error {
		_, err := io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{src}, make([]byte, bufSize))
		return err
	}
	switch mode {
	case "-splice":
		copyFn = spliceCopy
	case "-tee":
		copyFn = teeCopy
	}
	stdinR, stdinW, err := pipe(useSplice)
	if err != nil {
		return 1, fmt.Errorf("stdin pipe: %w", err)
	}
	stdoutR, stdoutW, err := pipe(useSplice)
	if err != nil {
		return 1, fmt.Errorf("stdout pipe: %w", err)
	}
	cmd.Stdin, cmd.Stdout = stdinR, stdoutW
	if err := cmd.Start(); err != nil {
		return 127, fmt.Errorf("start: %w", err)
	}
	stdinR.Close()
	stdoutW.Close()
	// The stdin copy is not waited for: once the child is gone, nothing
	// reads what is left.
	go func() {
		copyFn(stdinW, os.Stdin)
		stdinW.Close()
	}()
	if err := copyFn(os.Stdout, stdoutR); err != nil {
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
