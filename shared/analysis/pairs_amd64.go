//go:build amd64 && !purego

package analysis

import "golang.org/x/sys/cpu"

// vectorPairs are the tables of pairCandidates, or nil where the CPU lacks
// AVX-512 VBMI or the rules' pairs do not fit them.
var vectorPairs = func() *pairTables {
	if !cpu.X86.HasAVX512F || !cpu.X86.HasAVX512BW || !cpu.X86.HasAVX512VBMI {
		return nil
	}
	t, ok := newPairTables(lowerRules, secretSet)
	if !ok {
		return nil
	}
	return t
}()

// pairCandidates is pairCandidatesGeneric with AVX-512 VBMI
// (pairs_amd64.s): nine byte permutes and three tests per 64 positions.
//
//go:noescape
func pairCandidates(t *pairTables, text []byte, out []uint64) (high bool)
