//go:build amd64 && !purego

#include "textflag.h"

// func pairCandidates(t *pairTables, text []byte, out []uint64) (high bool)
//
// For each 64 positions, with c0 = text[i:i+64], c1 and c2 the same one
// and two bytes on, in each pairMatrix:
//   idx = row[a] | colHi[b], bit = colBit[b], rel = plane[idx] & bit != 0
// and the position passes when short(c0, c1) || long(c0, c1) &&
// next(c1, c2), and c0 < 0x80. VPERMI2B looks a byte up in a 128-byte
// table by the index's low seven bits: the table's first half in a
// register, its second half in memory. Only Z0-Z15 are used, which
// VZEROUPPER clears.
//
// The tables, at t: first.row 0, colHi 128, colBit 256, plane[0] (short)
// 384, plane[1] (long) 512; second.row 640, colHi 768, colBit 896,
// plane[0] (next) 1024.
TEXT ·pairCandidates(SB), NOSPLIT, $0-57
	MOVQ	t+0(FP), AX
	MOVQ	text_base+8(FP), SI
	MOVQ	out_base+32(FP), DI
	MOVQ	out_len+40(FP), CX
	VMOVDQU64	0(AX), Z8
	VMOVDQU64	128(AX), Z9
	VMOVDQU64	256(AX), Z10
	VMOVDQU64	384(AX), Z11
	VMOVDQU64	512(AX), Z12
	VMOVDQU64	640(AX), Z13
	VMOVDQU64	768(AX), Z14
	VMOVDQU64	896(AX), Z15
	VMOVDQU64	1024(AX), Z7
	KXORQ	K7, K7, K7
	TESTQ	CX, CX
	JZ	done

loop:
	VMOVDQU64	(SI), Z0
	VMOVDQU64	1(SI), Z1
	VMOVDQU64	2(SI), Z2
	VPMOVB2M	Z0, K1
	KORQ	K1, K7, K7

	// short and long: the first pair.
	VPERMI2B	64(AX), Z8, Z0
	VMOVDQA64	Z1, Z3
	VPERMI2B	192(AX), Z9, Z3
	VPORQ	Z3, Z0, Z0
	VMOVDQA64	Z1, Z3
	VPERMI2B	320(AX), Z10, Z3
	VMOVDQA64	Z0, Z4
	VPERMI2B	448(AX), Z11, Z4
	VPERMI2B	576(AX), Z12, Z0
	VPTESTMB	Z3, Z4, K2
	VPTESTMB	Z3, Z0, K3

	// next: the second pair.
	VPERMI2B	704(AX), Z13, Z1
	VMOVDQA64	Z2, Z3
	VPERMI2B	832(AX), Z14, Z3
	VPORQ	Z3, Z1, Z1
	VPERMI2B	960(AX), Z15, Z2
	VPERMI2B	1088(AX), Z7, Z1
	VPTESTMB	Z2, Z1, K4

	KANDQ	K4, K3, K3
	KORQ	K3, K2, K2
	KANDNQ	K2, K1, K2
	KMOVQ	K2, (DI)
	ADDQ	$64, SI
	ADDQ	$8, DI
	DECQ	CX
	JNZ	loop

done:
	KORTESTQ	K7, K7
	SETNE	high+56(FP)
	VZEROUPPER
	RET
