//go:build !linux

package testenv

// CanFindShippers says whether Shippers works here.
const CanFindShippers = false

// Shippers needs /proc; elsewhere it finds nothing, and background
// shippers end on their own.
func Shippers(home string) []int { return nil }
