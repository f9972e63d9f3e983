package postgres

import (
	"encoding/binary"
	"fmt"
	"math"
)

// The rollup tables store histogram entries (stats.PackBucket) and latency
// samples as bytea (migration 00023): each value 8 bytes, big-endian, as
// PostgreSQL's int8send and float8send write it, so that the SQL that
// builds and merges them and the Go that reads and writes them agree on
// one layout, and a stats read moves bytes instead of array elements.

// packInt8 appends v to b as a packed entry.
func packInt8(b []byte, v int64) []byte { return binary.BigEndian.AppendUint64(b, uint64(v)) }

// packFloat8 appends v to b as a packed sample.
func packFloat8(b []byte, v float64) []byte {
	return binary.BigEndian.AppendUint64(b, math.Float64bits(v))
}

// unpackInt8 appends the entries packed in b to dst.
func unpackInt8(dst []int64, b []byte) ([]int64, error) {
	if len(b)%8 != 0 {
		return dst, fmt.Errorf("packed entries: %d bytes is not a whole number of entries", len(b))
	}
	for ; len(b) > 0; b = b[8:] {
		dst = append(dst, int64(binary.BigEndian.Uint64(b)))
	}
	return dst, nil
}

// unpackFloat8 appends the samples packed in b to dst.
func unpackFloat8(dst []float64, b []byte) ([]float64, error) {
	if len(b)%8 != 0 {
		return dst, fmt.Errorf("packed samples: %d bytes is not a whole number of samples", len(b))
	}
	for ; len(b) > 0; b = b[8:] {
		dst = append(dst, math.Float64frombits(binary.BigEndian.Uint64(b)))
	}
	return dst, nil
}
