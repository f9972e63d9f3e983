package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/kilometers-ai/kilometers/cli/internal/store"
)

// TestDamagedStoreIsReported damages a real store the way a disk error
// would (bytes of a segment overwritten in place, its index garbled):
// every command still reads what is readable, says once, in words, on
// stderr, what it could not read, logs nothing raw, and stats --json
// counts it; the index is rebuilt once and for all.
func TestDamagedStoreIsReported(t *testing.T) {
	e := setupNoAPI(t)
	u := e.user(t)
	u.session(t, func(cs *mcp.ClientSession, _ *exec.Cmd) { calls(t, cs, "echo", 20, "hello") })

	segs, err := filepath.Glob(filepath.Join(u.home, "store", "*.jsonl"))
	if err != nil || len(segs) != 1 {
		t.Fatalf("segments %v, %v", segs, err)
	}
	before := activityPage(t, u, "activity", "--json", "--limit", "1000")
	b, err := os.ReadFile(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	// Overwrite the middle of the tenth line, fields and all.
	at := 0
	for range 9 {
		at += bytes.IndexByte(b[at:], '\n') + 1
	}
	copy(b[at+8:], strings.Repeat("\x00", 16))
	if err := os.WriteFile(segs[0], b, 0o600); err != nil {
		t.Fatal(err)
	}
	meta := strings.TrimSuffix(segs[0], ".jsonl") + ".meta"
	if err := os.WriteFile(meta, []byte("{garbage"), 0o600); err != nil {
		t.Fatal(err)
	}

	out, errOut, code := u.run(t, "", "stats", "--json")
	if code != 0 {
		t.Fatalf("stats: exit %d\n%s", code, errOut)
	}
	var st struct {
		Totals struct {
			Events int64 `json:"events"`
		} `json:"totals"`
		Unreadable *store.Unreadable `json:"unreadable"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("stats --json: %v\n%s", err, out)
	}
	if st.Unreadable == nil || st.Unreadable.Lines != 1 || st.Unreadable.IndexesRebuilt != 1 || st.Totals.Events != int64(len(before.Events)-1) {
		t.Errorf("stats --json after the damage: %+v, %d events of %d", st.Unreadable, st.Totals.Events, len(before.Events))
	}
	checkOneReport(t, errOut, "1 damaged line", "1 damaged segment index could not be read and was rebuilt")

	// The index is repaired: the next command only has the line to tell.
	after := activityPage(t, u, "activity", "--json", "--limit", "1000")
	if len(after.Events) != len(before.Events)-1 {
		t.Errorf("activity lists %d events, %d before the damage", len(after.Events), len(before.Events))
	}
	_, errOut, code = u.run(t, "", "activity", "--limit", "5")
	if code != 0 {
		t.Fatalf("activity: exit %d\n%s", code, errOut)
	}
	checkOneReport(t, errOut, "1 damaged line")
	if strings.Contains(errOut, "index") {
		t.Errorf("the index was rebuilt again:\n%s", errOut)
	}
}

func checkOneReport(t *testing.T, stderr string, want ...string) {
	t.Helper()
	var reports int
	for _, line := range strings.Split(strings.TrimSpace(stderr), "\n") {
		if strings.Contains(line, "the local store is damaged") {
			reports++
		}
	}
	if reports != 1 || strings.Contains(stderr, "level=") || strings.Contains(stderr, "WARN") {
		t.Errorf("want one report in words and no log lines, got:\n%s", stderr)
	}
	for _, w := range want {
		if !strings.Contains(stderr, w) {
			t.Errorf("stderr lacks %q:\n%s", w, stderr)
		}
	}
}
