package setup

import (
	"path"
	"strings"
)

// Transports a server entry can have.
const (
	TransportStdio = "stdio"
	TransportHTTP  = "http"
	TransportSSE   = "sse"
)

// Server is one entry of a config file as setup sees it.
type Server struct {
	// Section is empty for the file's own server map; for ~/.claude.json's
	// per-project entries it is the project's directory.
	Section   string   `json:"section,omitempty"`
	Name      string   `json:"name"`
	Transport string   `json:"transport"`
	Command   string   `json:"command,omitempty"`
	Args      []string `json:"args,omitempty"`
	URL       string   `json:"url,omitempty"`
	// Wrapped is true when the command already runs through
	// `kilometers monitor`.
	Wrapped bool `json:"wrapped"`
	// Unwrappable says why setup leaves the entry alone (a remote server,
	// no command...); empty when it can wrap it.
	Unwrappable string `json:"not_wrappable,omitempty"`
}

// Ref names a server within its file.
type Ref struct {
	Section string `json:"section,omitempty"`
	Name    string `json:"name"`
}

func (s Server) Ref() Ref { return Ref{Section: s.Section, Name: s.Name} }

// remoteReason is what the listing says of a server reached by URL.
const remoteReason = "remote server: the monitor wraps stdio servers; bridge it with `kilometers monitor -- npx -y mcp-remote URL` (docs/setup.md)"

// wrappedArgs is the args of a wrapped entry.
func wrappedArgs(name, command string, args []string) []string {
	return append([]string{"monitor", "--name", name, "--", command}, args...)
}

// takesValue reports whether a monitor flag takes a separate value, so that
// value is not mistaken for the "--" that ends the flags.
func takesValue(flag string) bool {
	switch flag {
	case "--name", "--api-url", "--api-key", "--batch-size", "--flush-interval", "--capture-mode":
		return true
	}
	return false
}

// splitWrapped reports whether command and args are a kilometers monitor
// wrap, and if so the index of the "--" that ends the monitor's flags and
// the index of the original command (dd+1).
func splitWrapped(self, command string, args []string) (dd int, ok bool) {
	if !isKilometers(self, command) || len(args) < 3 || args[0] != "monitor" {
		return 0, false
	}
	for i := 1; i < len(args); i++ {
		switch {
		case args[i] == "--":
			return i, i+1 < len(args)
		case takesValue(args[i]):
			i++
		case !strings.HasPrefix(args[i], "-"):
			return 0, false
		}
	}
	return 0, false
}

// isKilometers reports whether command runs a kilometers binary: this one
// (self), or one named kilometers wherever it is, as the binary may have
// moved since setup ran.
func isKilometers(self, command string) bool {
	if self != "" && command == self {
		return true
	}
	base := path.Base(strings.ReplaceAll(command, `\`, "/"))
	base = strings.TrimSuffix(strings.ToLower(base), ".exe")
	return base == "kilometers"
}

// transportOf classifies an entry by its fields.
func transportOf(typ, url string, hasCommand bool) string {
	switch strings.ToLower(typ) {
	case "sse":
		return TransportSSE
	case "http", "streamable-http", "streamablehttp", "streamable_http":
		return TransportHTTP
	case "stdio":
		return TransportStdio
	}
	if url != "" && !hasCommand {
		if strings.HasSuffix(strings.TrimRight(url, "/"), "/sse") {
			return TransportSSE
		}
		return TransportHTTP
	}
	return TransportStdio
}
