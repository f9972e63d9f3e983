// Command echoserver is an MCP-like server reduced to its I/O, for the
// monitor benchmark: it reads JSON-RPC lines and answers every request with
// a result whose line is RESULT-SIZE bytes (newline included);
// notifications get no answer. It answers initialize with a real
// initialize result so a monitor in front of it sees a proper session.
//
//	echoserver RESULT-SIZE [text|rows]
//
// The result is one text block of plain bytes (text, the default: the
// cheapest a monitor can meet), or structured content of JSON rows (rows:
// keys, numbers and literals throughout, what a query tool returns and the
// costliest for a scanner per byte).
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
)

func main() {
	if len(os.Args) < 2 || len(os.Args) > 3 {
		fmt.Fprintln(os.Stderr, "usage: echoserver RESULT-SIZE [text|rows]")
		os.Exit(2)
	}
	result := echoResult
	if len(os.Args) == 3 {
		switch os.Args[2] {
		case "text":
		case "rows":
			result = rowsResult
		default:
			fmt.Fprintln(os.Stderr, "echoserver: unknown result shape:", os.Args[2])
			os.Exit(2)
		}
	}
	size, err := strconv.Atoi(os.Args[1])
	if err != nil || size < 0 {
		fmt.Fprintln(os.Stderr, "echoserver: bad result size:", os.Args[1])
		os.Exit(2)
	}
	if err := serve(os.Stdin, os.Stdout, size, result); err != nil {
		fmt.Fprintln(os.Stderr, "echoserver:", err)
		os.Exit(1)
	}
}

func serve(in io.Reader, out io.Writer, resultSize int, result func([]byte, json.RawMessage, int) []byte) error {
	r := bufio.NewReaderSize(in, 64<<10)
	var resp []byte
	// Answers differ only in their id, so each is built once per id length
	// and copied after that: a server that had to build 1 MiB byte by byte
	// for every call spent more CPU per round trip than any wrapper, on the
	// two CPUs the wrappers are measured on, and made the round trip mostly
	// its own work.
	tails := map[int][]byte{}
	for {
		line, err := r.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			var msg struct {
				ID     json.RawMessage `json:"id"`
				Method string          `json:"method"`
			}
			if jerr := json.Unmarshal(line, &msg); jerr != nil {
				return fmt.Errorf("decode request: %w", jerr)
			}
			if msg.ID != nil && msg.Method != "" {
				if msg.Method == "initialize" {
					resp = initializeResult(resp[:0], msg.ID)
				} else {
					tail, ok := tails[len(msg.ID)]
					if !ok {
						full := result(nil, msg.ID, resultSize)
						tail = full[len(resultHead)+len(msg.ID):]
						tails[len(msg.ID)] = tail
					}
					resp = append(append(append(resp[:0], resultHead...), msg.ID...), tail...)
				}
				// One write per answer, as a server that flushes each
				// message does.
				if _, werr := out.Write(resp); werr != nil {
					return fmt.Errorf("write response: %w", werr)
				}
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read request: %w", err)
		}
	}
}

func initializeResult(b []byte, id json.RawMessage) []byte {
	b = append(b, resultHead...)
	b = append(b, id...)
	return append(b, `,"result":{"protocolVersion":"2025-06-18","capabilities":{"tools":{}},"serverInfo":{"name":"bench-echo","version":"1.0.0"}}}`+"\n"...)
}

// resultHead opens every answer, up to its id.
const resultHead = `{"jsonrpc":"2.0","id":`

// echoResult appends a tools/call result padded so the whole line,
// newline included, is size bytes (or as small as it can be).
func echoResult(b []byte, id json.RawMessage, size int) []byte {
	const head, tail = `,"result":{"content":[{"type":"text","text":"`, `"}],"isError":false}}` + "\n"
	b = append(b, resultHead...)
	b = append(b, id...)
	b = append(b, head...)
	for pad := size - len(b) - len(tail); pad > 0; pad-- {
		b = append(b, 'x')
	}
	return append(b, tail...)
}

// rowsResult appends a tools/call result whose structured content is rows
// of small values, padded so the whole line, newline included, is size
// bytes (or as small as it can be).
func rowsResult(b []byte, id json.RawMessage, size int) []byte {
	const head, tail = `,"result":{"structuredContent":{"rows":[`, `]},"isError":false}}` + "\n"
	const padHead, padTail = `{"pad":"`, `"}`
	b = append(b, resultHead...)
	b = append(b, id...)
	b = append(b, head...)
	for i := 0; ; i++ {
		n := len(b)
		b = append(b, `{"row":`...)
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, `,"score":-1.5e3,"ok":true,"tag":null,"name":"row"},`...)
		if len(b)+len(padHead)+len(padTail)+len(tail) > size {
			b = b[:n]
			break
		}
	}
	b = append(b, padHead...)
	for pad := size - len(b) - len(padTail) - len(tail); pad > 0; pad-- {
		b = append(b, 'x')
	}
	b = append(b, padTail...)
	return append(b, tail...)
}
