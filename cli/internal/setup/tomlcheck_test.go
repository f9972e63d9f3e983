package setup

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/pelletier/go-toml/v2"
)

// checkTOML agrees with go-toml's decoder (the reference here, in tests
// only) on which documents are valid, and on where a syntax error is.
func TestCheckTOMLAgreesWithTheDecoder(t *testing.T) {
	docs := []string{
		"",
		"a = 1\nb = 2",
		"a = 1\na = 2",
		"[a]\n[a]",
		"[a.b]\n[a]",
		"[a]\n[a.b]\n[a]",
		"[a]\nb.c = 1\n[a.b]",
		"[a]\nb.c = 1\n[a.b.d]",
		"[a.b]\nx = 1\n[a]\nb.y = 2",
		"a = {b = 1}\n[a]",
		"a = {b = 1}\n[a.c]",
		"a = {b = 1, b = 2}",
		"a = {b.c = 1, b.d = 2}",
		"a.b = 1\na.c = 2",
		"a.b = 1\na.b.c = 2",
		"a = 1\na.b = 2",
		"[[a]]\nx = 1\n[[a]]\nx = 2",
		"[[a]]\n[a]",
		"[a]\n[[a]]",
		"[[a]]\n[a.b]\nx = 1\n[[a]]\n[a.b]\nx = 2",
		"[[a]]\n[a.b]\n[a.b]",
		"a = []\n[[a]]",
		"[x]\ny = 1\n[z]\ny = 1",
		"[mcp_servers.a]\ncommand = \"x\"\n[mcp_servers.a]\nargs = []",
		"[mcp_servers.a]\ncommand = \"x\"\ncommand = \"y\"",
		"[mcp_servers]\na = { command = \"x\" }\n[mcp_servers.a]\nargs = []",
		"[mcp_servers.a.env]\nK = \"v\"\n[mcp_servers.a]\ncommand = \"x\"",
		"'quoted key' = 1\n\"quoted key\" = 2",
		"a = \"unterminated",
		"a = [1, 2",
		"[a\nb = 1",
		"a = 1 b = 2",
		"= 1",
		"a = 1\n\n  [ a . b ]\nc = \"ok\"",
	}
	for _, d := range docs {
		off, err := checkTOML([]byte(d))
		var v map[string]any
		ref := toml.Unmarshal([]byte(d), &v)
		if (err == nil) != (ref == nil) {
			t.Errorf("%q: checkTOML says %v, the decoder %v", d, err, ref)
			continue
		}
		var de *toml.DecodeError
		if err != nil && errors.As(ref, &de) && !strings.Contains(ref.Error(), "defined") && !strings.Contains(ref.Error(), "already") {
			line, col := lineCol([]byte(d), off)
			if rl, rc := de.Position(); rl != line || rc != col {
				t.Errorf("%q: error at %d:%d, the decoder says %d:%d (%v)", d, line, col, rl, rc, ref)
			}
		}
	}
	// And on every generated config.
	for i := range 200 {
		g := &gen{r: rand.New(rand.NewPCG(uint64(i), 3))}
		d := g.toml()
		var v map[string]any
		if _, err := checkTOML([]byte(d)); err != nil || toml.Unmarshal([]byte(d), &v) != nil {
			t.Errorf("generated file: checkTOML %v, decoder %v\n%s", err, toml.Unmarshal([]byte(d), &v), d)
		}
	}
}

func TestTOMLParseErrorPosition(t *testing.T) {
	_, err := parseTOML(Location{Path: "config.toml"}, []byte("[mcp_servers.a]\ncommand = \"x\"\n\n[mcp_servers.a]\n"), "")
	if err == nil || err.Error() != "config.toml:4:2: table mcp_servers.a is defined twice" {
		t.Errorf("got %v", err)
	}
}
