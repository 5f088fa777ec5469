// NEON kernels for arm64, hand-written: avo generates amd64 only. The Go assembler has no
// mnemonics for vector FADD/FSUB/FADDP on floats, so those are emitted as WORDs with the
// instruction spelled in the comment (checked with `go tool objdump` on the test binary).
//
// Each kernel works on 16 floats per trip in four independent accumulators (FMLA latency is
// 4 cycles on common cores), then 4 at a time, then a scalar tail of at most 3.

#include "textflag.h"

// func dotNEON(a, b *float32, n int) float32
TEXT ·dotNEON(SB), NOSPLIT, $0-28
	MOVD a+0(FP), R0
	MOVD b+8(FP), R1
	MOVD n+16(FP), R2
	VEOR V0.B16, V0.B16, V0.B16
	VEOR V1.B16, V1.B16, V1.B16
	VEOR V2.B16, V2.B16, V2.B16
	VEOR V3.B16, V3.B16, V3.B16

dot_loop16:
	CMP  $16, R2
	BLT  dot_loop4
	VLD1.P 64(R0), [V4.S4, V5.S4, V6.S4, V7.S4]
	VLD1.P 64(R1), [V8.S4, V9.S4, V10.S4, V11.S4]
	VFMLA V4.S4, V8.S4, V0.S4
	VFMLA V5.S4, V9.S4, V1.S4
	VFMLA V6.S4, V10.S4, V2.S4
	VFMLA V7.S4, V11.S4, V3.S4
	SUB  $16, R2
	B    dot_loop16

dot_loop4:
	CMP  $4, R2
	BLT  dot_reduce
	VLD1.P 16(R0), [V4.S4]
	VLD1.P 16(R1), [V8.S4]
	VFMLA V4.S4, V8.S4, V0.S4
	SUB  $4, R2
	B    dot_loop4

dot_reduce:
	WORD $0x4e21d400 // fadd  v0.4s, v0.4s, v1.4s
	WORD $0x4e23d442 // fadd  v2.4s, v2.4s, v3.4s
	WORD $0x4e22d400 // fadd  v0.4s, v0.4s, v2.4s
	WORD $0x6e20d400 // faddp v0.4s, v0.4s, v0.4s
	WORD $0x7e30d800 // faddp s0, v0.2s

dot_tail:
	CBZ  R2, dot_done
	FMOVS.P 4(R0), F4
	FMOVS.P 4(R1), F5
	FMULS F4, F5, F5
	FADDS F5, F0, F0
	SUB  $1, R2
	B    dot_tail

dot_done:
	FMOVS F0, ret+24(FP)
	RET

// func l2NEON(a, b *float32, n int) float32
TEXT ·l2NEON(SB), NOSPLIT, $0-28
	MOVD a+0(FP), R0
	MOVD b+8(FP), R1
	MOVD n+16(FP), R2
	VEOR V0.B16, V0.B16, V0.B16
	VEOR V1.B16, V1.B16, V1.B16
	VEOR V2.B16, V2.B16, V2.B16
	VEOR V3.B16, V3.B16, V3.B16

l2_loop16:
	CMP  $16, R2
	BLT  l2_loop4
	VLD1.P 64(R0), [V4.S4, V5.S4, V6.S4, V7.S4]
	VLD1.P 64(R1), [V8.S4, V9.S4, V10.S4, V11.S4]
	WORD $0x4ea8d484 // fsub v4.4s, v4.4s, v8.4s
	WORD $0x4ea9d4a5 // fsub v5.4s, v5.4s, v9.4s
	WORD $0x4eaad4c6 // fsub v6.4s, v6.4s, v10.4s
	WORD $0x4eabd4e7 // fsub v7.4s, v7.4s, v11.4s
	VFMLA V4.S4, V4.S4, V0.S4
	VFMLA V5.S4, V5.S4, V1.S4
	VFMLA V6.S4, V6.S4, V2.S4
	VFMLA V7.S4, V7.S4, V3.S4
	SUB  $16, R2
	B    l2_loop16

l2_loop4:
	CMP  $4, R2
	BLT  l2_reduce
	VLD1.P 16(R0), [V4.S4]
	VLD1.P 16(R1), [V8.S4]
	WORD $0x4ea8d484 // fsub v4.4s, v4.4s, v8.4s
	VFMLA V4.S4, V4.S4, V0.S4
	SUB  $4, R2
	B    l2_loop4

l2_reduce:
	WORD $0x4e21d400 // fadd  v0.4s, v0.4s, v1.4s
	WORD $0x4e23d442 // fadd  v2.4s, v2.4s, v3.4s
	WORD $0x4e22d400 // fadd  v0.4s, v0.4s, v2.4s
	WORD $0x6e20d400 // faddp v0.4s, v0.4s, v0.4s
	WORD $0x7e30d800 // faddp s0, v0.2s

l2_tail:
	CBZ  R2, l2_done
	FMOVS.P 4(R0), F4
	FMOVS.P 4(R1), F5
	FSUBS F5, F4, F4
	FMULS F4, F4, F4
	FADDS F4, F0, F0
	SUB  $1, R2
	B    l2_tail

l2_done:
	FMOVS F0, ret+24(FP)
	RET

// func dotNormNEON(a, b *float32, n int) (dot, nb float32)
// a·b and |b|² in one pass over b: cosine against a query whose norm is known.
TEXT ·dotNormNEON(SB), NOSPLIT, $0-32
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

dn_loop16:
	CMP  $16, R2
	BLT  dn_loop4
	VLD1.P 64(R0), [V4.S4, V5.S4, V6.S4, V7.S4]
	VLD1.P 64(R1), [V8.S4, V9.S4, V10.S4, V11.S4]
	VFMLA V4.S4, V8.S4, V0.S4
	VFMLA V5.S4, V9.S4, V1.S4
	VFMLA V6.S4, V10.S4, V2.S4
	VFMLA V7.S4, V11.S4, V3.S4
	VFMLA V8.S4, V8.S4, V12.S4
	VFMLA V9.S4, V9.S4, V13.S4
	VFMLA V10.S4, V10.S4, V14.S4
	VFMLA V11.S4, V11.S4, V15.S4
	SUB  $16, R2
	B    dn_loop16

dn_loop4:
	CMP  $4, R2
	BLT  dn_reduce
	VLD1.P 16(R0), [V4.S4]
	VLD1.P 16(R1), [V8.S4]
	VFMLA V4.S4, V8.S4, V0.S4
	VFMLA V8.S4, V8.S4, V12.S4
	SUB  $4, R2
	B    dn_loop4

dn_reduce:
	WORD $0x4e21d400 // fadd  v0.4s, v0.4s, v1.4s
	WORD $0x4e23d442 // fadd  v2.4s, v2.4s, v3.4s
	WORD $0x4e22d400 // fadd  v0.4s, v0.4s, v2.4s
	WORD $0x6e20d400 // faddp v0.4s, v0.4s, v0.4s
	WORD $0x7e30d800 // faddp s0, v0.2s
	WORD $0x4e2dd58c // fadd  v12.4s, v12.4s, v13.4s
	WORD $0x4e2fd5ce // fadd  v14.4s, v14.4s, v15.4s
	WORD $0x4e2ed58c // fadd  v12.4s, v12.4s, v14.4s
	WORD $0x6e2cd58c // faddp v12.4s, v12.4s, v12.4s
	WORD $0x7e30d98c // faddp s12, v12.2s

dn_tail:
	CBZ  R2, dn_done
	FMOVS.P 4(R0), F4
	FMOVS.P 4(R1), F5
	FMULS F4, F5, F4
	FADDS F4, F0, F0
	FMULS F5, F5, F5
	FADDS F5, F12, F12
	SUB  $1, R2
	B    dn_tail

dn_done:
	FMOVS F0, dot+24(FP)
	FMOVS F12, nb+28(FP)
	RET
