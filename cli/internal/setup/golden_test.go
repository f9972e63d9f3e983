package setup

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files")

const (
	unixExe    = "/usr/local/bin/kilometers"
	windowsExe = `C:\Program Files\Kilometers\kilometers.exe`
)

// goldenCases are one file per client format, built from the shapes in the
// clients' documentation: comments, trailing commas, unknown fields, remote
// servers, Windows paths, commands with spaces.
var goldenCases = []struct {
	file string
	loc  Location
	exe  string
}{
	{"claude_desktop_config.json", Location{Client: "claude-desktop", Format: JSONC, Key: "mcpServers"}, unixExe},
	{"claude_desktop_config.windows.json", Location{Client: "claude-desktop", Format: JSONC, Key: "mcpServers"}, windowsExe},
	{"claude.json", Location{Client: "claude-code", Format: JSONC, Key: "mcpServers", Projects: true}, unixExe},
	{"mcp.json", Location{Client: "claude-code", Format: JSONC, Key: "mcpServers"}, unixExe},
	{"cursor_mcp.json", Location{Client: "cursor", Format: JSONC, Key: "mcpServers"}, unixExe},
	{"vscode_mcp.json", Location{Client: "vscode", Format: JSONC, Key: "servers"}, unixExe},
	{"windsurf_mcp_config.json", Location{Client: "windsurf", Format: JSONC, Key: "mcpServers"}, windowsExe},
	{"codex_config.toml", Location{Client: "codex", Format: TOML, Key: "mcp_servers"}, windowsExe},
	{"zed_settings.json", Location{Client: "zed", Format: JSONC, Key: "context_servers"}, unixExe},
}

func TestGolden(t *testing.T) {
	for _, tc := range goldenCases {
		t.Run(tc.file, func(t *testing.T) {
			in, err := os.ReadFile(filepath.Join("testdata", "golden", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			tc.loc.Path = tc.file
			doc, err := parseDocument(tc.loc, in, tc.exe)
			if err != nil {
				t.Fatal(err)
			}
			before := doc.servers()
			listing, _ := json.MarshalIndent(before, "", "  ")
			checkGolden(t, tc.file+".servers", append(listing, '\n'))

			added := map[Ref]bool{}
			var wrapped []Ref
			for _, s := range before {
				if s.Unwrappable != "" || s.Wrapped {
					continue
				}
				a, err := doc.wrap(s.Ref(), tc.exe)
				if err != nil {
					t.Fatalf("wrap %s: %v", s.Name, err)
				}
				added[s.Ref()] = a
				wrapped = append(wrapped, s.Ref())
			}
			out := doc.bytes()
			checkGolden(t, tc.file+".wrapped", out)

			// The written file parses, every wrap runs the original
			// command with its original args, and nothing else moved.
			again, err := parseDocument(tc.loc, out, tc.exe)
			if err != nil {
				t.Fatalf("wrapped file does not parse: %v", err)
			}
			after := again.servers()
			if len(after) != len(before) {
				t.Fatalf("servers: %d before, %d after", len(before), len(after))
			}
			for i, s := range after {
				b := before[i]
				if b.Unwrappable != "" || b.Wrapped {
					if s.Command != b.Command || !equalStrings(s.Args, b.Args) {
						t.Errorf("%s changed: %q %q -> %q %q", s.Name, b.Command, b.Args, s.Command, s.Args)
					}
					continue
				}
				want := wrappedArgs(b.Name, b.Command, b.Args)
				if !s.Wrapped || s.Command != tc.exe || !equalStrings(s.Args, want) {
					t.Errorf("%s: got %q %q, want %q %q", s.Name, s.Command, s.Args, tc.exe, want)
				}
			}
			// Setting up again changes nothing.
			for _, s := range after {
				if s.Unwrappable == "" {
					if _, err := again.wrap(s.Ref(), tc.exe); err != nil {
						t.Fatal(err)
					}
				}
			}
			if !bytes.Equal(again.bytes(), out) {
				t.Errorf("second setup changed the file:\n%s", unifiedDiff(tc.file, out, again.bytes()))
			}
			// Unwrapping every wrap gives back the very bytes.
			for _, r := range wrapped {
				if err := again.unwrap(r, added[r]); err != nil {
					t.Fatalf("unwrap %s: %v", r.Name, err)
				}
			}
			if got := again.bytes(); !bytes.Equal(got, in) {
				t.Errorf("unwrap did not restore the file:\n%s", unifiedDiff(tc.file, in, got))
			}
		})
	}
}

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file:\n%s", name, unifiedDiff(name, want, got))
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
