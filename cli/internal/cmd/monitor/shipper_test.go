package monitor

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestMain lets the test binary stand in for `kilometers sync --background`:
// shipperProcess launches its own executable.
func TestMain(m *testing.M) {
	if len(os.Args) == 3 && os.Args[1] == "sync" && os.Args[2] == "--background" {
		os.Exit(fakeShipper())
	}
	os.Exit(m.Run())
}

// fakeShipper checks what a shipper is given and exits with the code the
// test asked for: 90 and up say what was wrong.
func fakeShipper() int {
	if os.Getenv("KILOMETERS_HOME") != os.Getenv("KM_TEST_WANT_HOME") {
		return 90
	}
	null, err := os.Stat(os.DevNull)
	if err != nil {
		return 91
	}
	for _, f := range []*os.File{os.Stdin, os.Stdout, os.Stderr} {
		if st, err := f.Stat(); err != nil || !os.SameFile(st, null) {
			return 92 // a stream of the monitor's, the MCP session's, reached the shipper
		}
	}
	code, _ := strconv.Atoi(os.Getenv("KM_TEST_SHIPPER_EXIT"))
	if code != 0 {
		return code
	}
	// Done: said through a file, the one way out of a process without
	// streams.
	if err := os.WriteFile(filepath.Join(os.Getenv("KILOMETERS_HOME"), "shipped"), nil, 0o600); err != nil {
		return 93
	}
	return 0
}

func TestShipperProcess(t *testing.T) {
	for _, tt := range []struct {
		name    string
		exit    int
		wantErr string
	}{
		{"delivers", 0, ""},
		{"fails", 3, "background shipper exited with 3"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			home := t.TempDir()
			t.Setenv("KM_TEST_WANT_HOME", home)
			t.Setenv("KM_TEST_SHIPPER_EXIT", strconv.Itoa(tt.exit))
			launch := shipperProcess(home)
			for i := range 2 { // the second launch reuses what the first prepared
				wait, err := launch(false)
				if err != nil {
					t.Fatal(err)
				}
				err = wait()
				if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
					t.Fatalf("launch %d: wait() = %v, want %q", i, err, tt.wantErr)
				}
			}
			if _, err := os.Stat(filepath.Join(home, "shipped")); (err == nil) != (tt.exit == 0) {
				t.Errorf("the shipper's work: %v", err)
			}
		})
	}
	t.Run("the last one is not waited for", func(t *testing.T) {
		home := t.TempDir()
		t.Setenv("KM_TEST_WANT_HOME", home)
		t.Setenv("KM_TEST_SHIPPER_EXIT", "0")
		wait, err := shipperProcess(home)(true)
		if err != nil || wait != nil {
			t.Errorf("final launch = %v, %v; want no wait and no error", wait != nil, err)
		}
	})
}
