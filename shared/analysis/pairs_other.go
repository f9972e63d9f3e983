//go:build !amd64 || purego

package analysis

// vectorPairs is nil where there is no vector kernel: scanBoth looks pairs
// up eight at a time in Go.
var vectorPairs *pairTables

func pairCandidates(t *pairTables, text []byte, out []uint64) (high bool) {
	return pairCandidatesGeneric(t, text, out)
}
