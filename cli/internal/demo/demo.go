// Package demo is the guided tour behind `make demo`: it wraps a real MCP
// server in `kilometers monitor`, drives a short session with the official
// MCP Go SDK client, then prints what Kilometers recorded. Everything
// happens in a fresh KILOMETERS_HOME so the user's own data is untouched.
//
// It is a program of its own (cli/demo), not a kilometers command, so the
// MCP SDK it needs stays out of the binary that users run in front of every
// server: each monitor's memory is mostly that binary's size.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/kilometers-ai/kilometers/cli/internal/cmdutil"
)

// Options are the demo's inputs.
type Options struct {
	IO *cmdutil.IOStreams
	// Exe is the kilometers binary to run as the monitor.
	Exe string
	// BuiltinServer is the command that runs the built-in demo server; it
	// is used when Server is empty.
	BuiltinServer []string
	// Home is where the demo's events go; empty means a new temporary
	// directory that is kept so the user can look around afterwards.
	Home string
	// Server is the command to wrap; empty means the built-in demo server.
	Server []string
	// Environ is the environment for child processes.
	Environ []string
}

// Run performs the demo.
func Run(ctx context.Context, opts *Options) error {
	out, errOut := opts.IO.Out, opts.IO.ErrOut
	home := opts.Home
	if home == "" {
		var err error
		if home, err = os.MkdirTemp("", "kilometers-demo-"); err != nil {
			return fmt.Errorf("make a demo home: %w", err)
		}
	}
	server := opts.Server
	if len(server) == 0 {
		server = opts.BuiltinServer
	}
	env := demoEnv(opts.Environ, home)

	fmt.Fprintf(errOut, "==> Wrapping %q in kilometers monitor (KILOMETERS_HOME=%s)\n", strings.Join(server, " "), home)
	monitorArgs := append([]string{"monitor", "--"}, server...)
	cmd := exec.CommandContext(ctx, opts.Exe, monitorArgs...)
	cmd.Env = env
	cmd.Stderr = io.Discard // the server's own logs would clutter the demo

	client := mcp.NewClient(&mcp.Implementation{Name: "kilometers-demo-client", Version: "1.0.0"}, nil)
	sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cs, err := client.Connect(sctx, &mcp.CommandTransport{Command: cmd, TerminateDuration: 10 * time.Second}, nil)
	if err != nil {
		return fmt.Errorf("start the monitored server: %w", err)
	}
	init := cs.InitializeResult()
	fmt.Fprintf(errOut, "==> Connected to %s %s (protocol %s)\n", init.ServerInfo.Name, init.ServerInfo.Version, init.ProtocolVersion)

	if err := drive(sctx, cs, errOut, len(opts.Server) == 0); err != nil {
		cs.Close()
		return err
	}
	// Closing the session closes the monitor's stdin; the monitor makes every
	// event durable before it exits, and Close waits for that exit.
	if err := cs.Close(); err != nil && !errors.Is(err, mcp.ErrConnectionClosed) {
		var exitErr *exec.ExitError
		if !errors.As(err, &exitErr) {
			return fmt.Errorf("end the session: %w", err)
		}
	}

	// The limit covers the whole built-in session (about 32 events), so the
	// table starts at the handshake instead of ending in a cursor hint.
	for _, args := range [][]string{{"activity", "--limit", "50"}, {"stats", "--since", "1h"}} {
		fmt.Fprintf(errOut, "\n==> kilometers %s\n", strings.Join(args, " "))
		c := exec.CommandContext(ctx, opts.Exe, args...)
		c.Env, c.Stdout, c.Stderr = env, out, errOut
		if err := c.Run(); err != nil {
			return fmt.Errorf("kilometers %s: %w", args[0], err)
		}
	}
	fmt.Fprintf(errOut, "\nLook around yourself:\n  KILOMETERS_HOME=%s kilometers activity --json\n  KILOMETERS_HOME=%s kilometers stats --json\n", home, home)
	return nil
}

// drive runs a short, varied session. With the built-in server it knows the
// tools; with any other server it lists tools and calls the ones that need no
// arguments or look like echo.
func drive(ctx context.Context, cs *mcp.ClientSession, log io.Writer, builtin bool) error {
	tools, err := cs.ListTools(ctx, nil)
	if err != nil {
		return fmt.Errorf("list tools: %w", err)
	}
	fmt.Fprintf(log, "==> Server offers %d tools\n", len(tools.Tools))
	call := func(name string, args map[string]any) {
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: args})
		switch {
		case err != nil:
			fmt.Fprintf(log, "    %-12s -> protocol error: %v\n", name, err)
		case res.IsError:
			fmt.Fprintf(log, "    %-12s -> tool error\n", name)
		default:
			fmt.Fprintf(log, "    %-12s -> ok\n", name)
		}
	}
	if !builtin {
		for _, t := range tools.Tools {
			if t.Name == "echo" {
				call("echo", map[string]any{"message": "hello from kilometers"})
			}
		}
		if _, err := cs.ListResources(ctx, nil); err != nil {
			fmt.Fprintf(log, "    resources/list -> %v\n", err)
		}
		return nil
	}
	for i := 0; i < 5; i++ {
		call("add", map[string]any{"a": i, "b": i * i})
	}
	call("echo", map[string]any{"message": "hello from kilometers"})
	call("read_file", map[string]any{"path": "README.md"})
	call("read_file", map[string]any{"path": "notes/todo.md"})
	call("read_file", map[string]any{"path": "missing.txt"})   // fails: isError
	call("read_file", map[string]any{"path": "~/.ssh/id_rsa"}) // fails, and looks risky
	call("search_docs", map[string]any{"query": "monitor"})
	call("search_docs", map[string]any{"query": "runbook"})
	call("no_such_tool", map[string]any{}) // fails: JSON-RPC error
	if _, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "demo://readme"}); err != nil {
		return fmt.Errorf("read resource: %w", err)
	}
	return nil
}

// demoEnv keeps the demo local: its own home, and no API settings inherited
// from the user's environment.
func demoEnv(environ []string, home string) []string {
	env := make([]string, 0, len(environ)+1)
	for _, kv := range environ {
		if strings.HasPrefix(kv, "KILOMETERS_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "KILOMETERS_HOME="+home)
}
