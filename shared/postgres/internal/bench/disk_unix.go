//go:build unix

package main

import "syscall"

// diskUsage is the bytes used and the size of the file system holding
// path, as df counts them (blocks reserved for root count as used).
func diskUsage(path string) (used, total uint64, ok bool) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, 0, false
	}
	bs := uint64(st.Bsize)
	return (uint64(st.Blocks) - uint64(st.Bfree)) * bs, (uint64(st.Blocks) - uint64(st.Bfree) + uint64(st.Bavail)) * bs, true
}
