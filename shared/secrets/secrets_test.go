package secrets

import (
	"regexp"
	"strings"
	"testing"
)

// Both users compile the table and index its anchors; a bad entry must
// fail here rather than on the first text that reaches it.
func TestTable(t *testing.T) {
	type entry struct {
		name, expr string
		anchors    []string
	}
	var entries []entry
	for _, f := range Formats() {
		entries = append(entries, entry{f.Name, f.Expr, f.Anchors})
	}
	for _, a := range Assignments() {
		entries = append(entries, entry{a.Name, a.Expr, a.Anchors})
		re := regexp.MustCompile(a.Expr)
		if re.NumSubexp() < 1 {
			t.Errorf("%s: no group for the value", a.Name)
		}
		for _, an := range a.Anchors {
			if an != strings.ToLower(an) {
				t.Errorf("%s: anchor %q is not lower case", a.Name, an)
			}
		}
	}
	names := map[string]bool{}
	for _, e := range entries {
		if names[e.name] {
			t.Errorf("%s: twice", e.name)
		}
		names[e.name] = true
		if _, err := regexp.Compile(e.expr); err != nil {
			t.Errorf("%s: %v", e.name, err)
		}
		if len(e.anchors) == 0 {
			t.Errorf("%s: no anchors", e.name)
		}
		for _, an := range e.anchors {
			if len(an) < 3 || strings.ContainsAny(an, "\"\\\b\f\n\r\t") {
				t.Errorf("%s: anchor %q is shorter than 3 bytes or holds a JSON escape character", e.name, an)
			}
		}
	}
}
