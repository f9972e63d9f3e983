package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// The demo server is a small but honest MCP server built with the official
// SDK: a few tools with real behaviour (one fails with isError, one is slow),
// a resource and a prompt, so the demo's activity and stats have something
// to show.

type addIn struct {
	A float64 `json:"a" jsonschema:"first addend"`
	B float64 `json:"b" jsonschema:"second addend"`
}

type addOut struct {
	Sum float64 `json:"sum"`
}

type echoIn struct {
	Message string `json:"message" jsonschema:"text to echo back"`
}

type readIn struct {
	Path string `json:"path" jsonschema:"path of a file in the demo workspace"`
}

type searchIn struct {
	Query string `json:"query" jsonschema:"words to look for"`
}

var docs = map[string]string{
	"README.md":        "# Demo workspace\nA pretend project the demo assistant browses.\n",
	"notes/todo.md":    "- ship the monitor\n- write the runbook\n",
	"src/main.go":      "package main\n\nfunc main() { println(\"hello\") }\n",
	"docs/overview.md": "Kilometers records every JSON-RPC message between client and server.\n",
}

// newServer builds the demo MCP server.
func newServer() *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "kilometers-demo", Version: "1.0.0"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "add", Description: "Add two numbers."},
		func(ctx context.Context, _ *mcp.CallToolRequest, in addIn) (*mcp.CallToolResult, addOut, error) {
			return nil, addOut{Sum: in.A + in.B}, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "echo", Description: "Echo a message back."},
		func(ctx context.Context, _ *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: in.Message}}}, nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "read_file", Description: "Read a file from the demo workspace."},
		func(ctx context.Context, _ *mcp.CallToolRequest, in readIn) (*mcp.CallToolResult, any, error) {
			text, ok := docs[strings.TrimPrefix(filepath.ToSlash(filepath.Clean(in.Path)), "/")]
			if !ok {
				// A tool failure the model should see: isError, not a protocol error.
				return nil, nil, fmt.Errorf("no such file in the demo workspace: %s", in.Path)
			}
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: text}}}, nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "search_docs", Description: "Search the demo workspace (slow on purpose)."},
		func(ctx context.Context, _ *mcp.CallToolRequest, in searchIn) (*mcp.CallToolResult, any, error) {
			select {
			case <-time.After(time.Duration(20+len(in.Query)%5*10) * time.Millisecond):
			case <-ctx.Done():
				return nil, nil, ctx.Err()
			}
			var hits []string
			for name, text := range docs {
				if strings.Contains(strings.ToLower(text), strings.ToLower(in.Query)) {
					hits = append(hits, name)
				}
			}
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: fmt.Sprintf("%d matches: %s", len(hits), strings.Join(hits, ", "))}}}, nil, nil
		})
	s.AddResource(&mcp.Resource{URI: "demo://readme", Name: "readme", MIMEType: "text/markdown"},
		func(ctx context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
			return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: "demo://readme", MIMEType: "text/markdown", Text: docs["README.md"]}}}, nil
		})
	return s
}

// Serve runs the built-in demo server on in/out until the client hangs up.
func Serve(ctx context.Context, in io.ReadCloser, out io.WriteCloser) error {
	err := newServer().Run(ctx, &mcp.IOTransport{Reader: in, Writer: out})
	if err == nil || errors.Is(err, io.EOF) || errors.Is(err, context.Canceled) || errors.Is(err, mcp.ErrConnectionClosed) {
		return nil
	}
	return err
}
