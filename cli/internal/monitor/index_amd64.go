//go:build amd64 && !purego

package monitor

import "golang.org/x/sys/cpu"

// indexQuoteOrNewlineWide searches 64 bytes per iteration, with AVX2 where
// the CPU has it (32-byte compares: as fast as one bytes.IndexByte, which
// uses them too) and SSE2 elsewhere (index_amd64.s).
func indexQuoteOrNewlineWide(p []byte) int {
	if cpu.X86.HasAVX2 {
		return indexQuoteOrNewlineAVX2(p)
	}
	return indexQuoteOrNewlineSSE2(p)
}

//go:noescape
func indexQuoteOrNewlineAVX2(p []byte) int

//go:noescape
func indexQuoteOrNewlineSSE2(p []byte) int
