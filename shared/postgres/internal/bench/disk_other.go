//go:build !unix

package main

// diskUsage cannot look here: the disk guard lets the load go on.
func diskUsage(string) (used, total uint64, ok bool) { return 0, 0, false }
