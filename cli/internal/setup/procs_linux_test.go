package setup

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestProcessNamesSeesThisProcess(t *testing.T) {
	names, err := processNames()
	if err != nil {
		t.Fatal(err)
	}
	if self := filepath.Base(os.Args[0]); !slices.Contains(names, self) {
		t.Errorf("%q not among %d process names", self, len(names))
	}
}
