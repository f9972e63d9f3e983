package main

import "testing"

func TestRunExitCodes(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		code    int
		wantErr bool
	}{
		{"no command", nil, 2, true},
		{"command not found", []string{"/nonexistent/km-bench-server"}, 127, true},
		{"child's exit code", []string{"sh", "-c", "exit 3"}, 3, false},
		{"clean exit", []string{"true"}, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, err := run(tc.args)
			if code != tc.code || (err != nil) != tc.wantErr {
				t.Errorf("run(%q) = %d, %v; want %d, error %v", tc.args, code, err, tc.code, tc.wantErr)
			}
		})
	}
}
