// NEON kernels for the distances of pgvector's other types (L1; halfvec; bit), in the form
// of kernels_arm64.s (avo does not target arm64). Instructions the Go assembler has no
// mnemonic for (FABD, FCVTL, FCVTN, scalar FCVT between half and single, UADALP, UADDLV,
// vector FADD/FSUB and byte ADD) are WORDs encoded by `llvm-mc -triple=aarch64
// -show-encoding`, with the instruction in the comment.
//
// Float and half kernels work on 16 elements per trip in four accumulators, then 4, then a
// scalar tail; halves are widened to float32 with FCVTL/FCVTL2 (exact) right after the load,
// and the tail converts each one with scalar FCVT, so every element takes an exact path and
// the sums are the float32 kernels' sums. The popcount kernels take whole 32-byte blocks
// (the Go caller does the rest and splits long inputs so 16-bit lanes cannot overflow).

#include "textflag.h"

// func l1NEON(a, b *float32, n int) float32
// Σ|a_i - b_i| over n float32s: FABD, then FADD into four accumulators.
TEXT ·l1NEON(SB), NOSPLIT, $0-28
	MOVD a+0(FP), R0
	MOVD b+8(FP), R1
	MOVD n+16(FP), R2
	VEOR V0.B16, V0.B16, V0.B16
	VEOR V1.B16, V1.B16, V1.B16
	VEOR V2.B16, V2.B16, V2.B16
	VEOR V3.B16, V3.B16, V3.B16

l1NEON_loop16:
	CMP  $16, R2
	BLT  l1NEON_loop4
	VLD1.P 64(R0), [V4.S4, V5.S4, V6.S4, V7.S4]
	VLD1.P 64(R1), [V8.S4, V9.S4, V10.S4, V11.S4]
	WORD $0x6ea8d484 // fabd v4.4s, v4.4s, v8.4s
	WORD $0x4e24d400 // fadd v0.4s, v0.4s, v4.4s
	WORD $0x6ea9d4a5 // fabd v5.4s, v5.4s, v9.4s
	WORD $0x4e25d421 // fadd v1.4s, v1.4s, v5.4s
	WORD $0x6eaad4c6 // fabd v6.4s, v6.4s, v10.4s
	WORD $0x4e26d442 // fadd v2.4s, v2.4s, v6.4s
	WORD $0x6eabd4e7 // fabd v7.4s, v7.4s, v11.4s
	WORD $0x4e27d463 // fadd v3.4s, v3.4s, v7.4s
	SUB  $16, R2
	B    l1NEON_loop16

l1NEON_loop4:
	CMP  $4, R2
	BLT  l1NEON_reduce
	VLD1.P 16(R0), [V4.S4]
	VLD1.P 16(R1), [V8.S4]
	WORD $0x6ea8d484 // fabd v4.4s, v4.4s, v8.4s
	WORD $0x4e24d400 // fadd v0.4s, v0.4s, v4.4s
	SUB  $4, R2
	B    l1NEON_loop4

l1NEON_reduce:
	WORD $0x4e21d400 // fadd v0.4s, v0.4s, v1.4s
	WORD $0x4e23d442 // fadd v2.4s, v2.4s, v3.4s
	WORD $0x4e22d400 // fadd v0.4s, v0.4s, v2.4s
	WORD $0x6e20d400 // faddp v0.4s, v0.4s, v0.4s
	WORD $0x7e30d800 // faddp s0, v0.2s

l1NEON_tail:
	CBZ  R2, l1NEON_done
	FMOVS.P 4(R0), F4
	FMOVS.P 4(R1), F8
	FSUBS F8, F4, F4
	FABSS F4, F4
	FADDS F4, F0, F0
	SUB  $1, R2
	B    l1NEON_tail

l1NEON_done:
	FMOVS F0, ret+24(FP)
	RET

// func dotHalfNEON(a, b *uint16, n int) float32
// Σ a_i·b_i over n halves, in float32.
TEXT ·dotHalfNEON(SB), NOSPLIT, $0-28
	MOVD a+0(FP), R0
	MOVD b+8(FP), R1
	MOVD n+16(FP), R2
	VEOR V0.B16, V0.B16, V0.B16
	VEOR V1.B16, V1.B16, V1.B16
	VEOR V2.B16, V2.B16, V2.B16
	VEOR V3.B16, V3.B16, V3.B16

dotHalfNEON_loop16:
	CMP  $16, R2
	BLT  dotHalfNEON_loop4
	VLD1.P 32(R0), [V16.H8, V17.H8]
	VLD1.P 32(R1), [V18.H8, V19.H8]
	WORD $0x0e217a04 // fcvtl v4.4s, v16.4h
	WORD $0x4e217a05 // fcvtl2 v5.4s, v16.8h
	WORD $0x0e217a26 // fcvtl v6.4s, v17.4h
	WORD $0x4e217a27 // fcvtl2 v7.4s, v17.8h
	WORD $0x0e217a48 // fcvtl v8.4s, v18.4h
	WORD $0x4e217a49 // fcvtl2 v9.4s, v18.8h
	WORD $0x0e217a6a // fcvtl v10.4s, v19.4h
	WORD $0x4e217a6b // fcvtl2 v11.4s, v19.8h
	VFMLA V8.S4, V4.S4, V0.S4
	VFMLA V9.S4, V5.S4, V1.S4
	VFMLA V10.S4, V6.S4, V2.S4
	VFMLA V11.S4, V7.S4, V3.S4
	SUB  $16, R2
	B    dotHalfNEON_loop16

dotHalfNEON_loop4:
	CMP  $4, R2
	BLT  dotHalfNEON_reduce
	VLD1.P 8(R0), [V16.H4]
	VLD1.P 8(R1), [V18.H4]
	WORD $0x0e217a04 // fcvtl v4.4s, v16.4h
	WORD $0x0e217a48 // fcvtl v8.4s, v18.4h
	VFMLA V8.S4, V4.S4, V0.S4
	SUB  $4, R2
	B    dotHalfNEON_loop4

dotHalfNEON_reduce:
	WORD $0x4e21d400 // fadd v0.4s, v0.4s, v1.4s
	WORD $0x4e23d442 // fadd v2.4s, v2.4s, v3.4s
	WORD $0x4e22d400 // fadd v0.4s, v0.4s, v2.4s
	WORD $0x6e20d400 // faddp v0.4s, v0.4s, v0.4s
	WORD $0x7e30d800 // faddp s0, v0.2s

dotHalfNEON_tail:
	CBZ  R2, dotHalfNEON_done
	MOVHU.P 2(R0), R3
	MOVHU.P 2(R1), R4
	FMOVS R3, F16
	FMOVS R4, F18
	WORD $0x1ee24204 // fcvt s4, h16
	WORD $0x1ee24248 // fcvt s8, h18
	FMULS F8, F4, F5
	FADDS F5, F0, F0
	SUB  $1, R2
	B    dotHalfNEON_tail

dotHalfNEON_done:
	FMOVS F0, ret+24(FP)
	RET

// func l2HalfNEON(a, b *uint16, n int) float32
// Σ (a_i - b_i)² over n halves, in float32.
TEXT ·l2HalfNEON(SB), NOSPLIT, $0-28
	MOVD a+0(FP), R0
	MOVD b+8(FP), R1
	MOVD n+16(FP), R2
	VEOR V0.B16, V0.B16, V0.B16
	VEOR V1.B16, V1.B16, V1.B16
	VEOR V2.B16, V2.B16, V2.B16
	VEOR V3.B16, V3.B16, V3.B16

l2HalfNEON_loop16:
	CMP  $16, R2
	BLT  l2HalfNEON_loop4
	VLD1.P 32(R0), [V16.H8, V17.H8]
	VLD1.P 32(R1), [V18.H8, V19.H8]
	WORD $0x0e217a04 // fcvtl v4.4s, v16.4h
	WORD $0x4e217a05 // fcvtl2 v5.4s, v16.8h
	WORD $0x0e217a26 // fcvtl v6.4s, v17.4h
	WORD $0x4e217a27 // fcvtl2 v7.4s, v17.8h
	WORD $0x0e217a48 // fcvtl v8.4s, v18.4h
	WORD $0x4e217a49 // fcvtl2 v9.4s, v18.8h
	WORD $0x0e217a6a // fcvtl v10.4s, v19.4h
	WORD $0x4e217a6b // fcvtl2 v11.4s, v19.8h
	WORD $0x4ea8d484 // fsub v4.4s, v4.4s, v8.4s
	VFMLA V4.S4, V4.S4, V0.S4
	WORD $0x4ea9d4a5 // fsub v5.4s, v5.4s, v9.4s
	VFMLA V5.S4, V5.S4, V1.S4
	WORD $0x4eaad4c6 // fsub v6.4s, v6.4s, v10.4s
	VFMLA V6.S4, V6.S4, V2.S4
	WORD $0x4eabd4e7 // fsub v7.4s, v7.4s, v11.4s
	VFMLA V7.S4, V7.S4, V3.S4
	SUB  $16, R2
	B    l2HalfNEON_loop16

l2HalfNEON_loop4:
	CMP  $4, R2
	BLT  l2HalfNEON_reduce
	VLD1.P 8(R0), [V16.H4]
	VLD1.P 8(R1), [V18.H4]
	WORD $0x0e217a04 // fcvtl v4.4s, v16.4h
	WORD $0x0e217a48 // fcvtl v8.4s, v18.4h
	WORD $0x4ea8d484 // fsub v4.4s, v4.4s, v8.4s
	VFMLA V4.S4, V4.S4, V0.S4
	SUB  $4, R2
	B    l2HalfNEON_loop4

l2HalfNEON_reduce:
	WORD $0x4e21d400 // fadd v0.4s, v0.4s, v1.4s
	WORD $0x4e23d442 // fadd v2.4s, v2.4s, v3.4s
	WORD $0x4e22d400 // fadd v0.4s, v0.4s, v2.4s
	WORD $0x6e20d400 // faddp v0.4s, v0.4s, v0.4s
	WORD $0x7e30d800 // faddp s0, v0.2s

l2HalfNEON_tail:
	CBZ  R2, l2HalfNEON_done
	MOVHU.P 2(R0), R3
	MOVHU.P 2(R1), R4
	FMOVS R3, F16
	FMOVS R4, F18
	WORD $0x1ee24204 // fcvt s4, h16
	WORD $0x1ee24248 // fcvt s8, h18
	FSUBS F8, F4, F4
	FMULS F4, F4, F4
	FADDS F4, F0, F0
	SUB  $1, R2
	B    l2HalfNEON_tail

l2HalfNEON_done:
	FMOVS F0, ret+24(FP)
	RET

// func l1HalfNEON(a, b *uint16, n int) float32
// Σ|a_i - b_i| over n halves, in float32.
TEXT ·l1HalfNEON(SB), NOSPLIT, $0-28
	MOVD a+0(FP), R0
	MOVD b+8(FP), R1
	MOVD n+16(FP), R2
	VEOR V0.B16, V0.B16, V0.B16
	VEOR V1.B16, V1.B16, V1.B16
	VEOR V2.B16, V2.B16, V2.B16
	VEOR V3.B16, V3.B16, V3.B16

l1HalfNEON_loop16:
	CMP  $16, R2
	BLT  l1HalfNEON_loop4
	VLD1.P 32(R0), [V16.H8, V17.H8]
	VLD1.P 32(R1), [V18.H8, V19.H8]
	WORD $0x0e217a04 // fcvtl v4.4s, v16.4h
	WORD $0x4e217a05 // fcvtl2 v5.4s, v16.8h
	WORD $0x0e217a26 // fcvtl v6.4s, v17.4h
	WORD $0x4e217a27 // fcvtl2 v7.4s, v17.8h
	WORD $0x0e217a48 // fcvtl v8.4s, v18.4h
	WORD $0x4e217a49 // fcvtl2 v9.4s, v18.8h
	WORD $0x0e217a6a // fcvtl v10.4s, v19.4h
	WORD $0x4e217a6b // fcvtl2 v11.4s, v19.8h
	WORD $0x6ea8d484 // fabd v4.4s, v4.4s, v8.4s
	WORD $0x4e24d400 // fadd v0.4s, v0.4s, v4.4s
	WORD $0x6ea9d4a5 // fabd v5.4s, v5.4s, v9.4s
	WORD $0x4e25d421 // fadd v1.4s, v1.4s, v5.4s
	WORD $0x6eaad4c6 // fabd v6.4s, v6.4s, v10.4s
	WORD $0x4e26d442 // fadd v2.4s, v2.4s, v6.4s
	WORD $0x6eabd4e7 // fabd v7.4s, v7.4s, v11.4s
	WORD $0x4e27d463 // fadd v3.4s, v3.4s, v7.4s
	SUB  $16, R2
	B    l1HalfNEON_loop16

l1HalfNEON_loop4:
	CMP  $4, R2
	BLT  l1HalfNEON_reduce
	VLD1.P 8(R0), [V16.H4]
	VLD1.P 8(R1), [V18.H4]
	WORD $0x0e217a04 // fcvtl v4.4s, v16.4h
	WORD $0x0e217a48 // fcvtl v8.4s, v18.4h
	WORD $0x6ea8d484 // fabd v4.4s, v4.4s, v8.4s
	WORD $0x4e24d400 // fadd v0.4s, v0.4s, v4.4s
	SUB  $4, R2
	B    l1HalfNEON_loop4

l1HalfNEON_reduce:
	WORD $0x4e21d400 // fadd v0.4s, v0.4s, v1.4s
	WORD $0x4e23d442 // fadd v2.4s, v2.4s, v3.4s
	WORD $0x4e22d400 // fadd v0.4s, v0.4s, v2.4s
	WORD $0x6e20d400 // faddp v0.4s, v0.4s, v0.4s
	WORD $0x7e30d800 // faddp s0, v0.2s

l1HalfNEON_tail:
	CBZ  R2, l1HalfNEON_done
	MOVHU.P 2(R0), R3
	MOVHU.P 2(R1), R4
	FMOVS R3, F16
	FMOVS R4, F18
	WORD $0x1ee24204 // fcvt s4, h16
	WORD $0x1ee24248 // fcvt s8, h18
	FSUBS F8, F4, F4
	FABSS F4, F4
	FADDS F4, F0, F0
	SUB  $1, R2
	B    l1HalfNEON_tail

l1HalfNEON_done:
	FMOVS F0, ret+24(FP)
	RET

// func cosHalfNEON(a, b *uint16, n int) (dot, na, nb float32)
// a·b, |a|² and |b|² over n halves in one pass, for cosFinish.
TEXT ·cosHalfNEON(SB), NOSPLIT, $0-36
	MOVD a+0(FP), R0
	MOVD b+8(FP), R1
	MOVD n+16(FP), R2
	VEOR V0.B16, V0.B16, V0.B16
	VEOR V1.B16, V1.B16, V1.B16
	VEOR V2.B16, V2.B16, V2.B16
	VEOR V3.B16, V3.B16, V3.B16
	VEOR V12.B16, V12.B16, V12.B16
	VEOR V13.B16, V13.B16, V13.B16
	VEOR V14.B16, V14.B16, V14.B16
	VEOR V15.B16, V15.B16, V15.B16
	VEOR V20.B16, V20.B16, V20.B16
	VEOR V21.B16, V21.B16, V21.B16
	VEOR V22.B16, V22.B16, V22.B16
	VEOR V23.B16, V23.B16, V23.B16

cosHalfNEON_loop16:
	CMP  $16, R2
	BLT  cosHalfNEON_loop4
	VLD1.P 32(R0), [V16.H8, V17.H8]
	VLD1.P 32(R1), [V18.H8, V19.H8]
	WORD $0x0e217a04 // fcvtl v4.4s, v16.4h
	WORD $0x4e217a05 // fcvtl2 v5.4s, v16.8h
	WORD $0x0e217a26 // fcvtl v6.4s, v17.4h
	WORD $0x4e217a27 // fcvtl2 v7.4s, v17.8h
	WORD $0x0e217a48 // fcvtl v8.4s, v18.4h
	WORD $0x4e217a49 // fcvtl2 v9.4s, v18.8h
	WORD $0x0e217a6a // fcvtl v10.4s, v19.4h
	WORD $0x4e217a6b // fcvtl2 v11.4s, v19.8h
	VFMLA V8.S4, V4.S4, V0.S4
	VFMLA V4.S4, V4.S4, V12.S4
	VFMLA V8.S4, V8.S4, V20.S4
	VFMLA V9.S4, V5.S4, V1.S4
	VFMLA V5.S4, V5.S4, V13.S4
	VFMLA V9.S4, V9.S4, V21.S4
	VFMLA V10.S4, V6.S4, V2.S4
	VFMLA V6.S4, V6.S4, V14.S4
	VFMLA V10.S4, V10.S4, V22.S4
	VFMLA V11.S4, V7.S4, V3.S4
	VFMLA V7.S4, V7.S4, V15.S4
	VFMLA V11.S4, V11.S4, V23.S4
	SUB  $16, R2
	B    cosHalfNEON_loop16

cosHalfNEON_loop4:
	CMP  $4, R2
	BLT  cosHalfNEON_reduce
	VLD1.P 8(R0), [V16.H4]
	VLD1.P 8(R1), [V18.H4]
	WORD $0x0e217a04 // fcvtl v4.4s, v16.4h
	WORD $0x0e217a48 // fcvtl v8.4s, v18.4h
	VFMLA V8.S4, V4.S4, V0.S4
	VFMLA V4.S4, V4.S4, V12.S4
	VFMLA V8.S4, V8.S4, V20.S4
	SUB  $4, R2
	B    cosHalfNEON_loop4

cosHalfNEON_reduce:
	WORD $0x4e21d400 // fadd v0.4s, v0.4s, v1.4s
	WORD $0x4e23d442 // fadd v2.4s, v2.4s, v3.4s
	WORD $0x4e22d400 // fadd v0.4s, v0.4s, v2.4s
	WORD $0x6e20d400 // faddp v0.4s, v0.4s, v0.4s
	WORD $0x7e30d800 // faddp s0, v0.2s
	WORD $0x4e2dd58c // fadd v12.4s, v12.4s, v13.4s
	WORD $0x4e2fd5ce // fadd v14.4s, v14.4s, v15.4s
	WORD $0x4e2ed58c // fadd v12.4s, v12.4s, v14.4s
	WORD $0x6e2cd58c // faddp v12.4s, v12.4s, v12.4s
	WORD $0x7e30d98c // faddp s12, v12.2s
	WORD $0x4e35d694 // fadd v20.4s, v20.4s, v21.4s
	WORD $0x4e37d6d6 // fadd v22.4s, v22.4s, v23.4s
	WORD $0x4e36d694 // fadd v20.4s, v20.4s, v22.4s
	WORD $0x6e34d694 // faddp v20.4s, v20.4s, v20.4s
	WORD $0x7e30da94 // faddp s20, v20.2s

cosHalfNEON_tail:
	CBZ  R2, cosHalfNEON_done
	MOVHU.P 2(R0), R3
	MOVHU.P 2(R1), R4
	FMOVS R3, F16
	FMOVS R4, F18
	WORD $0x1ee24204 // fcvt s4, h16
	WORD $0x1ee24248 // fcvt s8, h18
	FMULS F8, F4, F5
	FADDS F5, F0, F0
	FMULS F4, F4, F5
	FADDS F5, F12, F12
	FMULS F8, F8, F5
	FADDS F5, F20, F20
	SUB  $1, R2
	B    cosHalfNEON_tail

cosHalfNEON_done:
	FMOVS F0, dot+24(FP)
	FMOVS F12, na+28(FP)
	FMOVS F20, nb+32(FP)
	RET

// func halfToFloat32NEON(dst *float32, src *uint16, n int)
TEXT ·halfToFloat32NEON(SB), NOSPLIT, $0-24
	MOVD dst+0(FP), R0
	MOVD src+8(FP), R1
	MOVD n+16(FP), R2

h2f_loop16:
	CMP  $16, R2
	BLT  h2f_loop4
	VLD1.P 32(R1), [V16.H8, V17.H8]
	WORD $0x0e217a04 // fcvtl v4.4s, v16.4h
	WORD $0x4e217a05 // fcvtl2 v5.4s, v16.8h
	WORD $0x0e217a26 // fcvtl v6.4s, v17.4h
	WORD $0x4e217a27 // fcvtl2 v7.4s, v17.8h
	VST1.P [V4.S4, V5.S4, V6.S4, V7.S4], 64(R0)
	SUB  $16, R2
	B    h2f_loop16

h2f_loop4:
	CMP  $4, R2
	BLT  h2f_tail
	VLD1.P 8(R1), [V16.H4]
	WORD $0x0e217a04 // fcvtl v4.4s, v16.4h
	VST1.P [V4.S4], 16(R0)
	SUB  $4, R2
	B    h2f_loop4

h2f_tail:
	CBZ  R2, h2f_done
	MOVHU.P 2(R1), R3
	FMOVS R3, F16
	WORD $0x1ee24204 // fcvt s4, h16
	FMOVS.P F4, 4(R0)
	SUB  $1, R2
	B    h2f_tail

h2f_done:
	RET

// func float32ToHalfNEON(dst *uint16, src *float32, n int)
// FCVTN rounds as FPCR says: to nearest even, which Go never changes.
TEXT ·float32ToHalfNEON(SB), NOSPLIT, $0-24
	MOVD dst+0(FP), R0
	MOVD src+8(FP), R1
	MOVD n+16(FP), R2

f2h_loop16:
	CMP  $16, R2
	BLT  f2h_loop4
	VLD1.P 64(R1), [V4.S4, V5.S4, V6.S4, V7.S4]
	WORD $0x0e216890 // fcvtn v16.4h, v4.4s
	WORD $0x4e2168b0 // fcvtn2 v16.8h, v5.4s
	WORD $0x0e2168d1 // fcvtn v17.4h, v6.4s
	WORD $0x4e2168f1 // fcvtn2 v17.8h, v7.4s
	VST1.P [V16.H8, V17.H8], 32(R0)
	SUB  $16, R2
	B    f2h_loop16

f2h_loop4:
	CMP  $4, R2
	BLT  f2h_tail
	VLD1.P 16(R1), [V4.S4]
	WORD $0x0e216890 // fcvtn v16.4h, v4.4s
	VST1.P [V16.H4], 8(R0)
	SUB  $4, R2
	B    f2h_loop4

f2h_tail:
	CBZ  R2, f2h_done
	FMOVS.P 4(R1), F4
	WORD $0x1e23c090 // fcvt h16, s4
	FMOVS F16, R3
	MOVH.P R3, 2(R0)
	SUB  $1, R2
	B    f2h_tail

f2h_done:
	RET

// func jaccardNEON(a, b *uint64, n int) (inter, union int)
// |a∧b| and |a∨b| over n words, n a multiple of 4 and at most popChunk: CNT per byte,
// two blocks' counts added bytewise (<= 16), then UADALP into 16-bit lanes (<= 32 a trip).
TEXT ·jaccardNEON(SB), NOSPLIT, $0-40
	MOVD a+0(FP), R0
	MOVD b+8(FP), R1
	MOVD n+16(FP), R2
	VEOR V16.B16, V16.B16, V16.B16
	VEOR V17.B16, V17.B16, V17.B16

jac_loop:
	CBZ  R2, jac_done
	VLD1.P 32(R0), [V0.B16, V1.B16]
	VLD1.P 32(R1), [V2.B16, V3.B16]
	VAND V2.B16, V0.B16, V4.B16
	VAND V3.B16, V1.B16, V5.B16
	VORR V2.B16, V0.B16, V6.B16
	VORR V3.B16, V1.B16, V7.B16
	VCNT V4.B16, V4.B16
	VCNT V5.B16, V5.B16
	VCNT V6.B16, V6.B16
	VCNT V7.B16, V7.B16
	WORD $0x4e258484 // add v4.16b, v4.16b, v5.16b
	WORD $0x4e2784c6 // add v6.16b, v6.16b, v7.16b
	WORD $0x6e206890 // uadalp v16.8h, v4.16b
	WORD $0x6e2068d1 // uadalp v17.8h, v6.16b
	SUB  $4, R2
	B    jac_loop

jac_done:
	WORD $0x6e703a10 // uaddlv s16, v16.8h
	WORD $0x6e703a31 // uaddlv s17, v17.8h
	FMOVS F16, R3
	FMOVS F17, R4
	MOVD R3, inter+24(FP)
	MOVD R4, union+32(FP)
	RET

// func hammingNEON(a, b *uint64, n int) int
// Σ popcount(a_i ^ b_i) over n words, n as for jaccardNEON.
TEXT ·hammingNEON(SB), NOSPLIT, $0-32
	MOVD a+0(FP), R0
	MOVD b+8(FP), R1
	MOVD n+16(FP), R2
	VEOR V16.B16, V16.B16, V16.B16

ham_loop:
	CBZ  R2, ham_done
	VLD1.P 32(R0), [V0.B16, V1.B16]
	VLD1.P 32(R1), [V2.B16, V3.B16]
	VEOR V2.B16, V0.B16, V4.B16
	VEOR V3.B16, V1.B16, V5.B16
	VCNT V4.B16, V4.B16
	VCNT V5.B16, V5.B16
	WORD $0x4e258484 // add v4.16b, v4.16b, v5.16b
	WORD $0x6e206890 // uadalp v16.8h, v4.16b
	SUB  $4, R2
	B    ham_loop

ham_done:
	WORD $0x6e703a10 // uaddlv s16, v16.8h
	FMOVS F16, R3
	MOVD R3, ret+24(FP)
	RET
