package analysis

// pairTables is union.pairs in a form a vector unit can look up 64
// positions at a time with byte permutes of 128-entry tables (AVX-512
// VBMI's VPERMI2B), where a 64 Kibit bitmap cannot be reached without a
// load per position. The first bytes of the pairs fall into few classes of
// equal rows and the second bytes into few classes of equal columns, so
// the bitmap is a small matrix of classes:
//
//	pair (c0, c1) is in union.pairs  <=>  bit col(c1)&7 of
//	    matrix[row(c0)*4 + col(c1)>>3]
//
// with row < 32 and col < 32. The tables are indexed by a text byte's low
// seven bits and fold ASCII case, as the lowered pairs of scanBoth do.
// A byte of 0x80 or more starts no anchor (newPairTables checks it), so the
// kernel drops such positions; as a second byte it reads as its low seven
// bits, which newPairTables checks can only pass more positions, never
// fewer (scanState.at compares the anchors themselves).
type pairTables struct {
	row    [128]byte // row(c) * 4
	colHi  [128]byte // col(c) >> 3
	colBit [128]byte // 1 << (col(c) & 7)
	matrix [128]byte
}

// newPairTables builds u.pairs' tables, or reports false when its pairs
// do not fit them: then scanBoth looks pairs up one at a time.
func newPairTables(u *union) (*pairTables, bool) {
	in := func(c0, c1 int) bool {
		p := int(lowerByte(byte(c0))) | int(lowerByte(byte(c1)))<<8
		return u.pairs[p>>6]&(1<<(p&63)) != 0
	}
	for c0 := 128; c0 < 256; c0++ {
		for c1 := range 256 {
			if in(c0, c1) {
				return nil, false
			}
		}
	}
	// Class ids by first appearance, keyed by the row's (or column's)
	// bits over the 128 bytes the tables index.
	classes := func(key func(c int) [2]uint64) ([128]int, int) {
		var ids [128]int
		seen := map[[2]uint64]int{}
		for c := range 128 {
			k := key(c)
			id, ok := seen[k]
			if !ok {
				id = len(seen)
				seen[k] = id
			}
			ids[c] = id
		}
		return ids, len(seen)
	}
	rows, nrows := classes(func(c0 int) (k [2]uint64) {
		for c1 := range 128 {
			if in(c0, c1) {
				k[c1>>6] |= 1 << (c1 & 63)
			}
		}
		return k
	})
	cols, ncols := classes(func(c1 int) (k [2]uint64) {
		for c0 := range 128 {
			if in(c0, c1) {
				k[c0>>6] |= 1 << (c0 & 63)
			}
		}
		return k
	})
	if nrows > 32 || ncols > 32 {
		return nil, false
	}
	t := &pairTables{}
	for c := range 128 {
		t.row[c] = byte(rows[c] * 4)
		t.colHi[c] = byte(cols[c] >> 3)
		t.colBit[c] = 1 << (cols[c] & 7)
	}
	for c0 := range 128 {
		for c1 := range 128 {
			if in(c0, c1) {
				t.matrix[rows[c0]*4+cols[c1]>>3] |= 1 << (cols[c1] & 7)
			}
		}
	}
	// A second byte of 0x80 or more reads as its low seven bits.
	for c0 := range 128 {
		for c1 := 128; c1 < 256; c1++ {
			if in(c0, c1) && !t.has(byte(c0), byte(c1)) {
				return nil, false
			}
		}
	}
	return t, true
}

// has is what the kernel computes for one position whose first byte is
// below 0x80.
func (t *pairTables) has(c0, c1 byte) bool {
	return t.matrix[t.row[c0&127]+t.colHi[c1&127]]&t.colBit[c1&127] != 0
}

// pairCandidatesGeneric is the kernel in Go, for the tests: out[j] gets a
// bit for each position of text[64j:64j+64] whose pair passes t, with
// len(text) = 64*len(out)+1; it reports whether one of those positions'
// bytes is 0x80 or more.
func pairCandidatesGeneric(t *pairTables, text []byte, out []uint64) (high bool) {
	var or byte
	for j := range out {
		var m uint64
		for b := range 64 {
			c0, c1 := text[64*j+b], text[64*j+b+1]
			or |= c0
			if c0 < 0x80 && t.has(c0, c1) {
				m |= 1 << b
			}
		}
		out[j] = m
	}
	return or >= 0x80
}
