//go:build amd64 && !purego

package jsonstr

import "golang.org/x/sys/cpu"

// haveVector says whether plainVector may run here.
var haveVector = cpu.X86.HasAVX2 && cpu.X86.HasPOPCNT

// plainVector is plain over the whole 32-byte blocks of s, with AVX2
// (plain_amd64.s): it returns at the first stop byte, or at the end of the
// last whole block.
func plainVector(s []byte, stop uint8) (n, leads int) {
	return plainAVX2(s, stop)
}

//go:noescape
func plainAVX2(s []byte, stop uint8) (n, leads int)
