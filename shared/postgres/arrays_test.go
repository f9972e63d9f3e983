package postgres

import (
	"bytes"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"
)

// TestColumnArraysEncodeAsPgx holds each column array's own encoder to the
// bytes pgx's ArrayCodec writes for the plain slice, which is what a
// connection without columnArrayCodec sends.
func TestColumnArraysEncodeAsPgx(t *testing.T) {
	old := time.Date(1969, 7, 20, 20, 17, 40, 999_999_999, time.FixedZone("x", -3*3600))
	tests := []struct {
		name  string
		oid   uint32
		value columnArray
		plain any
	}{
		{"uuid", pgtype.UUIDArrayOID, uuidArray{{1, 2, 3}, {15: 0xff}}, [][16]byte{{1, 2, 3}, {15: 0xff}}},
		{"uuid nil", pgtype.UUIDArrayOID, uuidArray(nil), [][16]byte(nil)},
		{"uuid empty", pgtype.UUIDArrayOID, uuidArray{}, [][16]byte{}},
		{"int8", pgtype.Int8ArrayOID, int8Array{0, -1, math.MinInt64, math.MaxInt64}, []int64{0, -1, math.MinInt64, math.MaxInt64}},
		{"int8 empty", pgtype.Int8ArrayOID, int8Array{}, []int64{}},
		{"int4", pgtype.Int4ArrayOID, int4Array{-1, 7, math.MinInt32}, []int32{-1, 7, math.MinInt32}},
		{"int2", pgtype.Int2ArrayOID, int2Array{-1, 0, 1, math.MaxInt16}, []int16{-1, 0, 1, math.MaxInt16}},
		{"float8", pgtype.Float8ArrayOID, float8Array{math.NaN(), 0.1, -0, math.Inf(1)}, []float64{math.NaN(), 0.1, -0, math.Inf(1)}},
		{"bool", pgtype.BoolArrayOID, boolArray{true, false}, []bool{true, false}},
		{"text", pgtype.TextArrayOID, textArray{"", "héllo", `{"a":1}`}, []string{"", "héllo", `{"a":1}`}},
		{"text nil", pgtype.TextArrayOID, textArray(nil), []string(nil)},
		{"timestamptz", pgtype.TimestamptzArrayOID,
			timestamptzArray{old, time.Unix(0, 0), time.Date(2026, 12, 2, 3, 4, 5, 123_456_789, time.UTC)},
			[]time.Time{old, time.Unix(0, 0), time.Date(2026, 12, 2, 3, 4, 5, 123_456_789, time.UTC)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want, err := pgtype.NewMap().Encode(tt.oid, pgtype.BinaryFormatCode, tt.plain, []byte("prefix"))
			if err != nil {
				t.Fatal(err)
			}
			m := pgtype.NewMap()
			typ, _ := m.TypeForOID(tt.oid)
			codec := columnArrayCodec{Codec: typ.Codec, elemOID: tt.value.elementOID()}
			m.RegisterType(&pgtype.Type{Name: typ.Name, OID: tt.oid, Codec: codec})
			if _, ok := m.PlanEncode(tt.oid, pgtype.BinaryFormatCode, tt.value).(encodeColumnArray); !ok {
				t.Fatalf("the codec planned %T, want its own encoder", m.PlanEncode(tt.oid, pgtype.BinaryFormatCode, tt.value))
			}
			got, err := m.Encode(tt.oid, pgtype.BinaryFormatCode, tt.value, []byte("prefix"))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) || (got == nil) != (want == nil) {
				t.Errorf("encoded\n%x\nwant (pgx)\n%x", got, want)
			}
			if got != nil && len(got)-len("prefix") != tt.value.encodedSize() {
				t.Errorf("encoded %d bytes, encodedSize says %d", len(got)-len("prefix"), tt.value.encodedSize())
			}
			reserved, err := m.Encode(tt.oid, pgtype.BinaryFormatCode, reservingArray{columnArray: tt.value, reserve: 1000}, []byte("prefix"))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(reserved, want) || (reserved == nil) != (want == nil) {
				t.Errorf("reserving, encoded\n%x\nwant (pgx)\n%x", reserved, want)
			}
			// Without the codec, pgx encodes the named slice as its
			// underlying type.
			fallback, err := pgtype.NewMap().Encode(tt.oid, pgtype.BinaryFormatCode, tt.value, []byte("prefix"))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(fallback, want) {
				t.Errorf("without the codec encoded\n%x\nwant\n%x", fallback, want)
			}
		})
	}
}

// TestColumnArrayCodecLeavesOtherValues checks that a value of another
// element type, or a plain slice, still takes pgx's own plan.
func TestColumnArrayCodecLeavesOtherValues(t *testing.T) {
	m := pgtype.NewMap()
	typ, _ := m.TypeForOID(pgtype.Int8ArrayOID)
	m.RegisterType(&pgtype.Type{Name: typ.Name, OID: pgtype.Int8ArrayOID, Codec: columnArrayCodec{Codec: typ.Codec, elemOID: pgtype.Int8OID}})
	want, err := pgtype.NewMap().Encode(pgtype.Int8ArrayOID, pgtype.BinaryFormatCode, []int32{1, 2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []any{int4Array{1, 2}, []int32{1, 2}} {
		got, err := m.Encode(pgtype.Int8ArrayOID, pgtype.BinaryFormatCode, v, nil)
		if err != nil {
			t.Fatalf("%T: %v", v, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%T encoded %x, want %x", v, got, want)
		}
	}
}

// BenchmarkIngestArgs times encoding the parameters of insertArrays for a
// batch of 500 events as pgx does (each into one buffer that starts at the
// 256 bytes pgx keeps between statements): pgx alone (a connection
// without columnArrayCodec), and with the codec registerColumnArrays adds
// and the reservation Ingest makes (reserveColumnArrays).
func BenchmarkIngestArgs(b *testing.B) {
	events := benchBatch(b)
	cols, err := newBatchColumns(events)
	if err != nil {
		b.Fatal(err)
	}
	args := append(cols.args(uuid.NewString()), time.Now(), len(events))
	args = append(args, newBatchDeltas(cols, events).args()...)
	arrayOf := map[uint32]uint32{pgtype.UUIDOID: pgtype.UUIDArrayOID, pgtype.Int8OID: pgtype.Int8ArrayOID,
		pgtype.Int4OID: pgtype.Int4ArrayOID, pgtype.Int2OID: pgtype.Int2ArrayOID, pgtype.Float8OID: pgtype.Float8ArrayOID,
		pgtype.BoolOID: pgtype.BoolArrayOID, pgtype.TextOID: pgtype.TextArrayOID, pgtype.TimestamptzOID: pgtype.TimestamptzArrayOID}
	oids := make([]uint32, len(args))
	formats := make([]int16, len(args))
	for i, a := range args {
		formats[i] = pgtype.BinaryFormatCode
		switch a := a.(type) {
		case columnArray:
			oids[i] = arrayOf[a.elementOID()]
		case string:
			oids[i], formats[i] = pgtype.UUIDOID, pgtype.TextFormatCode // as pgx sends a string
		case time.Time:
			oids[i] = pgtype.TimestamptzOID
		case int:
			oids[i] = pgtype.Int8OID
		default:
			b.Fatalf("argument %d: %T", i, a)
		}
	}
	for _, codec := range []bool{false, true} {
		name := "pgx"
		if codec {
			name = "column-arrays"
		}
		b.Run(name, func(b *testing.B) {
			m := pgtype.NewMap()
			if codec {
				for elem, oid := range arrayOf {
					t, _ := m.TypeForOID(oid)
					m.RegisterType(&pgtype.Type{Name: t.Name, OID: oid, Codec: columnArrayCodec{Codec: t.Codec, elemOID: elem}})
				}
			}
			args := slices.Clone(args)
			if codec {
				reserveColumnArrays(args)
			}
			b.ReportAllocs()
			for b.Loop() {
				buf := make([]byte, 0, 256)
				for i, a := range args {
					if buf, err = m.Encode(oids[i], formats[i], a, buf); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
