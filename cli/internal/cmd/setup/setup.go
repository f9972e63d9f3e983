// Package setup implements `kilometers setup`.
package setup

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/kilometers-ai/kilometers/cli/internal/cmdutil"
	"github.com/kilometers-ai/kilometers/cli/internal/output"
	"github.com/kilometers-ai/kilometers/cli/internal/setup"
)

// Options are the command's flags and dependencies.
type Options struct {
	IO *cmdutil.IOStreams
	// Env describes the machine: paths, executable, running processes.
	Env func() (setup.Env, error)
	// InIsTerminal is true when the answer to the question can come from
	// a person.
	InIsTerminal bool

	All, Undo, DryRun, Yes, JSON bool
	Client, Server, Project      string
}

// NewCmd builds the command; runF replaces the run function in tests.
func NewCmd(f *cmdutil.Factory, runF ...func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{
		IO:           f.IO,
		InIsTerminal: isTerminal(f.IO.In),
		Env: func() (setup.Env, error) {
			home, err := f.Home()
			if err != nil {
				return setup.Env{}, err
			}
			return setup.NewEnv(f.Getenv, home)
		},
	}
	cmd := &cobra.Command{
		Use:   "setup",
		Short: "Put the monitor in front of the MCP servers your clients run",
		Long: `Without flags, list every MCP client config file on this machine (Claude
Desktop, Claude Code, Cursor, VS Code, Windsurf, Codex, Zed; user files and
the current project's), each server in it, its transport and whether it
already runs through the monitor.

With --all or --client, wrap the stdio servers: the entry's command becomes
this kilometers binary and its args 'monitor --name <key> -- <command>
<args>'. Only those two values change; comments, indentation, key order and
every other field are kept. Remote servers (url) are listed and left alone.
Before writing, setup shows a unified diff and asks once (--yes skips the
question, --dry-run only shows the diff); it keeps a copy of each file in
the Kilometers home before its first change and writes atomically.

--undo puts the entries back from setup's own record: a file nobody changed
since is restored byte for byte; in a file the client rewrote meanwhile only
the wrapped entries are unwrapped. Restart the clients afterwards.

The exit status is 0 when every file was handled and 1 when any was refused
(a file that does not parse is never written). Details: docs/setup.md.`,
		Example: `  # What is there, and what is already monitored:
  kilometers setup
  kilometers setup --json | jq '.[] | {path, servers: [.servers[].name]}'

  # See the change, then make it:
  kilometers setup --all --dry-run
  kilometers setup --all

  # One client, one server, no question asked (scripts):
  kilometers setup --client cursor --server github --yes

  # A project's files (.mcp.json, .cursor/mcp.json, .vscode/mcp.json...):
  kilometers setup --client claude-code --project ~/src/shop

  # Put everything back:
  kilometers setup --undo --all --yes`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(runF) > 0 {
				return runF[0](cmd.Context(), opts)
			}
			return Run(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&opts.All, "all", false, "wrap (or with --undo, unwrap) every client's servers")
	fl.StringVar(&opts.Client, "client", "", "only this client: "+strings.Join(setup.ClientIDs(), ", "))
	fl.StringVar(&opts.Server, "server", "", "only the server with this key (with --client)")
	fl.StringVar(&opts.Project, "project", "", "project `folder` whose files to look at (default: the current folder)")
	fl.BoolVar(&opts.Undo, "undo", false, "put back what setup changed")
	fl.BoolVar(&opts.DryRun, "dry-run", false, "show the diff and change nothing")
	fl.BoolVar(&opts.Yes, "yes", false, "change the files without asking")
	fl.BoolVar(&opts.JSON, "json", false, "print JSON")
	cmd.MarkFlagsMutuallyExclusive("all", "client")
	cmd.MarkFlagsMutuallyExclusive("dry-run", "yes")
	return cmd
}

// isTerminal asks the terminal driver: /dev/null is a character device too,
// and a question read from it would be answered by EOF.
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// Run lists, wraps or unwraps.
func Run(ctx context.Context, opts *Options) error {
	if opts.Server != "" && opts.Client == "" {
		return cmdutil.FlagErrorf("--server needs --client")
	}
	if _, ok := setup.ClientByID(opts.Client); opts.Client != "" && !ok {
		return cmdutil.FlagErrorf("unknown client %q (known: %s)", opts.Client, strings.Join(setup.ClientIDs(), ", "))
	}
	changing := opts.All || opts.Client != "" || opts.Undo
	if !changing && (opts.DryRun || opts.Yes) {
		return cmdutil.FlagErrorf("say what to change: --all, --client NAME or --undo")
	}
	env, err := opts.Env()
	if err != nil {
		return err
	}
	filter := setup.Filter{Client: opts.Client, Server: opts.Server}
	if opts.Project != "" {
		dir, err := filepath.Abs(opts.Project)
		if err != nil {
			return err
		}
		env.ProjectDir, filter.Project = dir, dir
	}
	if !changing {
		return list(opts, env, filter)
	}
	return change(opts, env, filter)
}

func list(opts *Options, env setup.Env, filter setup.Filter) error {
	files, err := setup.Scan(env, filter)
	if err != nil {
		return err
	}
	if opts.JSON {
		if files == nil {
			files = []setup.File{}
		}
		return output.JSON(opts.IO, files)
	}
	if len(files) == 0 {
		fmt.Fprintln(opts.IO.Out, "No MCP client config files found (see docs/setup.md for where setup looks).")
		return nil
	}
	w := opts.IO.Out
	for i, f := range files {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "%s (%s) %s\n", f.ClientName, f.Scope, f.Path)
		if f.Error != "" {
			fmt.Fprintf(w, "  cannot read it: %s\n", f.Error)
			continue
		}
		if len(f.Servers) == 0 {
			fmt.Fprintln(w, "  no servers")
			continue
		}
		t := output.NewTable(opts.IO, "  SERVER", "TRANSPORT", "STATUS")
		var why []string
		for _, s := range f.Servers {
			name := s.Ref().String()
			status := "not wrapped"
			switch {
			case s.Wrapped:
				status = "wrapped"
			case s.Unwrappable != "":
				status = "not wrappable"
				why = append(why, fmt.Sprintf("  %s: %s", name, s.Unwrappable))
			}
			t.AddRow("  "+name, s.Transport, status)
		}
		if err := t.Render(); err != nil {
			return err
		}
		for _, line := range why {
			fmt.Fprintln(w, line)
		}
	}
	return nil
}

// FileResult is one file in the --json output of a change.
type FileResult struct {
	Path     string   `json:"path"`
	Client   string   `json:"client"`
	Changed  []string `json:"changed"`
	Notes    []string `json:"notes,omitempty"`
	Diff     string   `json:"diff,omitempty"`
	Applied  bool     `json:"applied"`
	Restored bool     `json:"restored_byte_for_byte,omitempty"`
	// Replanned is true when the file changed between the diff and the
	// write, so what was written is not exactly the diff shown.
	Replanned bool   `json:"changed_meanwhile,omitempty"`
	Backup    string `json:"backup,omitempty"`
	Restart   string `json:"restart,omitempty"`
	Error     string `json:"error,omitempty"`
}

// ChangeOutput is the --json shape of a change.
type ChangeOutput struct {
	OK     bool         `json:"ok"`
	DryRun bool         `json:"dry_run"`
	Undo   bool         `json:"undo"`
	Files  []FileResult `json:"files"`
}

func change(opts *Options, env setup.Env, filter setup.Filter) error {
	changes, err := setup.Plan(env, opts.Undo, filter)
	if err != nil {
		return err
	}
	pending := 0
	for _, c := range changes {
		if c.Pending() {
			pending++
		}
	}
	if !opts.JSON {
		printPlan(opts.IO.Out, changes, opts.Undo)
	}
	apply := pending > 0 && !opts.DryRun
	if apply && !opts.Yes {
		if !opts.InIsTerminal {
			return errors.New("not changing any file: standard input is not a terminal, so setup cannot ask; pass --yes to apply, or --dry-run to only see the diff")
		}
		ok, err := confirm(opts.IO, pending)
		if err != nil {
			return err
		}
		if !ok {
			fmt.Fprintln(opts.IO.ErrOut, "Nothing changed.")
			return &cmdutil.ExitError{Code: 1}
		}
	}
	if apply {
		if err := setup.Apply(env, changes); err != nil {
			return err
		}
	}
	refused := false
	for _, c := range changes {
		if c.Err != nil {
			refused = true
		}
	}
	if opts.JSON {
		out := ChangeOutput{OK: !refused, DryRun: opts.DryRun, Undo: opts.Undo, Files: []FileResult{}}
		for _, c := range changes {
			r := FileResult{Path: c.File.Path, Client: c.File.Client, Changed: []string{}, Notes: c.Notes,
				Diff: c.Diff(), Applied: apply && c.Err == nil && len(c.Changed) > 0, Restored: c.Restored && apply, Replanned: c.Replanned, Backup: c.Backup, Restart: c.RestartNote()}
			for _, ref := range c.Changed {
				r.Changed = append(r.Changed, ref.Name)
			}
			if c.Err != nil {
				r.Error = c.Err.Error()
			}
			out.Files = append(out.Files, r)
		}
		if err := output.JSON(opts.IO, out); err != nil {
			return err
		}
	} else {
		printOutcome(opts, changes, apply, pending)
	}
	if refused {
		return &cmdutil.ExitError{Code: 1}
	}
	return nil
}

func printPlan(w io.Writer, changes []*setup.Change, undo bool) {
	if len(changes) == 0 {
		if undo {
			fmt.Fprintln(w, "Nothing to undo: setup has not changed any file (or the --client has none).")
		} else {
			fmt.Fprintln(w, "No MCP client config files found (see docs/setup.md for where setup looks).")
		}
		return
	}
	for _, c := range changes {
		fmt.Fprintf(w, "%s (%s) %s\n", c.File.ClientName, c.File.Scope, c.File.Path)
		if c.Err != nil {
			fmt.Fprintf(w, "  refused, left unchanged: %v\n", c.Err)
			continue
		}
		for _, n := range c.Notes {
			fmt.Fprintf(w, "  %s\n", n)
		}
		if d := c.Diff(); d != "" {
			fmt.Fprint(w, d)
		} else if len(c.Notes) == 0 {
			fmt.Fprintln(w, "  nothing to change")
		}
	}
}

func confirm(ios *cmdutil.IOStreams, n int) (bool, error) {
	fmt.Fprintf(ios.ErrOut, "Write these changes to %d file(s)? [y/N] ", n)
	line, err := bufio.NewReader(ios.In).ReadString('\n')
	if err != nil && line == "" {
		return false, fmt.Errorf("read the answer: %w", err)
	}
	a := strings.ToLower(strings.TrimSpace(line))
	return a == "y" || a == "yes", nil
}

func printOutcome(opts *Options, changes []*setup.Change, applied bool, pending int) {
	w := opts.IO.Out
	if !applied {
		if opts.DryRun && pending > 0 {
			fmt.Fprintf(w, "Dry run: %d file(s) would change; nothing was written.\n", pending)
		}
		return
	}
	fmt.Fprintln(w)
	restart := false
	for _, c := range changes {
		switch {
		case c.Err != nil:
			fmt.Fprintf(w, "Refused %s: %v\n", c.File.Path, c.Err)
		case len(c.Changed) == 0:
		case c.Undo && c.Restored:
			fmt.Fprintf(w, "Restored %s byte for byte.\n", c.File.Path)
			restart = true
		default:
			verb := "Wrapped"
			if c.Undo {
				verb = "Unwrapped"
			}
			names := make([]string, len(c.Changed))
			for i, r := range c.Changed {
				names[i] = r.String()
			}
			fmt.Fprintf(w, "%s %s in %s (copy of the previous file: %s).\n", verb, strings.Join(names, ", "), c.File.Path, c.Backup)
			restart = true
		}
		if c.Replanned {
			fmt.Fprintf(w, "  %s changed while setup ran (a client wrote it?); the change was worked out again from what is there now.\n", c.File.Path)
		}
		if n := c.RestartNote(); n != "" && c.Err == nil && len(c.Changed) > 0 {
			fmt.Fprintf(w, "  %s\n", n)
		}
	}
	switch {
	case restart && opts.Undo:
		fmt.Fprintln(w, "Restart the clients to load the change.")
	case restart:
		fmt.Fprintln(w, "Restart the clients to load the change. Undo it with 'kilometers setup --undo'.")
	}
}
