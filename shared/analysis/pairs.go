package analysis

// pairTables let a vector unit test 64 positions of a text at a time for
// the start of an anchor, with byte permutes of 128-entry tables (AVX-512
// VBMI's VPERMI2B), where a bitmap of 64 Kibit cannot be reached without a
// load per position. A position passes when its first two bytes begin a
// short anchor (one or two bytes), or begin a longer anchor and its second
// and third bytes are those of a longer anchor too:
//
//	short(c0, c1) || long(c0, c1) && next(c1, c2)
//
// That is a superset of the positions that start an anchor, which
// scanState.at then checks exactly, and on code it passes two fifths of the
// positions the first pair alone did (an anchor's first pair, "co" or
// "se", is common in words its first three bytes are not).
//
// Each relation on pairs is a pairMatrix. The first bytes of the pairs
// fall into few classes of equal rows and the second bytes into few of
// equal columns, so a relation is a small matrix of classes:
//
//	rel(c0, c1)  <=>  bit col(c1)&7 of plane[row(c0)*4 + col(c1)>>3]
//
// with row < 32 and col < 32. The tables are indexed by a byte's low seven
// bits and fold ASCII case, as the lowered text of scanBoth does. No
// anchor has a byte of 0x80 or more (newPairTables checks it): the kernel
// drops a position whose first byte is one, and as a later byte such a
// byte reads as its low seven bits, which newPairTables checks can only
// pass more positions, never fewer.
type pairTables struct {
	first  pairMatrix // planes: short, long
	second pairMatrix // plane 0: next
}

// pairMatrix is one or two relations on pairs of bytes as class tables;
// the layout is the kernel's (pairs_amd64.s).
type pairMatrix struct {
	row    [128]byte // row(c) * 4
	colHi  [128]byte // col(c) >> 3
	colBit [128]byte // 1 << (col(c) & 7)
	plane  [2][128]byte
}

// relation is a set of pairs of bytes, first byte low in the index.
type relation [1 << 16 / 64]uint64

func (r *relation) set(c0, c1 byte) { p := int(c0) | int(c1)<<8; r[p>>6] |= 1 << (p & 63) }

func (r *relation) has(c0, c1 byte) bool {
	p := int(lowerByte(c0)) | int(lowerByte(c1))<<8
	return r[p>>6]&(1<<(p&63)) != 0
}

// anchorRelations are the short, long and next relations of the anchors
// of the sets, lowered.
func anchorRelations(sets ...*ruleSet) (short, long, next *relation) {
	short, long, next = &relation{}, &relation{}, &relation{}
	loweredAnchors(func(lit []byte) {
		switch len(lit) {
		case 1:
			for c1 := range 256 {
				short.set(lit[0], byte(c1))
			}
		case 2:
			short.set(lit[0], lit[1])
		default:
			long.set(lit[0], lit[1])
			next.set(lit[1], lit[2])
		}
	}, sets...)
	return short, long, next
}

// newPairTables builds the tables of the anchors of the sets, or reports
// false when they do not fit: then scanBoth looks pairs up one at a time.
func newPairTables(sets ...*ruleSet) (*pairTables, bool) {
	short, long, next := anchorRelations(sets...)
	t := &pairTables{}
	if !t.first.build(short, long) || !t.second.build(next) {
		return nil, false
	}
	return t, true
}

// build fills m with the relations, one per plane, or reports false when
// they do not fit or have a pair that the kernel would not pass.
func (m *pairMatrix) build(rels ...*relation) bool {
	in := func(c0, c1 int) (k uint8) {
		for i, r := range rels {
			if r.has(byte(c0), byte(c1)) {
				k |= 1 << i
			}
		}
		return k
	}
	for c0 := 128; c0 < 256; c0++ {
		for c1 := range 256 {
			if in(c0, c1) != 0 {
				return false
			}
		}
	}
	// Class ids by first appearance, keyed by a row's (or column's)
	// planes over the 128 bytes the tables index.
	classes := func(key func(c int) [4]uint64) ([128]int, int) {
		var ids [128]int
		seen := map[[4]uint64]int{}
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
	key := func(rel func(a, b int) uint8) func(c int) [4]uint64 {
		return func(c int) (k [4]uint64) {
			for other := range 128 {
				v := uint64(rel(c, other))
				k[other>>5] |= v << (other & 31 * 2)
			}
			return k
		}
	}
	rows, nrows := classes(key(in))
	cols, ncols := classes(key(func(c1, c0 int) uint8 { return in(c0, c1) }))
	if nrows > 32 || ncols > 32 {
		return false
	}
	for c := range 128 {
		m.row[c] = byte(rows[c] * 4)
		m.colHi[c] = byte(cols[c] >> 3)
		m.colBit[c] = 1 << (cols[c] & 7)
	}
	for c0 := range 128 {
		for c1 := range 128 {
			for i := range rels {
				if in(c0, c1)&(1<<i) != 0 {
					m.plane[i][rows[c0]*4+cols[c1]>>3] |= 1 << (cols[c1] & 7)
				}
			}
		}
	}
	// A second byte of 0x80 or more reads as its low seven bits.
	for c0 := range 128 {
		for c1 := 128; c1 < 256; c1++ {
			for i, r := range rels {
				if r.has(byte(c0), byte(c1)) && !m.has(i, byte(c0), byte(c1)) {
					return false
				}
			}
		}
	}
	return true
}

// has is what the kernel computes for plane i at one position whose first
// byte is below 0x80.
func (m *pairMatrix) has(i int, c0, c1 byte) bool {
	return m.plane[i][m.row[c0&127]+m.colHi[c1&127]]&m.colBit[c1&127] != 0
}

// pass is what the kernel computes for one position: whether c0, c1, c2
// may start an anchor.
func (t *pairTables) pass(c0, c1, c2 byte) bool {
	if c0 >= 0x80 {
		return false
	}
	return t.first.has(0, c0, c1) || t.first.has(1, c0, c1) && t.second.has(0, c1, c2)
}

// pairCandidatesGeneric is the kernel in Go, for the tests: out[j] gets a
// bit for each position of text[64j:64j+64] that t passes, with
// len(text) = 64*len(out)+2; it reports whether one of those positions'
// bytes is 0x80 or more.
func pairCandidatesGeneric(t *pairTables, text []byte, out []uint64) (high bool) {
	var or byte
	for j := range out {
		var m uint64
		for b := range 64 {
			i := 64*j + b
			or |= text[i]
			if t.pass(text[i], text[i+1], text[i+2]) {
				m |= 1 << b
			}
		}
		out[j] = m
	}
	return or >= 0x80
}
