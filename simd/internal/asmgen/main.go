// Command asmgen writes simd's AVX2+FMA kernels (kernels_amd64.s and their Go
// declarations) with avo. Run it through `go generate ./simd/`, never by hand-editing the
// output.
//
// Every float32 kernel is one loop over rows around one inner loop over the vector, so a
// single pair, a batch and a gather share the same code: a single pair is a batch of one
// row, and a gather only differs in how a row's address is found. The inner loop does 32
// floats per trip in four independent accumulators: FMA latency is 4 cycles and the loop
// issues one FMA per two loads, so four chains keep the two load ports busy every cycle,
// which is the bound for a dot product (two loads per 8-float FMA).
package main

import (
	"flag"
	"math"

	. "github.com/mmcloughlin/avo/build"
	"github.com/mmcloughlin/avo/gotypes"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

type op int

const (
	opDot op = iota
	opL2
	opCos
)

func main() {
	flag.Parse()
	ConstraintExpr("amd64")

	for _, o := range []struct {
		name string
		op   op
	}{{"dot", opDot}, {"l2", opL2}, {"cos", opCos}} {
		floatKernel(o.name+"BatchAVX2", o.op, false)
		floatKernel(o.name+"GatherAVX2", o.op, true)
	}
	normSq()
	int8Kernel("dotInt8AVX2", false)
	int8Kernel("l2Int8AVX2", true)
	Generate()
}

var (
	one      Mem
	minusOne Mem
)

func floatKernel(name string, o op, gather bool) {
	sig := "func(q, data *float32, dim, rows int, "
	if gather {
		sig = "func(q, data *float32, dim int, idx *uint32, rows int, "
	}
	if o == opCos {
		sig += "qn float32, "
	}
	sig += "out *float32)"
	TEXT(name, NOSPLIT, sig)
	Pragma("noescape")
	Doc(name + " writes one distance per row to out; shapes are checked by the Go caller.")

	q := Load(Param("q"), GP64())
	data := Load(Param("data"), GP64())
	dim := Load(Param("dim"), GP64())
	rows := Load(Param("rows"), GP64())
	out := Load(Param("out"), GP64())
	var idx Register
	if gather {
		idx = Load(Param("idx"), GP64())
	}
	stride := GP64()
	MOVQ(dim, stride)
	SHLQ(U8(2), stride)

	r := GP64()
	XORQ(r, r)
	Label(name + "_row")
	CMPQ(r, rows)
	JE(LabelRef(name + "_done"))

	pd := GP64()
	if gather {
		MOVLQZX(Mem{Base: idx, Index: r, Scale: 4}, pd)
		IMULQ(stride, pd)
		ADDQ(data, pd)
	} else {
		MOVQ(data, pd)
		ADDQ(stride, data)
	}
	pq := GP64()
	MOVQ(q, pq)
	cnt := GP64()
	MOVQ(dim, cnt)

	s, n := rowBody(name, o, pq, pd, cnt)
	if o == opCos {
		// VMOVSS, not avo's Load (legacy MOVSS): an SSE instruction while the ymm upper
		// halves are dirty costs a state transition on Intel cores, measured as ~2x on
		// this kernel.
		qn := XMM()
		VMOVSS(addr(Param("qn")), qn)
		cosFinish(s, n, qn)
	}
	VMOVSS(s, Mem{Base: out, Index: r, Scale: 4})
	INCQ(r)
	JMP(LabelRef(name + "_row"))

	Label(name + "_done")
	VZEROUPPER()
	RET()
}

// rowBody leaves the row's sum in the low lane of s (and, for cosine, the row's squared
// norm in n), advancing pq and pd and consuming cnt.
func rowBody(name string, o op, pq, pd, cnt Register) (s, n VecVirtual) {
	const unroll = 4
	acc := make([]VecVirtual, unroll)
	nacc := make([]VecVirtual, unroll)
	for k := range acc {
		acc[k] = YMM()
		VXORPS(acc[k], acc[k], acc[k])
		if o == opCos {
			nacc[k] = YMM()
			VXORPS(nacc[k], nacc[k], nacc[k])
		}
	}
	step := func(k int, disp int) {
		x := YMM()
		VMOVUPS(Mem{Base: pq, Disp: disp}, x)
		switch o {
		case opDot:
			VFMADD231PS(Mem{Base: pd, Disp: disp}, x, acc[k])
		case opL2:
			VSUBPS(Mem{Base: pd, Disp: disp}, x, x)
			VFMADD231PS(x, x, acc[k])
		case opCos:
			y := YMM()
			VMOVUPS(Mem{Base: pd, Disp: disp}, y)
			VFMADD231PS(y, x, acc[k])
			VFMADD231PS(y, y, nacc[k])
		}
	}

	Label(name + "_loop32")
	CMPQ(cnt, Imm(32))
	JL(LabelRef(name + "_loop8"))
	for k := 0; k < unroll; k++ {
		step(k, 32*k)
	}
	ADDQ(Imm(128), pq)
	ADDQ(Imm(128), pd)
	SUBQ(Imm(32), cnt)
	JMP(LabelRef(name + "_loop32"))

	Label(name + "_loop8")
	CMPQ(cnt, Imm(8))
	JL(LabelRef(name + "_reduce"))
	step(0, 0)
	ADDQ(Imm(32), pq)
	ADDQ(Imm(32), pd)
	SUBQ(Imm(8), cnt)
	JMP(LabelRef(name + "_loop8"))

	Label(name + "_reduce")
	s = reduce(acc)
	if o == opCos {
		n = reduce(nacc)
	}

	// At most 7 floats left: scalar FMAs into the reduced sums.
	Label(name + "_tail")
	TESTQ(cnt, cnt)
	JE(LabelRef(name + "_end"))
	x := XMM()
	VMOVSS(Mem{Base: pq}, x)
	switch o {
	case opDot:
		VFMADD231SS(Mem{Base: pd}, x, s)
	case opL2:
		VSUBSS(Mem{Base: pd}, x, x)
		VFMADD231SS(x, x, s)
	case opCos:
		y := XMM()
		VMOVSS(Mem{Base: pd}, y)
		VFMADD231SS(y, x, s)
		VFMADD231SS(y, y, n)
	}
	ADDQ(Imm(4), pq)
	ADDQ(Imm(4), pd)
	DECQ(cnt)
	JMP(LabelRef(name + "_tail"))
	Label(name + "_end")
	return s, n
}

// reduce sums four ymm accumulators into the low lane of an xmm register, pairwise so no
// single lane's error dominates.
func reduce(acc []VecVirtual) VecVirtual {
	VADDPS(acc[1], acc[0], acc[0])
	VADDPS(acc[3], acc[2], acc[2])
	VADDPS(acc[2], acc[0], acc[0])
	hi := XMM()
	VEXTRACTF128(U8(1), acc[0], hi)
	s := acc[0].AsX()
	VADDPS(hi, s, s)
	VMOVHLPS(s, hi, hi)
	VADDPS(hi, s, s)
	VMOVSHDUP(s, hi)
	VADDSS(hi, s, s)
	return s.(VecVirtual)
}

// cosFinish replaces s (dot) by pgvector's cosine distance 1 - dot/sqrt(qn*n), in float64,
// clamped to [-1, 1] before the subtraction. MINSD/MAXSD return their second source when
// either is NaN, so with the constant first a NaN similarity survives the clamp.
func cosFinish(s, n VecVirtual, m Register) {
	if one.Symbol.Name == "" {
		// As bit patterns: avo v0.5 prints F64(1) as $(1), which the assembler reads as
		// the integer 1.
		one = ConstData("one", U64(math.Float64bits(1)))
		minusOne = ConstData("minusone", U64(math.Float64bits(-1)))
	}
	VCVTSS2SD(m, m, m)
	VCVTSS2SD(n, n, n)
	VMULSD(m, n, n)
	VSQRTSD(n, n, n)
	VCVTSS2SD(s, s, s)
	VDIVSD(n, s, s)
	c := XMM()
	VMOVSD(one, c)
	VMINSD(s, c, s)
	VMOVSD(minusOne, c)
	VMAXSD(s, c, s)
	VMOVSD(one, c)
	VSUBSD(s, c, s)
	VCVTSD2SS(s, s, s)
}

func normSq() {
	TEXT("normSqAVX2", NOSPLIT, "func(a *float32, n int) float32")
	Pragma("noescape")
	Doc("normSqAVX2 returns the sum of squares of the n floats at a.")
	p := Load(Param("a"), GP64())
	cnt := Load(Param("n"), GP64())
	// The dot kernel's body with both operands the same vector: loads hit L1 twice but
	// the code is shared, and a norm is computed once per query, not per row.
	s, _ := rowBody("normSqAVX2", opDot, p, func() Register { r := GP64(); MOVQ(p, r); return r }(), cnt)
	VMOVSS(s, addr(ReturnIndex(0)))
	VZEROUPPER()
	RET()
}

func addr(c gotypes.Component) Mem {
	b, err := c.Resolve()
	if err != nil {
		panic(err)
	}
	return b.Addr
}

// int8Kernel sign-extends 16 bytes at a time to int16 (VPMOVSXBW) and multiplies pairs into
// int32 lanes (VPMADDWD), which is exact for every int8 input including -128; for L2 the
// int16 difference (|d| ≤ 255) is squared the same way.
func int8Kernel(name string, l2 bool) {
	TEXT(name, NOSPLIT, "func(a, b *int8, n int) int32")
	Pragma("noescape")
	Doc(name + " returns the exact int32 result over the n bytes at a and b.")
	pa := Load(Param("a"), GP64())
	pb := Load(Param("b"), GP64())
	cnt := Load(Param("n"), GP64())
	const unroll = 4
	acc := make([]VecVirtual, unroll)
	for k := range acc {
		acc[k] = YMM()
		VPXOR(acc[k], acc[k], acc[k])
	}
	step := func(k, disp int) {
		x, y := YMM(), YMM()
		VPMOVSXBW(Mem{Base: pa, Disp: disp}, x)
		VPMOVSXBW(Mem{Base: pb, Disp: disp}, y)
		if l2 {
			VPSUBW(y, x, x)
			y = x
		}
		VPMADDWD(y, x, x)
		VPADDD(x, acc[k], acc[k])
	}
	Label(name + "_loop64")
	CMPQ(cnt, Imm(64))
	JL(LabelRef(name + "_loop16"))
	for k := 0; k < unroll; k++ {
		step(k, 16*k)
	}
	ADDQ(Imm(64), pa)
	ADDQ(Imm(64), pb)
	SUBQ(Imm(64), cnt)
	JMP(LabelRef(name + "_loop64"))
	Label(name + "_loop16")
	CMPQ(cnt, Imm(16))
	JL(LabelRef(name + "_reduce"))
	step(0, 0)
	ADDQ(Imm(16), pa)
	ADDQ(Imm(16), pb)
	SUBQ(Imm(16), cnt)
	JMP(LabelRef(name + "_loop16"))

	Label(name + "_reduce")
	VPADDD(acc[1], acc[0], acc[0])
	VPADDD(acc[3], acc[2], acc[2])
	VPADDD(acc[2], acc[0], acc[0])
	hi := XMM()
	VEXTRACTI128(U8(1), acc[0], hi)
	s := acc[0].AsX()
	VPADDD(hi, s, s)
	VPSHUFD(U8(0x4e), s, hi)
	VPADDD(hi, s, s)
	VPSHUFD(U8(0xb1), s, hi)
	VPADDD(hi, s, s)
	sum := GP32()
	VMOVD(s, sum)

	Label(name + "_tail")
	TESTQ(cnt, cnt)
	JE(LabelRef(name + "_end"))
	x, y := GP32(), GP32()
	MOVBLSX(Mem{Base: pa}, x)
	MOVBLSX(Mem{Base: pb}, y)
	if l2 {
		SUBL(y, x)
		IMULL(x, x)
	} else {
		IMULL(y, x)
	}
	ADDL(x, sum)
	INCQ(pa)
	INCQ(pb)
	DECQ(cnt)
	JMP(LabelRef(name + "_tail"))
	Label(name + "_end")
	Store(sum, ReturnIndex(0))
	VZEROUPPER()
	RET()
}
