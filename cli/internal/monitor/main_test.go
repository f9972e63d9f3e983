package monitor_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// childEnv makes the test binary act as a server instead of running tests,
// so process tests need no other binaries (the MCP SDK's own pattern).
const (
	childEnv     = "KILOMETERS_MONITOR_TEST_CHILD"
	childExitEnv = "KILOMETERS_MONITOR_TEST_EXIT"
	// echoDescEnv changes the echo tool's description: a server that
	// changed a tool between sessions.
	echoDescEnv = "KILOMETERS_MONITOR_TEST_ECHO_DESCRIPTION"
	serverName  = "monitor-test-server"
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(runChild(mode))
	}
	os.Exit(m.Run())
}

func runChild(mode string) int {
	switch mode {
	case "mcp":
		if err := runMCPServer(); err != nil {
			fmt.Fprintln(os.Stderr, "test server:", err)
			return 1
		}
		return 0
	case "cat":
		// Unbuffered both ways: whatever arrives goes straight back, so the
		// test sees exactly what crossed the monitor, as soon as it did.
		if _, err := io.CopyBuffer(os.Stdout, os.Stdin, make([]byte, 64<<10)); err != nil {
			fmt.Fprintln(os.Stderr, "cat:", err)
			return 1
		}
		return 0
	case "exit":
		fmt.Fprintln(os.Stderr, "server says goodbye on stderr")
		code, _ := strconv.Atoi(os.Getenv(childExitEnv))
		return code
	case "eof":
		n, err := io.Copy(io.Discard, os.Stdin)
		fmt.Printf("eof after %d bytes (%v)\n", n, err)
		return 0
	case "crash":
		return runCrashingServer()
	case "signal":
		return runSignalChild()
	}
	fmt.Fprintln(os.Stderr, "unknown test child mode", mode)
	return 2
}

type echoIn struct {
	Text string `json:"text"`
}

// runMCPServer serves, with the official SDK on stdio, a tool that
// succeeds (echo), one that returns a tool error (fail: isError) and one
// that makes a JSON-RPC error (crash).
func runMCPServer() error {
	s := mcp.NewServer(&mcp.Implementation{Name: serverName, Version: "1.0.0"}, nil)
	desc := "echoes"
	if d := os.Getenv(echoDescEnv); d != "" {
		desc = d
	}
	mcp.AddTool(s, &mcp.Tool{Name: "echo", Description: desc}, func(ctx context.Context, req *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: in.Text}}}, nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "fail", Description: "tool error"}, func(ctx context.Context, req *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, any, error) {
		return nil, nil, errors.New("this tool always fails")
	})
	s.AddTool(&mcp.Tool{Name: "crash", Description: "protocol error", InputSchema: map[string]any{"type": "object"}},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return nil, errors.New("crashed")
		})
	// ask needs input from the user: under MCP 2026-07-28 it answers
	// input_required, and the client repeats the call with the input.
	mcp.AddTool(s, &mcp.Tool{Name: "ask", Description: "asks first"}, func(ctx context.Context, req *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, any, error) {
		if len(req.Params.InputResponses) == 0 {
			return &mcp.CallToolResult{InputRequests: mcp.InputRequestMap{"name": &mcp.ElicitParams{
				Message:         "Your name?",
				RequestedSchema: map[string]any{"type": "object", "properties": map[string]any{"name": map[string]any{"type": "string"}}},
			}}}, nil, nil
		}
		res, ok := req.Params.InputResponses["name"].(*mcp.ElicitResult)
		if !ok {
			return nil, nil, errors.New("no name given")
		}
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: fmt.Sprint("hello ", res.Content["name"])}}}, nil, nil
	})
	return s.Run(context.Background(), &mcp.StdioTransport{})
}

// runCrashingServer answers each request with an empty result until it gets
// the method "crash": then it dies halfway through writing its answer.
func runCrashingServer() int {
	r := bufio.NewReader(os.Stdin)
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			return 0
		}
		var req struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
		}
		if json.Unmarshal(bytes.TrimSpace(line), &req) != nil {
			continue
		}
		if req.Method == "crash" {
			os.Stdout.WriteString(`{"jsonrpc":"2.0","id":`)
			return 70
		}
		fmt.Fprintf(os.Stdout, `{"jsonrpc":"2.0","id":%s,"result":{}}`+"\n", req.ID)
	}
}
