// Package setup finds the MCP clients' config files on this machine, wraps
// their stdio servers in `kilometers monitor` and undoes it exactly.
//
// Files are edited in place: only the values of an entry's `command` and
// `args` change (and `args` is added when the entry had none), so comments,
// indentation, key order and every field Kilometers does not know survive.
// JSON with comments is edited through github.com/tailscale/hujson; TOML is
// parsed by github.com/pelletier/go-toml/v2 and edited at the byte spans its
// parser reports. The locations and shapes of each client's files are in
// docs/setup.md.
package setup

import (
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// Env is what setup needs to know about the machine. Everything that differs
// between platforms or processes comes through here, so tests can play any
// platform on any other.
type Env struct {
	// GOOS picks the platform's paths ("darwin", "linux", "windows").
	GOOS string
	// UserHome is the user's home directory (os.UserHomeDir).
	UserHome string
	// Getenv reads the environment (APPDATA, XDG_CONFIG_HOME, CODEX_HOME...).
	Getenv func(string) string
	// ProjectDir is where project-scoped files are looked for; empty means
	// none are.
	ProjectDir string
	// Home is the Kilometers home: setup keeps its record and backups there.
	Home string
	// Executable is the absolute path of the kilometers binary that wrapped
	// commands will run.
	Executable string
	// Processes lists the names of running processes, to tell whether a
	// client is running; nil means "cannot tell".
	Processes func() ([]string, error)
	// Now stamps backups.
	Now func() time.Time
}

// NewEnv returns the Env of this process: the real platform, home,
// environment, executable and processes. kmHome is the Kilometers home.
func NewEnv(getenv func(string) string, kmHome string) (Env, error) {
	home, err := os.UserHomeDir()
	if err != nil {
		return Env{}, err
	}
	exe, err := executable()
	if err != nil {
		return Env{}, err
	}
	wd, _ := os.Getwd()
	return Env{
		GOOS: goos(), UserHome: home, Getenv: getenv, ProjectDir: wd, Home: kmHome,
		Executable: exe, Processes: processNames, Now: time.Now,
	}, nil
}

// executable is the path wrapped commands should run: the one the user
// invoked when it is the same file as the running binary (a symlink on PATH
// survives upgrades that move the real binary, as Homebrew's do), else the
// running binary's own path.
func executable() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	return preferredExecutable(os.Args[0], exe), nil
}

func preferredExecutable(argv0, exe string) string {
	p, err := exec.LookPath(argv0)
	if err != nil {
		return exe
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return exe
	}
	a, errA := os.Stat(abs)
	b, errB := os.Stat(exe)
	if errA == nil && errB == nil && os.SameFile(a, b) {
		return abs
	}
	return exe
}

// Format is a config file's syntax.
type Format string

const (
	JSONC Format = "jsonc" // JSON, comments and trailing commas allowed
	TOML  Format = "toml"
)

// Client is an MCP client whose config files setup knows.
type Client struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// Processes are the process names the client runs under.
	Processes []string `json:"-"`
	// RewritesConfig is true for a client that writes its config file back
	// while it runs, so an edit made meanwhile may be lost.
	RewritesConfig bool `json:"-"`
}

// knownClients are the clients setup knows, in the order they are listed.
func knownClients() []Client {
	return []Client{
		{ID: "claude-desktop", Name: "Claude Desktop", Processes: []string{"claude-desktop", "Claude"}},
		{ID: "claude-code", Name: "Claude Code", Processes: []string{"claude"}, RewritesConfig: true},
		{ID: "cursor", Name: "Cursor", Processes: []string{"cursor", "Cursor"}},
		{ID: "vscode", Name: "VS Code", Processes: []string{"code", "Code"}},
		{ID: "windsurf", Name: "Windsurf", Processes: []string{"windsurf", "Windsurf"}},
		{ID: "codex", Name: "Codex", Processes: []string{"codex"}},
		{ID: "zed", Name: "Zed", Processes: []string{"zed", "zed-editor", "Zed"}},
	}
}

// ClientByID finds a client by its ID.
func ClientByID(id string) (Client, bool) {
	for _, c := range knownClients() {
		if c.ID == id {
			return c, true
		}
	}
	return Client{}, false
}

// ClientIDs lists the known IDs, for messages.
func ClientIDs() []string {
	cs := knownClients()
	ids := make([]string, len(cs))
	for i, c := range cs {
		ids[i] = c.ID
	}
	return ids
}

// Scope says whose file it is.
type Scope string

const (
	ScopeUser    Scope = "user"
	ScopeProject Scope = "project"
)

// Location is one config file a client may read.
type Location struct {
	Client string `json:"client"`
	Scope  Scope  `json:"scope"`
	Path   string `json:"path"`
	Format Format `json:"format"`
	// Key is the member (JSON) or table (TOML) that maps server names to
	// server entries.
	Key string `json:"key"`
	// Projects is true for ~/.claude.json, which also holds per-project
	// servers under projects.<dir>.mcpServers.
	Projects bool `json:"-"`
}

// Locations lists every file the known clients read on env's platform,
// present or not, in client order.
func Locations(env Env) []Location {
	p := platform{env}
	var locs []Location
	add := func(client string, scope Scope, file string, f Format, key string) {
		locs = append(locs, Location{Client: client, Scope: scope, Path: file, Format: f, Key: key})
	}
	// Claude Desktop.
	switch env.GOOS {
	case "darwin":
		add("claude-desktop", ScopeUser, p.join(env.UserHome, "Library", "Application Support", "Claude", "claude_desktop_config.json"), JSONC, "mcpServers")
	case "windows":
		add("claude-desktop", ScopeUser, p.join(p.appData(), "Claude", "claude_desktop_config.json"), JSONC, "mcpServers")
		// The Microsoft Store (MSIX) build is sandboxed into its package's
		// folder and reads its file there.
		add("claude-desktop", ScopeUser, p.join(p.localAppData(), "Packages", "Claude_pzs8sxrjxfjjc", "LocalCache", "Roaming", "Claude", "claude_desktop_config.json"), JSONC, "mcpServers")
	default:
		add("claude-desktop", ScopeUser, p.join(p.xdgConfig(), "Claude", "claude_desktop_config.json"), JSONC, "mcpServers")
	}
	// Claude Code: user and local (per-project) scopes share ~/.claude.json.
	locs = append(locs, Location{Client: "claude-code", Scope: ScopeUser, Path: p.join(env.UserHome, ".claude.json"), Format: JSONC, Key: "mcpServers", Projects: true})
	if env.ProjectDir != "" {
		add("claude-code", ScopeProject, p.join(env.ProjectDir, ".mcp.json"), JSONC, "mcpServers")
	}
	// Cursor.
	add("cursor", ScopeUser, p.join(env.UserHome, ".cursor", "mcp.json"), JSONC, "mcpServers")
	if env.ProjectDir != "" {
		add("cursor", ScopeProject, p.join(env.ProjectDir, ".cursor", "mcp.json"), JSONC, "mcpServers")
	}
	// VS Code: the user mcp.json sits beside settings.json in the user
	// settings folder.
	switch env.GOOS {
	case "darwin":
		add("vscode", ScopeUser, p.join(env.UserHome, "Library", "Application Support", "Code", "User", "mcp.json"), JSONC, "servers")
	case "windows":
		add("vscode", ScopeUser, p.join(p.appData(), "Code", "User", "mcp.json"), JSONC, "servers")
	default:
		add("vscode", ScopeUser, p.join(p.xdgConfig(), "Code", "User", "mcp.json"), JSONC, "servers")
	}
	if env.ProjectDir != "" {
		add("vscode", ScopeProject, p.join(env.ProjectDir, ".vscode", "mcp.json"), JSONC, "servers")
	}
	// Windsurf.
	add("windsurf", ScopeUser, p.join(env.UserHome, ".codeium", "windsurf", "mcp_config.json"), JSONC, "mcpServers")
	// Codex: $CODEX_HOME, default ~/.codex; a trusted project may have its own.
	codexHome := env.getenv("CODEX_HOME")
	if codexHome == "" {
		codexHome = p.join(env.UserHome, ".codex")
	}
	add("codex", ScopeUser, p.join(codexHome, "config.toml"), TOML, "mcp_servers")
	if env.ProjectDir != "" {
		add("codex", ScopeProject, p.join(env.ProjectDir, ".codex", "config.toml"), TOML, "mcp_servers")
	}
	// Zed: ~/.config/zed on macOS too; XDG on Linux; %APPDATA%\Zed on Windows.
	switch env.GOOS {
	case "windows":
		add("zed", ScopeUser, p.join(p.appData(), "Zed", "settings.json"), JSONC, "context_servers")
	case "darwin":
		add("zed", ScopeUser, p.join(env.UserHome, ".config", "zed", "settings.json"), JSONC, "context_servers")
	default:
		add("zed", ScopeUser, p.join(p.xdgConfig(), "zed", "settings.json"), JSONC, "context_servers")
	}
	if env.ProjectDir != "" {
		add("zed", ScopeProject, p.join(env.ProjectDir, ".zed", "settings.json"), JSONC, "context_servers")
	}
	return locs
}

func (env Env) getenv(k string) string {
	if env.Getenv == nil {
		return ""
	}
	return env.Getenv(k)
}

// platform builds env.GOOS's paths whatever the platform this runs on.
type platform struct{ env Env }

func (p platform) join(elem ...string) string {
	if p.env.GOOS != "windows" {
		return path.Join(elem...)
	}
	parts := make([]string, 0, len(elem))
	for i, e := range elem {
		e = strings.ReplaceAll(e, "/", `\`)
		if i > 0 {
			e = strings.Trim(e, `\`)
		} else {
			e = strings.TrimRight(e, `\`)
		}
		if e != "" {
			parts = append(parts, e)
		}
	}
	return strings.Join(parts, `\`)
}

func (p platform) xdgConfig() string {
	// The XDG spec says a relative value is to be ignored.
	if d := p.env.getenv("XDG_CONFIG_HOME"); d != "" && path.IsAbs(d) {
		return d
	}
	return p.join(p.env.UserHome, ".config")
}

func (p platform) appData() string {
	if d := p.env.getenv("APPDATA"); d != "" {
		return d
	}
	return p.join(p.env.UserHome, "AppData", "Roaming")
}

func (p platform) localAppData() string {
	if d := p.env.getenv("LOCALAPPDATA"); d != "" {
		return d
	}
	return p.join(p.env.UserHome, "AppData", "Local")
}
