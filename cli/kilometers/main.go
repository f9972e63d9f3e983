// Command kilometers watches what AI assistants do through their MCP servers.
// It is the package `go install github.com/kilometers-ai/kilometers/cli/kilometers@latest`
// installs: the go command names a binary after its folder.
package main

import (
	"os"

	"github.com/kilometers-ai/kilometers/cli/internal/app"
)

func main() { os.Exit(app.Main()) }
