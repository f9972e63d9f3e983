// Package monitor runs an MCP server as a child process, relays its stdio
// byte for byte and records every JSON-RPC message that crosses the pipe as
// an event.
//
// The relay is the hot path: each direction is one goroutine that writes
// every chunk on as soon as it is read. Only after the write does the chunk
// go through a framer (newline search, a capped copy of the line's start,
// an incremental JSON scan), which hands finished lines to the capture
// pipeline without ever waiting. Parsing into events, correlation,
// analysis and recording happen on the pipeline's own goroutine; when it
// falls behind, lines are dropped and counted, and the relay is untouched.
//
// The incremental scanner (scan.go) is hand-written because it works a
// chunk at a time: the part of a line past the payload cap is never in
// memory, which is what holds a 64 MiB message to the cap's 256 KiB and the
// monitor under its RSS floor, while the library validators need the
// whole line. On the 1 MiB result of `make bench` it also costs the relay
// goroutine 0.09 ms against encoding/json.Valid's 10 ms (go test -run '^$'
// -bench ScanTwins ./cli/internal/monitor/). It is lax inside strings;
// payloads kept whole are checked with encoding/json.Valid, so the
// library, not the scanner, decides what is recorded as JSON.
package monitor

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/kilometers-ai/kilometers/shared/analysis"
	"github.com/kilometers-ai/kilometers/shared/event"
)

// Exit codes the monitor itself produces, as shells do.
const (
	ExitNotExecutable = 126
	ExitNotFound      = 127
)

// Defaults for Config fields left zero.
const (
	DefaultTerminateGrace = 5 * time.Second
	DefaultCloseTimeout   = 5 * time.Second
	// drainGrace bounds how long the monitor keeps relaying the server's
	// stdout after the server exited: a grandchild may hold it open.
	drainGrace = 2 * time.Second
)

// Config is what Run needs.
type Config struct {
	// Command is the server's command line.
	Command []string
	// Name labels the server's events and session, whatever the server
	// calls itself; empty means the server's serverInfo.name, or the
	// command's base name when it gives none.
	Name string

	Stdin  io.Reader
	Stdout io.Writer
	// Stderr gets the server's stderr and the monitor's own reports; Run
	// serializes writes to it unless it is an *os.File.
	Stderr io.Writer
	// Env is the server's environment; nil means the monitor's.
	Env []string

	// Recorder receives the events; nil records nothing.
	Recorder  Recorder
	SessionID string // a new UUIDv7 when empty
	Host      string
	// Now is the session's clock: when messages were read, when the
	// session started and ended, and how long a reply waits for its
	// request.
	Now    func() time.Time
	Logger *slog.Logger

	// TerminateGrace is how long each step of the shutdown ladder waits
	// (close stdin, then SIGTERM, then SIGKILL).
	TerminateGrace time.Duration
	// CloseTimeout bounds how long the monitor waits, after the server
	// exited, for the last events to become durable.
	CloseTimeout time.Duration
	// PayloadCap is how much of each message is kept for its payload.
	PayloadCap int
	// Analysis configures cost and risk analysis, including the store of
	// tool definitions kept across sessions; nil means
	// analysis.DefaultOptions() with definitions kept within the session.
	Analysis *analysis.Options
	// Warnings are problems worked around before the session started (a
	// bad setting replaced by its default); they go in the session record.
	Warnings []string
}

// Result is how a monitored session ended.
type Result struct {
	// ExitCode is the server's exit code (128+N when killed by signal N),
	// or 126/127 when it could not be started.
	ExitCode int
	// Recorded and Dropped count events.
	Recorded, Dropped int64
}

func (c *Config) defaults() {
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(c.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	if c.Recorder == nil {
		c.Recorder = nopRecorder{}
	}
	if c.TerminateGrace <= 0 {
		c.TerminateGrace = DefaultTerminateGrace
	}
	if c.CloseTimeout <= 0 {
		c.CloseTimeout = DefaultCloseTimeout
	}
	if c.PayloadCap <= 0 {
		c.PayloadCap = DefaultPayloadCap
	}
	if c.Stdin == nil {
		c.Stdin = strings.NewReader("")
	}
}

// Label is the server label used when the server does not name itself.
func Label(name string, command []string) string {
	if name != "" || len(command) == 0 {
		return name
	}
	base := filepath.Base(command[0])
	return strings.TrimSuffix(base, filepath.Ext(base))
}

// Run starts the server, relays until it exits and returns its exit code.
// An error means the monitor itself failed; a server that cannot be
// started is reported on Stderr and in Result.ExitCode (126 or 127).
func Run(ctx context.Context, cfg Config) (Result, error) {
	if len(cfg.Command) == 0 {
		return Result{}, errors.New("no server command")
	}
	switch cfg.Stderr.(type) {
	case nil:
		cfg.Stderr = io.Discard
	case *os.File:
		// The child writes to it directly.
	default:
		// The server's stderr is copied into it by exec's goroutine while
		// the monitor reports on it from others.
		cfg.Stderr = &lockedWriter{w: cfg.Stderr}
	}
	cfg.defaults()
	name := cfg.Command[0]
	path, err := exec.LookPath(name)
	if err != nil && !errors.Is(err, exec.ErrDot) {
		return Result{ExitCode: cantStart(cfg.Stderr, name, err)}, nil
	}

	// Our own pipes, not cmd.StdinPipe/StdoutPipe: the child gets plain
	// file descriptors and Wait does not wait for our copies.
	stdinR, stdinW, err := os.Pipe()
	if err != nil {
		return Result{}, fmt.Errorf("create stdin pipe: %w", err)
	}
	stdoutR, stdoutW, err := os.Pipe()
	if err != nil {
		stdinR.Close()
		stdinW.Close()
		return Result{}, fmt.Errorf("create stdout pipe: %w", err)
	}
	cmd := exec.Command(path, cfg.Command[1:]...)
	cmd.Args[0] = name
	cmd.Stdin, cmd.Stdout, cmd.Stderr, cmd.Env = stdinR, stdoutW, cfg.Stderr, cfg.Env
	setSysProcAttr(cmd)

	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, caughtSignals()...)
	defer signal.Stop(sigs)
	if bp := brokenPipe(); bp != nil {
		ignored := make(chan os.Signal, 1)
		signal.Notify(ignored, bp...)
		defer signal.Stop(ignored)
	}

	if err := cmd.Start(); err != nil {
		stdinR.Close()
		stdinW.Close()
		stdoutR.Close()
		stdoutW.Close()
		return Result{ExitCode: cantStart(cfg.Stderr, name, err)}, nil
	}
	startedAt := cfg.Now()
	// The child has its ends now; ours must go so EOFs can happen.
	stdinR.Close()
	stdoutW.Close()

	sessionID := cfg.SessionID
	if sessionID == "" {
		sessionID = NewID()
	}
	sess := event.Session{ID: sessionID, Server: Label(cfg.Name, cfg.Command), Command: capCommand(cfg.Command),
		Host: capName(cfg.Host), StartedAt: startedAt.UTC(), Warnings: capWarnings(cfg.Warnings)}
	an := analysis.DefaultOptions()
	if cfg.Analysis != nil {
		an = *cfg.Analysis
	}
	pool := newPrefixPool(cfg.PayloadCap, prefixPoolBuffers)
	p := newPipeline(cfg.Recorder, cfg.Logger, cfg.Now, sess, cfg.Name, Label("", cfg.Command), eventID, an, pool)
	p.alerts = cfg.Stderr
	stop := make(chan sessionEnd, 1)
	recorded := make(chan struct{})
	go func() {
		defer close(recorded)
		// Recording outlives a cancelled ctx: the session's end must
		// still be written.
		p.run(context.WithoutCancel(ctx), stop)
	}()

	var closeStdin sync.Once
	closeChildStdin := func() { closeStdin.Do(func() { stdinW.Close() }) }
	go func() {
		fr := newFramer(event.ClientToServer, cfg.PayloadCap, pool, cfg.Now, p.offer)
		if err := relay(stdinW, cfg.Stdin, cfg.Now, fr.write, false); err != nil {
			cfg.Logger.Debug("client to server relay ended", "err", err)
		}
		fr.flush()
		closeChildStdin() // the client's EOF becomes the server's
	}()
	relayed := make(chan struct{})
	go func() {
		defer close(relayed)
		fr := newFramer(event.ServerToClient, cfg.PayloadCap, pool, cfg.Now, p.offer)
		if err := relay(cfg.Stdout, stdoutR, cfg.Now, fr.write, true); err != nil {
			cfg.Logger.Debug("server to client relay ended", "err", err)
		}
		fr.flush()
	}()

	waited := make(chan error, 1)
	exited := make(chan struct{})
	go func() {
		err := cmd.Wait()
		close(exited)
		waited <- err
	}()

	var waitErr error
	done := ctx.Done()
loop:
	for {
		select {
		case sig := <-sigs:
			if canForward {
				if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
					cfg.Logger.Warn("forward signal to server", "signal", sig, "err", err)
				}
			}
		case <-done:
			done = nil
			go shutdown(cmd.Process, closeChildStdin, exited, cfg.TerminateGrace, cfg.Logger)
		case waitErr = <-waited:
			break loop
		}
	}
	code := exitCode(waitErr, cmd.ProcessState)
	endedAt := cfg.Now()
	closeChildStdin()

	select {
	case <-relayed:
	case <-time.After(drainGrace):
		stdoutR.Close() // something else holds the server's stdout open
		<-relayed
	}
	stdoutR.Close()

	stop <- sessionEnd{at: endedAt.UTC(), code: code}
	select {
	case <-recorded:
	case <-time.After(cfg.CloseTimeout):
		fmt.Fprintf(cfg.Stderr, "kilometers monitor: the event store did not finish within %s; events of this session may be lost\n", cfg.CloseTimeout)
	}
	res := Result{ExitCode: code, Recorded: p.recorded.Load(), Dropped: p.dropped.Load()}
	if res.Dropped > 0 {
		fmt.Fprintf(cfg.Stderr, "kilometers monitor: %d events were not recorded (the event store could not keep up or failed); the relay was not affected\n", res.Dropped)
	}
	return res, nil
}

// shutdown stops the server the way MCP clients do: close its stdin, wait,
// SIGTERM, wait, SIGKILL.
func shutdown(proc *os.Process, closeStdin func(), exited <-chan struct{}, grace time.Duration, log *slog.Logger) {
	closeStdin()
	wait := func() bool {
		select {
		case <-exited:
			return true
		case <-time.After(grace):
			return false
		}
	}
	if wait() {
		return
	}
	if err := terminate(proc); err == nil && wait() {
		return
	}
	if err := proc.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		log.Warn("kill server", "err", err)
	}
}

// cantStart reports a server that could not be started and returns the
// shell's exit code for it.
func cantStart(stderr io.Writer, name string, err error) int {
	code, why := ExitNotExecutable, err.Error()
	switch {
	case errors.Is(err, exec.ErrNotFound), errors.Is(err, fs.ErrNotExist):
		code, why = ExitNotFound, "command not found"
	case errors.Is(err, fs.ErrPermission):
		why = "permission denied (not executable)"
	}
	fmt.Fprintf(stderr, "kilometers monitor: cannot start %s: %s\n", name, why)
	return code
}

func capCommand(cmd []string) []string {
	out := make([]string, 0, min(len(cmd), 256))
	for _, a := range cmd[:min(len(cmd), 256)] {
		out = append(out, capName(a))
	}
	return out
}

// capWarnings keeps warnings within what a session may hold.
func capWarnings(ws []string) []string {
	var out []string
	for _, w := range ws[:min(len(ws), event.MaxWarnings)] {
		if w = capText(w, event.MaxErrorMessage); w != "" {
			out = append(out, w)
		}
	}
	return out
}

// NewID returns a new UUIDv7, the form of every session and event id the
// monitor makes. NewV7 cannot fail: crypto/rand never returns an error.
func NewID() string { return uuid.Must(uuid.NewV7()).String() }

// eventID returns a new UUIDv7 for an event. Its random bits come from
// the runtime's generator (math/rand/v2's: ChaCha8, seeded from the
// operating system), as unguessable as NewID's: taking each id's bits
// through crypto/rand put a system call, or the FIPS generator's code, on
// the path of every message.
func eventID() string { return uuid.Must(uuid.NewV7FromReader(runtimeRand{})).String() }

// runtimeRand reads math/rand/v2's generator, which is safe for concurrent
// use.
type runtimeRand struct{}

func (runtimeRand) Read(p []byte) (int, error) {
	var b [8]byte
	for n := 0; n < len(p); n += len(b) {
		binary.LittleEndian.PutUint64(b[:], rand.Uint64())
		copy(p[n:], b[:])
	}
	return len(p), nil
}

// lockedWriter serializes writes to a writer that is not safe for
// concurrent use.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

type nopRecorder struct{}

func (nopRecorder) Record(context.Context, []event.Event) error        { return nil }
func (nopRecorder) RecordSession(context.Context, event.Session) error { return nil }
func (nopRecorder) Close() error                                       { return nil }
