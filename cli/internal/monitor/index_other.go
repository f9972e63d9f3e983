//go:build !amd64 || purego

package monitor

func indexQuoteOrNewlineWide(p []byte) int { return indexQuoteOrNewlineTwice(p) }
