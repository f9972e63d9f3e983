package postgres

import (
	"encoding/binary"
	"math"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// A batch's column arrays (batchColumns, batchDeltas) are its largest
// parameters: about thirty arrays of up to MaxBatchEvents elements. pgx's
// ArrayCodec encodes an array element by element through an interface
// (each element boxed, its plan looked up, the buffer grown by append),
// which the ingest benchmark measured as the largest Go cost of a batch
// after decoding it. The types below are the same slices with an encoder
// of their own that writes PostgreSQL's binary array format in one pass
// into a buffer grown once for it. columnArrayCodec, registered
// on each connection by registerColumnArrays, sends them that way; on a
// connection without it pgx encodes them as the plain slices they are
// (their underlying types), so the bytes PostgreSQL receives are the same
// either way; only a reservingArray needs the codec (pgx refuses it
// otherwise), and Ingest sends one only through the pool open configures.
type (
	uuidArray        [][16]byte
	int8Array        []int64
	int4Array        []int32
	int2Array        []int16
	float8Array      []float64
	boolArray        []bool
	textArray        []string
	timestamptzArray []time.Time
)

// columnArray is a one-dimensional array without NULLs that writes its own
// binary encoding.
type columnArray interface {
	// elementOID is the OID of the array's element type.
	elementOID() uint32
	// appendBinary appends the array in PostgreSQL's binary array format.
	appendBinary(buf []byte) []byte
	// encodedSize is the length of what appendBinary appends.
	encodedSize() int
}

// arrayHeaderSize is the binary array header of one dimension: the number
// of dimensions, the has-NULLs flag, the element OID, then the dimension's
// length and lower bound.
const arrayHeaderSize = 5 * 4

// appendArrayHeader grows buf for the header and n elements whose encoded
// size (each with its 4-byte length) totals size, and appends the header.
func appendArrayHeader(buf []byte, oid uint32, n, size int) []byte {
	// slices.Grow, not an exact allocation: buf holds the parameters
	// before this one, and growing it by append's rule keeps the copies
	// of them linear in the statement's parameters.
	buf = slices.Grow(buf, arrayHeaderSize+size)
	buf = binary.BigEndian.AppendUint32(buf, 1) // dimensions
	buf = binary.BigEndian.AppendUint32(buf, 0) // no NULLs
	buf = binary.BigEndian.AppendUint32(buf, oid)
	buf = binary.BigEndian.AppendUint32(buf, uint32(n))
	return binary.BigEndian.AppendUint32(buf, 1) // lower bound
}

// appendFixed appends a, whose elements put writes in width bytes each,
// in the binary array format; a nil a is NULL, as pgx sends a nil slice.
func appendFixed[T any](buf []byte, oid uint32, a []T, width int, put func([]byte, T) []byte) []byte {
	if a == nil {
		return nil
	}
	buf = appendArrayHeader(buf, oid, len(a), len(a)*(4+width))
	for _, v := range a {
		buf = binary.BigEndian.AppendUint32(buf, uint32(width))
		buf = put(buf, v)
	}
	return buf
}

// fixedSize is what appendFixed appends for n elements of width bytes.
func fixedSize(n, width int) int { return arrayHeaderSize + n*(4+width) }

func (a uuidArray) encodedSize() int { return fixedSize(len(a), 16) }
func (uuidArray) elementOID() uint32 { return pgtype.UUIDOID }
func (a uuidArray) appendBinary(buf []byte) []byte {
	return appendFixed(buf, a.elementOID(), a, 16, func(b []byte, v [16]byte) []byte { return append(b, v[:]...) })
}

func (a int8Array) encodedSize() int { return fixedSize(len(a), 8) }
func (int8Array) elementOID() uint32 { return pgtype.Int8OID }
func (a int8Array) appendBinary(buf []byte) []byte {
	return appendFixed(buf, a.elementOID(), a, 8, func(b []byte, v int64) []byte { return binary.BigEndian.AppendUint64(b, uint64(v)) })
}

func (a int4Array) encodedSize() int { return fixedSize(len(a), 4) }
func (int4Array) elementOID() uint32 { return pgtype.Int4OID }
func (a int4Array) appendBinary(buf []byte) []byte {
	return appendFixed(buf, a.elementOID(), a, 4, func(b []byte, v int32) []byte { return binary.BigEndian.AppendUint32(b, uint32(v)) })
}

func (a int2Array) encodedSize() int { return fixedSize(len(a), 2) }
func (int2Array) elementOID() uint32 { return pgtype.Int2OID }
func (a int2Array) appendBinary(buf []byte) []byte {
	return appendFixed(buf, a.elementOID(), a, 2, func(b []byte, v int16) []byte { return binary.BigEndian.AppendUint16(b, uint16(v)) })
}

func (a float8Array) encodedSize() int { return fixedSize(len(a), 8) }
func (float8Array) elementOID() uint32 { return pgtype.Float8OID }
func (a float8Array) appendBinary(buf []byte) []byte {
	return appendFixed(buf, a.elementOID(), a, 8, func(b []byte, v float64) []byte {
		return binary.BigEndian.AppendUint64(b, math.Float64bits(v))
	})
}

func (a boolArray) encodedSize() int { return fixedSize(len(a), 1) }
func (boolArray) elementOID() uint32 { return pgtype.BoolOID }
func (a boolArray) appendBinary(buf []byte) []byte {
	return appendFixed(buf, a.elementOID(), a, 1, func(b []byte, v bool) []byte {
		if v {
			return append(b, 1)
		}
		return append(b, 0)
	})
}

func (a textArray) encodedSize() int {
	size := arrayHeaderSize + len(a)*4
	for _, s := range a {
		size += len(s)
	}
	return size
}
func (textArray) elementOID() uint32 { return pgtype.TextOID }
func (a textArray) appendBinary(buf []byte) []byte {
	if a == nil {
		return nil // NULL, as pgx sends a nil slice
	}
	buf = appendArrayHeader(buf, a.elementOID(), len(a), a.encodedSize()-arrayHeaderSize)
	for _, s := range a {
		buf = binary.BigEndian.AppendUint32(buf, uint32(len(s)))
		buf = append(buf, s...)
	}
	return buf
}

// y2kMicros is the Unix time in microseconds of 2000-01-01 UTC, the epoch
// of PostgreSQL's binary timestamps.
const y2kMicros = 946_684_800 * 1_000_000

func (a timestamptzArray) encodedSize() int { return fixedSize(len(a), 8) }
func (timestamptzArray) elementOID() uint32 { return pgtype.TimestamptzOID }
func (a timestamptzArray) appendBinary(buf []byte) []byte {
	return appendFixed(buf, a.elementOID(), a, 8, func(b []byte, t time.Time) []byte {
		// As pgx's TimestamptzCodec: the microsecond below t.
		us := t.Unix()*1_000_000 + int64(t.Nanosecond())/1000 - y2kMicros
		return binary.BigEndian.AppendUint64(b, uint64(us))
	})
}

// reservingArray is a column array that, encoded first, grows the buffer
// for every column array of its statement at once (reserve bytes): pgx
// encodes a statement's parameters one after the other into one buffer,
// and growing it array by array allocated about twice the parameters'
// size per batch.
type reservingArray struct {
	columnArray
	reserve int
}

func (a reservingArray) appendBinary(buf []byte) []byte {
	return a.columnArray.appendBinary(slices.Grow(buf, a.reserve))
}

// reserveColumnArrays makes the first column array of args grow the
// buffer for all of them.
func reserveColumnArrays(args []any) {
	first, total := -1, 0
	for i, a := range args {
		if c, ok := a.(columnArray); ok {
			if first < 0 {
				first = i
			}
			total += c.encodedSize()
		}
	}
	if first >= 0 {
		args[first] = reservingArray{columnArray: args[first].(columnArray), reserve: total}
	}
}

// columnArrayCodec is the codec of an array type that sends a columnArray
// of its element type with the array's own encoder, and everything else
// as the codec it wraps (pgx's ArrayCodec) does.
type columnArrayCodec struct {
	pgtype.Codec
	elemOID uint32
}

func (c columnArrayCodec) PlanEncode(m *pgtype.Map, oid uint32, format int16, value any) pgtype.EncodePlan {
	if a, ok := value.(columnArray); ok && format == pgtype.BinaryFormatCode && a.elementOID() == c.elemOID {
		return encodeColumnArray{}
	}
	return c.Codec.PlanEncode(m, oid, format, value)
}

type encodeColumnArray struct{}

func (encodeColumnArray) Encode(value any, buf []byte) ([]byte, error) {
	return value.(columnArray).appendBinary(buf), nil
}

// registerColumnArrays wraps the codecs of the column arrays' types in
// conn's type map with columnArrayCodec (pgxpool's AfterConnect).
func registerColumnArrays(conn *pgx.Conn) {
	m := conn.TypeMap()
	for _, a := range []struct{ oid, elem uint32 }{
		{pgtype.UUIDArrayOID, pgtype.UUIDOID}, {pgtype.Int8ArrayOID, pgtype.Int8OID},
		{pgtype.Int4ArrayOID, pgtype.Int4OID}, {pgtype.Int2ArrayOID, pgtype.Int2OID},
		{pgtype.Float8ArrayOID, pgtype.Float8OID}, {pgtype.BoolArrayOID, pgtype.BoolOID},
		{pgtype.TextArrayOID, pgtype.TextOID}, {pgtype.TimestamptzArrayOID, pgtype.TimestamptzOID},
	} {
		oid, elem := a.oid, a.elem
		t, ok := m.TypeForOID(oid)
		if !ok {
			continue
		}
		m.RegisterType(&pgtype.Type{Name: t.Name, OID: t.OID, Codec: columnArrayCodec{Codec: t.Codec, elemOID: elem}})
	}
}
