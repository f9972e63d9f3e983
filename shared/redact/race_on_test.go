//go:build race

package redact

// raceEnabled: the race detector makes sync.Pool drop items on purpose, so
// the regexp package allocates machines it would otherwise reuse.
const raceEnabled = true
