// Command kilometers watches what AI assistants do through their MCP servers.
// `go build ./cli` builds it; `go install` users take cli/kilometers, the
// same program under the binary name kilometers.
package main

import (
	"os"

	"github.com/kilometers-ai/kilometers/cli/internal/app"
)

func main() { os.Exit(app.Main()) }
