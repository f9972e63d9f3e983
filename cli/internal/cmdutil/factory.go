// Package cmdutil holds what every command needs: streams, configuration,
// the clock and the data directory, passed in so tests can replace them.
package cmdutil

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"time"

	"golang.org/x/term"

	"github.com/kilometers-ai/kilometers/cli/internal/config"
	"github.com/kilometers-ai/kilometers/cli/internal/source"
)

// BuildInfo is stamped in by the release build.
type BuildInfo struct {
	Version, Commit, Date string
}

// IOStreams are a command's standard streams and what is known of the
// terminal behind them.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
	// OutIsTerminal is true when Out is a terminal (human output may use
	// widths and colours; otherwise keep it plain).
	OutIsTerminal bool
	// ErrIsTerminal is true when ErrOut is a terminal (progress may be
	// shown there).
	ErrIsTerminal bool
	// InIsTerminal is true when In is a terminal (a question may be asked).
	InIsTerminal bool
	// Width is the terminal's width in columns; 0 when unknown or not a
	// terminal, and then lines are not cut.
	Width int
	// Color is true when a terminal may be sent colour: Out is a terminal,
	// NO_COLOR is unset and TERM is not "dumb".
	Color bool
	// Pager is the command long output is paged through on a terminal
	// ($PAGER, else "less -FRX"); empty for none.
	Pager string
	// TZ is where times shown to people are; nil means time.Local.
	TZ *time.Location
}

// Location is the zone times are shown in to people.
func (s *IOStreams) Location() *time.Location {
	if s.TZ != nil {
		return s.TZ
	}
	return time.Local
}

// SystemIO returns the process's streams with what the environment says of
// the terminal.
func SystemIO(getenv func(string) string) *IOStreams {
	ios := &IOStreams{
		In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr,
		OutIsTerminal: isTerminal(os.Stdout),
		ErrIsTerminal: isTerminal(os.Stderr),
		InIsTerminal:  isTerminal(os.Stdin),
	}
	if ios.OutIsTerminal {
		ios.Width = terminalWidth(os.Stdout, getenv)
		// no-color.org: set and not empty, whatever its value.
		ios.Color = getenv("NO_COLOR") == "" && getenv("TERM") != "dumb"
		ios.Pager = pagerCommand(getenv)
	}
	return ios
}

// pagerCommand is $PAGER, else less -FRX (quit when one screen is
// enough, keep colours, leave the screen as it was).
func pagerCommand(getenv func(string) string) string {
	if p := getenv("PAGER"); p != "" {
		return p
	}
	return "less -FRX"
}

// terminalWidth asks the terminal, else trusts $COLUMNS.
func terminalWidth(f *os.File, getenv func(string) string) int {
	if w, _, err := term.GetSize(int(f.Fd())); err == nil && w > 0 {
		return w
	}
	if n, err := strconv.Atoi(getenv("COLUMNS")); err == nil && n > 0 {
		return n
	}
	return 0
}

// Factory gives commands their dependencies.
type Factory struct {
	IO     *IOStreams
	Build  BuildInfo
	Now    func() time.Time
	Getenv func(string) string
	// Home is the directory that holds all of Kilometers' config and data:
	// $KILOMETERS_HOME when set, else <user data dir>/kilometers.
	Home func() (string, error)
	// Config loads the effective configuration (file < environment);
	// commands apply their own flags on top.
	Config func() (*config.Config, error)
	// Source, when set, replaces OpenSource's choice (tests).
	Source func(ctx context.Context, local bool) (source.Source, error)
}

// UserAgent names this build to the API.
func (f *Factory) UserAgent() string { return "kilometers/" + f.Build.Version }

// OpenSource opens where read commands read recorded data from: the API
// when one is configured, else, or with local, this machine's store (see
// package source).
func (f *Factory) OpenSource(ctx context.Context, local bool) (source.Source, error) {
	if f.Source != nil {
		return f.Source(ctx, local)
	}
	c, err := f.Config()
	if err != nil {
		return nil, err
	}
	// A bad setting stops a read only if the read uses it.
	if err := c.Check(config.ReadKeys(local)...); err != nil {
		return nil, err
	}
	c.Warn(f.IO.ErrOut, "kilometers", config.ReadKeys(local)...)
	return source.Open(ctx, c, source.Options{Local: local, UserAgent: f.UserAgent(), ErrOut: f.IO.ErrOut})
}

// NewFactory returns the Factory for the real process.
func NewFactory(b BuildInfo) *Factory {
	f := &Factory{
		IO:     SystemIO(os.Getenv),
		Build:  b,
		Now:    time.Now,
		Getenv: os.Getenv,
	}
	f.Home = func() (string, error) { return HomeDir(f.Getenv) }
	f.Config = func() (*config.Config, error) {
		home, err := f.Home()
		if err != nil {
			return nil, err
		}
		return config.Load(home, f.Getenv)
	}
	return f
}

// HomeDir resolves Kilometers' home directory.
func HomeDir(getenv func(string) string) (string, error) {
	return homeDir(runtime.GOOS, getenv, os.UserHomeDir)
}

// homeDir is HomeDir on the platform goos, whose user's home is userHome.
func homeDir(goos string, getenv func(string) string, userHome func() (string, error)) (string, error) {
	if h := getenv("KILOMETERS_HOME"); h != "" {
		return filepath.Abs(h)
	}
	if d := getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "kilometers"), nil
	}
	base, err := userHome()
	if err != nil {
		return "", fmt.Errorf("find a home for kilometers data (set KILOMETERS_HOME): %w", err)
	}
	switch {
	case goos == "darwin":
		return filepath.Join(base, "Library", "Application Support", "kilometers"), nil
	case goos == "windows" && getenv("LOCALAPPDATA") != "":
		return filepath.Join(getenv("LOCALAPPDATA"), "kilometers"), nil
	}
	return filepath.Join(base, ".local", "share", "kilometers"), nil
}

// isTerminal asks the terminal itself: /dev/null is a character device
// too, and a question must not be put to it.
func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

// FlagError marks a usage mistake: the command prints it with a hint to see
// --help and exits 2.
type FlagError struct{ Err error }

func (e *FlagError) Error() string { return e.Err.Error() }
func (e *FlagError) Unwrap() error { return e.Err }

// FlagErrorf builds a FlagError.
func FlagErrorf(format string, args ...any) error {
	return &FlagError{Err: fmt.Errorf(format, args...)}
}

// ExitError carries an exit code out of a command without printing anything
// more (the monitor returns the server's exit code this way).
type ExitError struct{ Code int }

func (e *ExitError) Error() string { return fmt.Sprintf("exit status %d", e.Code) }

// IsExit reports whether err is an ExitError and returns its code.
func IsExit(err error) (int, bool) {
	var e *ExitError
	if errors.As(err, &e) {
		return e.Code, true
	}
	return 0, false
}
