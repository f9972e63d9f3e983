//go:build amd64 && !purego

#include "textflag.h"

// func plainAVX2(s []byte, stop uint8) (n, leads int)
//
// Per 32 bytes: a mask of the stop bytes (quote, backslash, and per stop
// bit those below 0x20 by an unsigned min, the top bits, and <, >, &) and
// a mask of the continuation bytes (signed below -64, 0xC0). A block with no stop
// byte adds its 32 minus its continuations; the first with one adds what
// lies below its lowest stop byte and ends the search.
TEXT ·plainAVX2(SB), NOSPLIT, $0-48
	MOVQ	s_base+0(FP), SI
	MOVQ	s_len+8(FP), BX
	MOVBLZX	stop+24(FP), DX
	// R15: all ones when control bytes stop the run; R8 likewise for
	// bytes of 0x80 and up, R9 for <, > and &.
	MOVL	DX, R15
	ANDL	$1, R15
	NEGL	R15
	MOVL	DX, R8
	SHRL	$1, R8
	ANDL	$1, R8
	NEGL	R8
	MOVL	DX, R9
	SHRL	$2, R9
	ANDL	$1, R9
	NEGL	R9
	MOVL	$0x22, AX
	VMOVD	AX, X1
	VPBROADCASTB	X1, Y1
	MOVL	$0x5c, AX
	VMOVD	AX, X2
	VPBROADCASTB	X2, Y2
	MOVL	$0x1f, AX
	VMOVD	AX, X3
	VPBROADCASTB	X3, Y3
	MOVL	$0xc0, AX
	VMOVD	AX, X4
	VPBROADCASTB	X4, Y4
	MOVL	$0x3c, AX
	VMOVD	AX, X5
	VPBROADCASTB	X5, Y5
	MOVL	$0x3e, AX
	VMOVD	AX, X6
	VPBROADCASTB	X6, Y6
	MOVL	$0x26, AX
	VMOVD	AX, X7
	VPBROADCASTB	X7, Y7
	XORQ	AX, AX
	XORQ	R10, R10

loop:
	CMPQ	BX, $32
	JB	done
	VMOVDQU	(SI)(AX*1), Y0
	VPCMPEQB	Y0, Y1, Y8
	VPCMPEQB	Y0, Y2, Y9
	VPOR	Y9, Y8, Y8
	VPMINUB	Y0, Y3, Y9
	VPCMPEQB	Y0, Y9, Y9
	VPCMPEQB	Y0, Y5, Y10
	VPCMPEQB	Y0, Y6, Y11
	VPOR	Y11, Y10, Y10
	VPCMPEQB	Y0, Y7, Y11
	VPOR	Y11, Y10, Y10
	VPCMPGTB	Y0, Y4, Y12
	VPMOVMSKB	Y8, CX
	VPMOVMSKB	Y9, R11
	ANDL	R15, R11
	ORL	R11, CX
	VPMOVMSKB	Y10, R11
	ANDL	R9, R11
	ORL	R11, CX
	VPMOVMSKB	Y0, R11
	ANDL	R8, R11
	ORL	R11, CX
	VPMOVMSKB	Y12, R13
	TESTL	CX, CX
	JNZ	found
	POPCNTL	R13, R13
	ADDQ	$32, R10
	SUBQ	R13, R10
	ADDQ	$32, AX
	SUBQ	$32, BX
	JMP	loop

found:
	BSFL	CX, CX
	MOVL	$1, R14
	SHLL	CX, R14
	DECL	R14
	ANDL	R14, R13
	POPCNTL	R13, R13
	ADDQ	CX, AX
	ADDQ	CX, R10
	SUBQ	R13, R10

done:
	VZEROUPPER
	MOVQ	AX, n+32(FP)
	MOVQ	R10, leads+40(FP)
	RET
