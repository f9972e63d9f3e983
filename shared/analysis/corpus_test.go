package analysis_test

import (
	"encoding/json"
	"fmt"
	"go/build"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/kilometers-ai/kilometers/shared/analysis"
	"github.com/kilometers-ai/kilometers/shared/event"
)

// corpusDirs are parts of the Go distribution an assistant might read while
// working on a Go service: real code, docs and test data written by people
// who were not thinking of this analyser, with all the passwords, tokens,
// shell snippets and SQL a real code base mentions.
var corpusDirs = []string{"net/http", "os", "database", "encoding", "text", "html", "cmd/go/internal"}

// TestGoSourceFalsePositives replays an assistant reading every text file
// of corpusDirs under GOROOT/src through tools/call read_text_file, as
// @modelcontextprotocol/server-filesystem answers it, and counts alarms.
// None may be high; medium ones must stay rare. Run with -v to see the
// count and each flagged file.
func TestGoSourceFalsePositives(t *testing.T) {
	root := filepath.Join(build.Default.GOROOT, "src")
	r := newReplayer(analysis.NewSession(analysis.DefaultOptions()))
	var total int
	byReason := map[string]int{}
	var flagged []string
	for _, dir := range corpusDirs {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			switch filepath.Ext(path) {
			case ".go", ".md", ".txt", ".json", ".html", ".tmpl":
			default:
				return nil
			}
			body, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			total += 2
			id := total
			req, res := readTextFile(id, path, string(body))
			r.event(t, event.ClientToServer, req)
			e := r.event(t, event.ServerToClient, res)
			if e.RiskLevel() != event.LevelLow {
				rel, _ := filepath.Rel(root, path)
				flagged = append(flagged, fmt.Sprintf("%s: %s %v", rel, e.Risk.Level, e.Risk.Reasons))
				for _, reason := range e.Risk.Reasons {
					byReason[string(e.Risk.Level)+" "+reason]++
				}
				if e.RiskLevel() == event.LevelHigh {
					t.Errorf("%s scored high: %+v", rel, *e.Risk)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("walk the Go source corpus (GOROOT %s): %v", build.Default.GOROOT, err)
		}
	}
	if total < 1000 {
		t.Fatalf("corpus has %d events, want 1000+: is GOROOT/src (%s) complete?", total, root)
	}
	// One medium in 200 reads is the budget: past it, people stop looking.
	if len(flagged)*200 > total {
		t.Errorf("%d of %d events flagged:\n%s", len(flagged), total, strings.Join(flagged, "\n"))
	}
	reasons := make([]string, 0, len(byReason))
	for k, n := range byReason {
		reasons = append(reasons, fmt.Sprintf("%s=%d", k, n))
	}
	sort.Strings(reasons)
	t.Logf("%d of %d events flagged medium or high (%v)", len(flagged), total, reasons)
	for _, f := range flagged {
		t.Log(f)
	}
}

// readTextFile returns a read_text_file call and its answer.
func readTextFile(id int, path, body string) (req, res []byte) {
	req, _ = json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "method": "tools/call",
		"params": map[string]any{"name": "read_text_file", "arguments": map[string]any{"path": path}}})
	res, _ = json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id,
		"result": map[string]any{"content": []any{map[string]any{"type": "text", "text": body}}}})
	return req, res
}
