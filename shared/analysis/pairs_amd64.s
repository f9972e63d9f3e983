//go:build amd64 && !purego

#include "textflag.h"

// func pairCandidates(t *pairTables, text []byte, out []uint64) (high bool)
//
// For each 64 bytes c0 = text[i:i+64] and c1 = text[i+1:i+65]:
//   idx  = row[c0] | colHi[c1]
//   cand = matrix[idx] & colBit[c1] != 0, and c0 < 0x80
// VPERMI2B looks a byte up in the 128-byte table held by two registers,
// by the index's low seven bits.
TEXT ·pairCandidates(SB), NOSPLIT, $0-57
	MOVQ	t+0(FP), AX
	MOVQ	text_base+8(FP), SI
	MOVQ	out_base+32(FP), DI
	MOVQ	out_len+40(FP), CX
	VMOVDQU64	0(AX), Z8
	VMOVDQU64	64(AX), Z9
	VMOVDQU64	128(AX), Z10
	VMOVDQU64	192(AX), Z11
	VMOVDQU64	256(AX), Z12
	VMOVDQU64	320(AX), Z13
	VMOVDQU64	384(AX), Z14
	VMOVDQU64	448(AX), Z15
	VPXORQ	Z7, Z7, Z7
	TESTQ	CX, CX
	JZ	done

loop:
	VMOVDQU64	(SI), Z0
	VMOVDQU64	1(SI), Z1
	VPORQ	Z0, Z7, Z7
	VPMOVB2M	Z0, K1
	VMOVDQA64	Z0, Z2
	VPERMI2B	Z9, Z8, Z2
	VMOVDQA64	Z1, Z3
	VPERMI2B	Z11, Z10, Z3
	VPERMI2B	Z13, Z12, Z1
	VPORQ	Z3, Z2, Z2
	VPERMI2B	Z15, Z14, Z2
	VPTESTMB	Z1, Z2, K2
	KANDNQ	K2, K1, K2
	KMOVQ	K2, (DI)
	ADDQ	$64, SI
	ADDQ	$8, DI
	DECQ	CX
	JNZ	loop

done:
	VPMOVB2M	Z7, K1
	KORTESTQ	K1, K1
	SETNE	high+56(FP)
	VZEROUPPER
	RET
