package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// proc is one variant's running process: the benchmark writes requests to
// its stdin and reads the answers from its stdout, like an MCP client.
type proc struct {
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	out    *bufio.Reader
	stderr *tailBuffer
	req    []byte
	nextID int
	// trips counts the round trips made, handshake included.
	trips int
}

// startProc starts argv with env and makes the MCP handshake through it.
func startProc(ctx context.Context, name string, argv, env []string) (*proc, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = env
	p := &proc{name: name, cmd: cmd, stderr: &tailBuffer{max: 8 << 10}}
	cmd.Stderr = p.stderr
	var err error
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	p.out = bufio.NewReaderSize(stdout, 64<<10)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	if err := p.handshake(); err != nil {
		p.kill()
		return nil, err
	}
	return p, nil
}

func (p *proc) handshake() error {
	init := `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"kilometers-bench","version":"1.0.0"}}}` + "\n"
	if _, err := io.WriteString(p.stdin, init); err != nil {
		return fmt.Errorf("%s: initialize: %w", p.name, err)
	}
	if _, err := p.readLine(); err != nil {
		return fmt.Errorf("%s: initialize: %w", p.name, err)
	}
	p.trips++
	if _, err := io.WriteString(p.stdin, `{"jsonrpc":"2.0","method":"notifications/initialized"}`+"\n"); err != nil {
		return fmt.Errorf("%s: initialized: %w", p.name, err)
	}
	p.nextID = 1
	return nil
}

// requestSize is the size of every tools/call request line: the results
// vary, the requests stay small.
const requestSize = 256

// roundTrip sends one tools/call request and waits for its whole answer,
// which must be resultSize bytes.
func (p *proc) roundTrip(resultSize int) (time.Duration, error) {
	p.req = request(p.req[:0], p.nextID, requestSize)
	p.nextID++
	start := time.Now()
	if _, err := p.stdin.Write(p.req); err != nil {
		return 0, fmt.Errorf("%s: write request: %w", p.name, err)
	}
	n, err := p.readLine()
	elapsed := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("%s: read answer: %w", p.name, err)
	}
	if n != resultSize {
		return 0, fmt.Errorf("%s: answer of %d bytes, want %d", p.name, n, resultSize)
	}
	p.trips++
	return elapsed, nil
}

// readLine consumes one line without keeping it and returns its length,
// newline included.
func (p *proc) readLine() (int, error) {
	n := 0
	for {
		chunk, err := p.out.ReadSlice('\n')
		n += len(chunk)
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		return n, err
	}
}

func request(b []byte, id, size int) []byte {
	const tail = `"}}}` + "\n"
	b = append(b, `{"jsonrpc":"2.0","id":`...)
	b = strconv.AppendInt(b, int64(id), 10)
	b = append(b, `,"method":"tools/call","params":{"name":"echo","arguments":{"text":"`...)
	for pad := size - len(b) - len(tail); pad > 0; pad-- {
		b = append(b, 'y')
	}
	return append(b, tail...)
}

// finish closes the process's stdin (the client hanging up) and waits for
// it to exit. It returns the process's own peak RSS (VmHWM, sampled until
// it exits, so shutdown work counts) and how long the exit took.
func (p *proc) finish(ctx context.Context) (peakKB int64, exit time.Duration, err error) {
	peakKB = vmHWM(p.cmd.Process.Pid)
	done := make(chan error, 1)
	start := time.Now()
	p.stdin.Close()
	go func() { done <- p.cmd.Wait() }()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case werr := <-done:
			exit = time.Since(start)
			if werr != nil {
				return peakKB, exit, fmt.Errorf("%s exited: %w (stderr: %s)", p.name, werr, p.stderr.String())
			}
			return peakKB, exit, nil
		case <-tick.C:
			peakKB = max(peakKB, vmHWM(p.cmd.Process.Pid))
		case <-ctx.Done():
			p.kill()
			return peakKB, 0, ctx.Err()
		}
	}
}

func (p *proc) kill() {
	p.cmd.Process.Kill()
	p.cmd.Wait()
}

// vmHWM reads a process's peak resident set size in KiB from
// /proc/<pid>/status; 0 when it cannot (the process is gone or a zombie).
func vmHWM(pid int) int64 { return procStatus(pid)["VmHWM"] }

// rssSplit is a process's resident set now, in KiB.
type rssSplit struct {
	Anon int64 `json:"anon_kib"`
	File int64 `json:"file_kib"`
}

func rssNow(pid int) rssSplit {
	st := procStatus(pid)
	return rssSplit{Anon: st["RssAnon"], File: st["RssFile"] + st["RssShmem"]}
}

// procStatus reads the kB fields of /proc/<pid>/status.
func procStatus(pid int) map[string]int64 {
	m := map[string]int64{}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return m
	}
	for line := range strings.Lines(string(b)) {
		k, v, ok := strings.Cut(line, ":")
		v, isKB := strings.CutSuffix(strings.TrimSpace(v), " kB")
		if !ok || !isKB {
			continue
		}
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			m[k] = n
		}
	}
	return m
}

// tailBuffer keeps the last max bytes written to it: enough of a
// process's stderr to explain a failure.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = t.b[over:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(bytes.TrimSpace(t.b))
}
