package setup

import (
	"context"
	"encoding/csv"
	"os/exec"
	"strings"
	"time"
)

// processNames asks tasklist for the image names of running processes
// ("Cursor.exe" is listed as "Cursor").
func processNames() ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "tasklist", "/fo", "csv", "/nh").Output()
	if err != nil {
		return nil, err
	}
	rows, err := csv.NewReader(strings.NewReader(string(out))).ReadAll()
	if err != nil {
		return nil, err
	}
	var names []string
	for _, r := range rows {
		if len(r) > 0 {
			names = append(names, strings.TrimSuffix(strings.TrimSuffix(r[0], ".exe"), ".EXE"))
		}
	}
	return names, nil
}
