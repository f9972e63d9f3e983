package event

import "math"

// RoundUSD rounds an amount of dollars to nine significant digits: costs
// are estimates, and binary floats would otherwise print as
// 0.00029296875000000003 in JSON, or sum to different last digits in a
// different order (Go on the CLI, SQL in the backend). A tiny positive
// cost never rounds to zero.
func RoundUSD(v float64) float64 {
	if v == 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return v
	}
	scale := math.Pow(10, 9-math.Ceil(math.Log10(math.Abs(v))))
	return math.Round(v*scale) / scale
}
