//go:build amd64 && !purego

package monitor

import "golang.org/x/sys/cpu"

// archIndexVersions are the kernels indexQuoteOrNewlineWide chooses from on
// this machine.
func archIndexVersions() map[string]func([]byte) int {
	v := map[string]func([]byte) int{"indexQuoteOrNewlineSSE2": indexQuoteOrNewlineSSE2}
	if cpu.X86.HasAVX2 {
		v["indexQuoteOrNewlineAVX2"] = indexQuoteOrNewlineAVX2
	}
	return v
}
