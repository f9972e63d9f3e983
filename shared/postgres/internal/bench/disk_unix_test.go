//go:build unix

package main

import "testing"

func TestDiskUsage(t *testing.T) {
	used, total, ok := diskUsage(t.TempDir())
	if !ok || total == 0 || used > total {
		t.Fatalf("diskUsage(a temporary directory) = %d, %d, %v; want a used part of a known size", used, total, ok)
	}
	if _, _, ok := diskUsage(t.TempDir() + "/missing"); ok {
		t.Fatal("diskUsage of a missing path reported a size")
	}
}
