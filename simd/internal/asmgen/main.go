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
	"strings"

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
	for _, o := range []struct {
		name string
		op   op
	}{{"dot", opDot}, {"l2", opL2}, {"cos", opCos}} {
		floatKernel(o.name+"BatchAVX512", o.op, false)
		floatKernel(o.name+"GatherAVX512", o.op, true)
	}
	dotInt8GatherAVX512()
	prefetchGather()
	normSq()
	cosPair()
	dotInt8Madd()
	dotInt8Wide()
	l2Int8AbsDiff()
	pairKernel("l1AVX2", eltF32, pairL1)
	for _, o := range []struct {
		name string
		op   pairOp
	}{{"dot", pairDot}, {"l2", pairL2}, {"l1", pairL1}, {"cos", pairCos}} {
		pairKernel(o.name+"HalfAVX2", eltF16, o.op)
	}
	cosHalfQuery()
	halfToFloat()
	floatToHalf()
	popcountKernel("jaccardAVX2", true)
	popcountKernel("hammingAVX2", false)
	Generate()
}

var (
	one      Mem
	minusOne Mem
	two      Mem
	oneF32   Mem
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
	// A gathered row is rarely in cache (at 1,536 dims a row is 6 kB, and the rows of a
	// graph neighbourhood are scattered over the whole slab): the next row is prefetched
	// in step with the reads of this one, so its lines are in flight while this row is
	// summed. That measured several times faster than leaving it to the hardware
	// prefetcher, which stops at every page boundary and sees a new stream per row.
	var pn Register
	if gather {
		pn = GP64()
		next := GP64()
		MOVQ(r, next)
		INCQ(next)
		CMPQ(next, rows)
		JE(LabelRef(name + "_last"))
		MOVLQZX(Mem{Base: idx, Index: next, Scale: 4}, pn)
		IMULQ(stride, pn)
		ADDQ(data, pn)
		JMP(LabelRef(name + "_prefetch_set"))
		Label(name + "_last")
		MOVQ(pd, pn) // nothing follows: re-touch this row's lines, which are needed anyway
		Label(name + "_prefetch_set")
	}
	pq := GP64()
	MOVQ(q, pq)
	cnt := GP64()
	MOVQ(dim, cnt)

	var s, n VecVirtual
	if strings.HasSuffix(name, "AVX512") {
		s, n = rowBody512(name, o, pq, pd, pn, cnt)
	} else {
		s, n = rowBody(name, o, pq, pd, pn, cnt)
	}
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
//
// pn, when not nil, is the next row's address: each 32-float trip prefetches the same two
// cache lines of it, advancing pn.
func rowBody(name string, o op, pq, pd, pn, cnt Register) (s, n VecVirtual) {
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
	if pn != nil {
		PREFETCHT0(Mem{Base: pn})
		PREFETCHT0(Mem{Base: pn, Disp: 64})
		ADDQ(Imm(128), pn)
	}
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

// rowBody512 is rowBody with 512-bit registers: 64 floats per trip in four zmm
// accumulators, then 16 at a time, then the last 0-15 in one masked load (lanes past the
// end read as zero and cannot fault), so there is no scalar tail. AVX-512F with DQ and VL.
func rowBody512(name string, o op, pq, pd, pn, cnt Register) (s, n VecVirtual) {
	const unroll = 4
	acc := make([]VecVirtual, unroll)
	nacc := make([]VecVirtual, unroll)
	for k := range acc {
		acc[k] = ZMM()
		VPXORD(acc[k], acc[k], acc[k])
		if o == opCos {
			nacc[k] = ZMM()
			VPXORD(nacc[k], nacc[k], nacc[k])
		}
	}
	// step adds one 16-float block; x and y are the query's and the row's floats.
	step := func(k int, x, y Op) {
		switch o {
		case opDot:
			VFMADD231PS(y, x, acc[k])
		case opL2:
			VSUBPS(y, x, x)
			VFMADD231PS(x, x, acc[k])
		case opCos:
			VFMADD231PS(y, x, acc[k])
			VFMADD231PS(y, y, nacc[k])
		}
	}
	load := func(k int, disp int) {
		x := ZMM()
		VMOVUPS(Mem{Base: pq, Disp: disp}, x)
		if o == opCos {
			y := ZMM()
			VMOVUPS(Mem{Base: pd, Disp: disp}, y)
			step(k, x, y)
			return
		}
		step(k, x, Mem{Base: pd, Disp: disp})
	}

	Label(name + "_loop64")
	CMPQ(cnt, Imm(64))
	JL(LabelRef(name + "_loop16"))
	if pn != nil {
		for l := 0; l < 4; l++ {
			PREFETCHT0(Mem{Base: pn, Disp: 64 * l})
		}
		ADDQ(U32(256), pn)
	}
	for k := 0; k < unroll; k++ {
		load(k, 64*k)
	}
	ADDQ(U32(256), pq)
	ADDQ(U32(256), pd)
	SUBQ(Imm(64), cnt)
	JMP(LabelRef(name + "_loop64"))

	Label(name + "_loop16")
	CMPQ(cnt, Imm(16))
	JL(LabelRef(name + "_tail"))
	load(0, 0)
	ADDQ(Imm(64), pq)
	ADDQ(Imm(64), pd)
	SUBQ(Imm(16), cnt)
	JMP(LabelRef(name + "_loop16"))

	Label(name + "_tail")
	TESTQ(cnt, cnt)
	JE(LabelRef(name + "_reduce"))
	bits := GP32()
	MOVL(U32(0xffffffff), bits)
	BZHIL(cnt.(GPVirtual).As32(), bits, bits)
	mask := K()
	KMOVW(bits, mask)
	x, y := ZMM(), ZMM()
	VMOVUPS_Z(Mem{Base: pq}, mask, x)
	VMOVUPS_Z(Mem{Base: pd}, mask, y)
	step(1, x, y)
	XORQ(cnt, cnt)

	Label(name + "_reduce")
	s = reduce512(acc)
	if o == opCos {
		n = reduce512(nacc)
	}
	return s, n
}

// reduce512 sums four zmm accumulators into the low lane of an xmm register.
func reduce512(acc []VecVirtual) VecVirtual {
	VADDPS(acc[1], acc[0], acc[0])
	VADDPS(acc[3], acc[2], acc[2])
	VADDPS(acc[2], acc[0], acc[0])
	hi := YMM()
	VEXTRACTF64X4(U8(1), acc[0], hi)
	lo := acc[0].AsY().(VecVirtual)
	VADDPS(hi, lo, lo)
	h := XMM()
	VEXTRACTF128(U8(1), lo, h)
	s := lo.AsX()
	VADDPS(h, s, s)
	VMOVHLPS(s, h, h)
	VADDPS(h, s, s)
	VMOVSHDUP(s, h)
	VADDSS(h, s, s)
	return s.(VecVirtual)
}

// dotInt8GatherAVX512 is the int8 dot product of q with gathered rows, exact for every
// int8 (both sides widened to int16, then VPMADDWD: no saturating or -128 special case, so
// no retry as in dotInt8Madd), 64 bytes per trip in two accumulators, a masked tail, and the
// next row prefetched as in the float gathers: an int8 traversal reads a quarter of the
// float32 bytes, but the rows are just as scattered. AVX-512 BW.
func dotInt8GatherAVX512() {
	name := "dotInt8GatherAVX512"
	TEXT(name, NOSPLIT, "func(q, data *int8, dim int, idx *uint32, rows int, out *int32)")
	Pragma("noescape")
	Doc(name + " writes the int8 dot product of q with each gathered row to out; shapes are checked by the Go caller.")
	q := Load(Param("q"), GP64())
	data := Load(Param("data"), GP64())
	dim := Load(Param("dim"), GP64())
	idx := Load(Param("idx"), GP64())
	rows := Load(Param("rows"), GP64())
	out := Load(Param("out"), GP64())

	r := GP64()
	XORQ(r, r)
	Label(name + "_row")
	CMPQ(r, rows)
	JE(LabelRef(name + "_done"))
	pd := GP64()
	MOVLQZX(Mem{Base: idx, Index: r, Scale: 4}, pd)
	IMULQ(dim, pd)
	ADDQ(data, pd)
	pn := GP64()
	next := GP64()
	MOVQ(r, next)
	INCQ(next)
	CMPQ(next, rows)
	JE(LabelRef(name + "_last"))
	MOVLQZX(Mem{Base: idx, Index: next, Scale: 4}, pn)
	IMULQ(dim, pn)
	ADDQ(data, pn)
	JMP(LabelRef(name + "_prefetch_set"))
	Label(name + "_last")
	MOVQ(pd, pn)
	Label(name + "_prefetch_set")
	pq := GP64()
	MOVQ(q, pq)
	cnt := GP64()
	MOVQ(dim, cnt)
	acc := []VecVirtual{ZMM(), ZMM()}
	for _, a := range acc {
		VPXORD(a, a, a)
	}
	block := func(a VecVirtual, x, y Op) {
		wx, wy := ZMM(), ZMM()
		VPMOVSXBW(x, wx)
		VPMOVSXBW(y, wy)
		VPMADDWD(wy, wx, wx)
		VPADDD(wx, a, a)
	}

	Label(name + "_loop64")
	CMPQ(cnt, Imm(64))
	JL(LabelRef(name + "_loop32"))
	PREFETCHT0(Mem{Base: pn})
	ADDQ(Imm(64), pn)
	block(acc[0], Mem{Base: pq}, Mem{Base: pd})
	block(acc[1], Mem{Base: pq, Disp: 32}, Mem{Base: pd, Disp: 32})
	ADDQ(Imm(64), pq)
	ADDQ(Imm(64), pd)
	SUBQ(Imm(64), cnt)
	JMP(LabelRef(name + "_loop64"))

	Label(name + "_loop32")
	CMPQ(cnt, Imm(32))
	JL(LabelRef(name + "_tail"))
	block(acc[0], Mem{Base: pq}, Mem{Base: pd})
	ADDQ(Imm(32), pq)
	ADDQ(Imm(32), pd)
	SUBQ(Imm(32), cnt)

	Label(name + "_tail")
	TESTQ(cnt, cnt)
	JE(LabelRef(name + "_reduce"))
	bits := GP32()
	MOVL(U32(0xffffffff), bits)
	BZHIL(cnt.(GPVirtual).As32(), bits, bits)
	mask := K()
	KMOVD(bits, mask)
	x, y := YMM(), YMM()
	VMOVDQU8_Z(Mem{Base: pq}, mask, x)
	VMOVDQU8_Z(Mem{Base: pd}, mask, y)
	block(acc[1], x, y)

	Label(name + "_reduce")
	VPADDD(acc[1], acc[0], acc[0])
	hi := YMM()
	VEXTRACTI64X4(U8(1), acc[0], hi)
	lo := acc[0].AsY().(VecVirtual)
	VPADDD(hi, lo, lo)
	h := XMM()
	VEXTRACTI128(U8(1), lo, h)
	sx := lo.AsX().(VecVirtual)
	VPADDD(h, sx, sx)
	VPSHUFD(U8(0x4e), sx, h)
	VPADDD(h, sx, sx)
	VPSHUFD(U8(0xb1), sx, h)
	VPADDD(h, sx, sx)
	VMOVD(sx, Mem{Base: out, Index: r, Scale: 4})
	INCQ(r)
	JMP(LabelRef(name + "_row"))

	Label(name + "_done")
	VZEROUPPER()
	RET()
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

// prefetchGather starts loading, without waiting for them, the cache lines a search is
// about to read at scattered places: for each row i, `lines` consecutive lines from
// base + idx[i]*stride. A prefetch never faults, so no address needs checking; it is plain
// x86-64 (SSE), so every amd64 path shares it.
func prefetchGather() {
	name := "prefetchGatherAMD64"
	TEXT(name, NOSPLIT, "func(base *byte, stride int, idx *uint32, rows int, lines int)")
	Pragma("noescape")
	Doc(name + " prefetches lines cache lines at base + idx[i]*stride for each of the rows ids at idx.")
	base := Load(Param("base"), GP64())
	stride := Load(Param("stride"), GP64())
	idx := Load(Param("idx"), GP64())
	rows := Load(Param("rows"), GP64())
	lines := Load(Param("lines"), GP64())

	r := GP64()
	XORQ(r, r)
	Label(name + "_row")
	CMPQ(r, rows)
	JE(LabelRef(name + "_done"))
	p := GP64()
	MOVLQZX(Mem{Base: idx, Index: r, Scale: 4}, p)
	IMULQ(stride, p)
	ADDQ(base, p)
	k := GP64()
	MOVQ(lines, k)
	Label(name + "_line")
	TESTQ(k, k)
	JE(LabelRef(name + "_next"))
	PREFETCHT0(Mem{Base: p})
	ADDQ(Imm(64), p)
	DECQ(k)
	JMP(LabelRef(name + "_line"))
	Label(name + "_next")
	INCQ(r)
	JMP(LabelRef(name + "_row"))
	Label(name + "_done")
	RET()
}

func normSq() {
	TEXT("normSqAVX2", NOSPLIT, "func(a *float32, n int) float32")
	Pragma("noescape")
	Doc("normSqAVX2 returns the sum of squares of the n floats at a.")
	p := Load(Param("a"), GP64())
	cnt := Load(Param("n"), GP64())
	// The dot kernel's body with both operands the same vector: loads hit L1 twice but
	// the code is shared, and a norm is computed once per query, not per row.
	s, _ := rowBody("normSqAVX2", opDot, p, func() Register { r := GP64(); MOVQ(p, r); return r }(), nil, cnt)
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

// cosPair is the single-pair cosine in one pass: a·b, |a|² and |b|² accumulate together
// (three FMAs per two loads, so the loop is bound by the two FMA ports, not the loads),
// then the same float64 finish as the batch kernels. The batch form keeps its two-pass
// shape because there |q|² is computed once for all rows.
func cosPair() {
	TEXT("cosPairAVX2", NOSPLIT, "func(a, b *float32, n int) float32")
	Pragma("noescape")
	Doc("cosPairAVX2 returns pgvector's cosine distance of the n floats at a and b, in one pass.")
	pa := Load(Param("a"), GP64())
	pb := Load(Param("b"), GP64())
	cnt := Load(Param("n"), GP64())
	s, nb, na := rowBody3("cosPairAVX2", pa, pb, cnt)
	cosFinishBranchy("cosPairAVX2", s, nb, na)
	VMOVSS(s, addr(ReturnIndex(0)))
	VZEROUPPER()
	RET()
}

// cosFinishBranchy computes what cosFinish does, 1 - clamp(dot/sqrt(na*nb), -1, 1) in
// float64, as the equivalent clamp(1 - sim, 0, 2) with compare-and-branch instead of
// MINSD/MAXSD: the branches are almost never taken (only rounding pushes |sim| past 1) and
// predicted, so the clamp leaves the latency chain of a single pair, about 8 cycles of ~50
// after the loop. (The batch kernels keep cosFinish: there the next row hides the latency.)
// A NaN compares unordered and skips both clamps.
func cosFinishBranchy(name string, s, n VecVirtual, m Register) {
	if one.Symbol.Name == "" {
		one = ConstData("one", U64(math.Float64bits(1)))
		minusOne = ConstData("minusone", U64(math.Float64bits(-1)))
	}
	if two.Symbol.Name == "" {
		two = ConstData("two", U64(math.Float64bits(2)))
	}
	VCVTSS2SD(m, m, m)
	VCVTSS2SD(n, n, n)
	VMULSD(m, n, n)
	VSQRTSD(n, n, n)
	VCVTSS2SD(s, s, s)
	VDIVSD(n, s, s)
	c := XMM()
	VMOVSD(one, c)
	VSUBSD(s, c, s) // s = 1 - sim
	VXORPD(c, c, c)
	VUCOMISD(c, s) // s against 0
	JPS(LabelRef(name + "_finished"))
	JCS(LabelRef(name + "_zero"))
	VUCOMISD(two, s) // s against 2
	JHI(LabelRef(name + "_two"))
	Label(name + "_finished")
	VCVTSD2SS(s, s, s)
	JMP(LabelRef(name + "_finish_end"))
	Label(name + "_zero")
	VXORPS(s, s, s)
	JMP(LabelRef(name + "_finish_end"))
	Label(name + "_two")
	VMOVSD(two, s)
	VCVTSD2SS(s, s, s)
	Label(name + "_finish_end")
}

// rowBody3 is rowBody for the one-pass cosine: it returns a·b, |b|² and |a|² in the low
// lanes of three xmm registers.
func rowBody3(name string, pa, pb, cnt Register) (dot, nb, na VecVirtual) {
	const unroll = 4
	var acc [3][unroll]VecVirtual
	for j := range acc {
		for k := range acc[j] {
			acc[j][k] = YMM()
			VXORPS(acc[j][k], acc[j][k], acc[j][k])
		}
	}
	step := func(k, disp int) {
		x, y := YMM(), YMM()
		VMOVUPS(Mem{Base: pa, Disp: disp}, x)
		VMOVUPS(Mem{Base: pb, Disp: disp}, y)
		VFMADD231PS(y, x, acc[0][k])
		VFMADD231PS(y, y, acc[1][k])
		VFMADD231PS(x, x, acc[2][k])
	}
	Label(name + "_loop32")
	CMPQ(cnt, Imm(32))
	JL(LabelRef(name + "_loop8"))
	for k := 0; k < unroll; k++ {
		step(k, 32*k)
	}
	ADDQ(Imm(128), pa)
	ADDQ(Imm(128), pb)
	SUBQ(Imm(32), cnt)
	JMP(LabelRef(name + "_loop32"))

	Label(name + "_loop8")
	CMPQ(cnt, Imm(8))
	JL(LabelRef(name + "_reduce"))
	step(0, 0)
	ADDQ(Imm(32), pa)
	ADDQ(Imm(32), pb)
	SUBQ(Imm(8), cnt)
	JMP(LabelRef(name + "_loop8"))

	Label(name + "_reduce")
	dot, nb, na = reduce(acc[0][:]), reduce(acc[1][:]), reduce(acc[2][:])

	Label(name + "_tail")
	TESTQ(cnt, cnt)
	JE(LabelRef(name + "_end"))
	x, y := XMM(), XMM()
	VMOVSS(Mem{Base: pa}, x)
	VMOVSS(Mem{Base: pb}, y)
	VFMADD231SS(y, x, dot)
	VFMADD231SS(y, y, nb)
	VFMADD231SS(x, x, na)
	ADDQ(Imm(4), pa)
	ADDQ(Imm(4), pb)
	DECQ(cnt)
	JMP(LabelRef(name + "_tail"))
	Label(name + "_end")
	return dot, nb, na
}

// int8Body is the loop shared by the int8 kernels: step turns 32 (or, once, 16) bytes of a
// and b into int32 lanes to add; four accumulators over 128-byte trips, then 32-byte trips,
// then one 16-byte step in xmm (a VEX xmm write would clear an accumulator's upper half, so
// it adds into the already reduced sum), then a scalar tail of at most 15 bytes done with
// exact scalar arithmetic by scalar. It returns the sum in a GP32.
func int8Body(name string, pa, pb, cnt Register, step func(k int, x, y VecVirtual) VecVirtual, scalar func(x, y Register)) Register {
	const unroll = 4
	acc := make([]VecVirtual, unroll)
	for k := range acc {
		acc[k] = YMM()
		VPXOR(acc[k], acc[k], acc[k])
	}
	load := func(disp int, wide bool) (x, y VecVirtual) {
		if wide {
			x, y = YMM(), YMM()
		} else {
			x, y = XMM(), XMM()
		}
		VMOVDQU(Mem{Base: pa, Disp: disp}, x)
		VMOVDQU(Mem{Base: pb, Disp: disp}, y)
		return x, y
	}
	Label(name + "_loop128")
	CMPQ(cnt, Imm(128))
	JL(LabelRef(name + "_loop32"))
	for k := 0; k < unroll; k++ {
		x, y := load(32*k, true)
		VPADDD(step(k, x, y), acc[k], acc[k])
	}
	ADDQ(Imm(128), pa)
	ADDQ(Imm(128), pb)
	SUBQ(Imm(128), cnt)
	JMP(LabelRef(name + "_loop128"))
	Label(name + "_loop32")
	CMPQ(cnt, Imm(32))
	JL(LabelRef(name + "_reduce"))
	x, y := load(0, true)
	VPADDD(step(-1, x, y), acc[0], acc[0])
	ADDQ(Imm(32), pa)
	ADDQ(Imm(32), pb)
	SUBQ(Imm(32), cnt)
	JMP(LabelRef(name + "_loop32"))

	Label(name + "_reduce")
	VPADDD(acc[1], acc[0], acc[0])
	VPADDD(acc[3], acc[2], acc[2])
	VPADDD(acc[2], acc[0], acc[0])
	hi := XMM()
	VEXTRACTI128(U8(1), acc[0], hi)
	s := acc[0].AsX()
	VPADDD(hi, s, s)
	CMPQ(cnt, Imm(16))
	JL(LabelRef(name + "_fold"))
	x, y = load(0, false)
	VPADDD(step(-1, x, y), s, s)
	ADDQ(Imm(16), pa)
	ADDQ(Imm(16), pb)
	SUBQ(Imm(16), cnt)
	Label(name + "_fold")
	VPSHUFD(U8(0x4e), s, hi)
	VPADDD(hi, s, s)
	VPSHUFD(U8(0xb1), s, hi)
	VPADDD(hi, s, s)
	sum := GP32()
	VMOVD(s, sum)

	Label(name + "_tail")
	TESTQ(cnt, cnt)
	JE(LabelRef(name + "_end"))
	xs, ys := GP32(), GP32()
	MOVBLSX(Mem{Base: pa}, xs)
	MOVBLSX(Mem{Base: pb}, ys)
	scalar(xs, ys)
	ADDL(xs, sum)
	INCQ(pa)
	INCQ(pb)
	DECQ(cnt)
	JMP(LabelRef(name + "_tail"))
	Label(name + "_end")
	return sum
}

// int16Ones returns a register of int16 ones (all-ones words shifted right by 15).
func int16Ones() VecVirtual {
	ones := YMM()
	VPCMPEQW(ones, ones, ones)
	VPSRLW(U8(15), ones, ones)
	return ones
}

// dotInt8Madd multiplies with VPMADDUBSW: |a| as the unsigned operand (|−128| = 128 is
// still right as an unsigned byte) and b with a's sign applied as the signed one, so each
// product is a·b; adjacent pairs sum into int16 and VPMADDWD by ones widens them to int32.
// That is 32 products for four port-0/1 instructions, against 16 for two port-5 widenings
// in the exact kernel below. It is exact unless b holds −128: sign(−128) negated wraps
// to −128, and with a = −128 as well two products of 128·128 would saturate int16. With
// b in [−127, 127] a pair sums to at most 2·128·127 = 32512 < 32767. So the kernel keeps
// the running minimum of b's bytes and reports whether −128 was seen; the caller then
// reruns the exact kernel. The quantizers never write −128. The check is a fifth port-0/1
// instruction per 32 bytes, measured at ~8-10% of the kernel's time (bench/results/simd.md);
// it is kept so DotInt8 stays exact for every input. AVX2 has no cheaper test for one
// byte value, and two products per byte pair cannot be done in fewer than four
// instructions (abs, sign, multiply-add, widen), so ~2x the float kernel is the ceiling.
func dotInt8Madd() {
	const name = "dotInt8MaddAVX2"
	TEXT(name, NOSPLIT, "func(a, b *int8, n int) (dot int32, exact bool)")
	Pragma("noescape")
	Doc(name+" returns a·b over the n bytes at a and b; exact is false, and dot",
		"meaningless, when b holds -128 (then use dotInt8WideAVX2).")
	pa := Load(Param("a"), GP64())
	pb := Load(Param("b"), GP64())
	cnt := Load(Param("n"), GP64())
	ones := int16Ones()
	minB := YMM()
	VPXOR(minB, minB, minB)
	seen16 := GP32() // the 16-byte step's own check: its xmm writes cannot touch minB
	XORL(seen16, seen16)
	step := func(_ int, x, y VecVirtual) VecVirtual {
		o := ones
		if x.Size() == 16 {
			o = ones.AsX().(VecVirtual)
			t := XMM()
			VPABSB(y, t)
			VPMOVMSKB(t, seen16)
		} else {
			VPMINSB(y, minB, minB)
		}
		VPSIGNB(x, y, y)
		VPABSB(x, x)
		VPMADDUBSW(y, x, x)
		VPMADDWD(o, x, x)
		return x
	}
	sum := int8Body(name, pa, pb, cnt, step, func(x, y Register) { IMULL(y, x) })
	// |-128| is the only byte whose absolute value keeps the sign bit set.
	seen := GP32()
	t := YMM()
	VPABSB(minB, t)
	VPMOVMSKB(t, seen)
	ORL(seen16, seen)
	Store(sum, ReturnIndex(0))
	ok := GP8()
	SETEQ(ok)
	Store(ok, ReturnIndex(1))
	VZEROUPPER()
	RET()
}

// dotInt8Wide sign-extends 16 bytes at a time to int16 (VPMOVSXBW) and multiplies pairs
// into int32 lanes (VPMADDWD): exact for every int8 input including -128, at half the
// speed of dotInt8Madd, whose fallback it is.
func dotInt8Wide() {
	TEXT("dotInt8WideAVX2", NOSPLIT, "func(a, b *int8, n int) int32")
	Pragma("noescape")
	Doc("dotInt8WideAVX2 returns the exact a·b over the n bytes at a and b, for any int8 values.")
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
		VPMADDWD(y, x, x)
		VPADDD(x, acc[k], acc[k])
	}
	name := "dotInt8WideAVX2"
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
	IMULL(y, x)
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

// l2Int8AbsDiff squares |a-b| without widening the inputs: max(a,b) - min(a,b) wraps to the
// right unsigned byte (0..255) for every int8 pair, its even and odd bytes are zero-extended
// to int16 in place (mask, shift), and VPMADDWD squares and pairs them into int32 lanes.
// Nine instructions per 32 bytes spread over three ports, against the exact widening
// kernel's four port-5 sign-extensions; no input contract is needed.
func l2Int8AbsDiff() {
	TEXT("l2Int8AVX2", NOSPLIT, "func(a, b *int8, n int) int32")
	Pragma("noescape")
	Doc("l2Int8AVX2 returns the exact squared L2 distance over the n bytes at a and b, for any int8 values.")
	pa := Load(Param("a"), GP64())
	pb := Load(Param("b"), GP64())
	cnt := Load(Param("n"), GP64())
	low := YMM()
	VPCMPEQW(low, low, low)
	VPSRLW(U8(8), low, low) // 0x00ff in every word
	step := func(_ int, x, y VecVirtual) VecVirtual {
		m := low
		if x.Size() == 16 {
			m = low.AsX().(VecVirtual)
		}
		d := y // reuse
		mx := x
		if x.Size() == 16 {
			mx = XMM()
		} else {
			mx = YMM()
		}
		VPMAXSB(y, x, mx)
		VPMINSB(y, x, d)
		VPSUBB(d, mx, d)
		odd := x
		VPSRLW(U8(8), d, odd)
		VPAND(m, d, d)
		VPMADDWD(d, d, d)
		VPMADDWD(odd, odd, odd)
		VPADDD(odd, d, d)
		return d
	}
	sum := int8Body("l2Int8AVX2", pa, pb, cnt, step, func(x, y Register) { SUBL(y, x); IMULL(x, x) })
	Store(sum, ReturnIndex(0))
	VZEROUPPER()
	RET()
}

// elt is what a pair kernel reads: float32, or binary16 widened to float32 as it is
// loaded (F16C's VCVTPH2PS, exact, straight from memory).
type elt int

const (
	eltF32 elt = iota
	eltF16
)

type pairOp int

const (
	pairDot pairOp = iota
	pairL2
	pairL1
	pairCos
)

// pairKernel writes a single-pair kernel for the distances added for pgvector's other
// types: L1 over float32, and dot, squared L2, L1 and one-pass cosine over binary16. The
// shape is rowBody's: 32 elements per trip in four accumulators (per sum), then 8, then a
// pairwise reduction, then a scalar tail that converts its halves with the same
// instruction, so every element goes through the one exact conversion. L1 clears sign bits
// with an AND (VANDPS against 0x7fffffff), so its four chains are VADDPS, whose latency
// four accumulators cover. Half kernels read half the bytes of float32 ones for the same
// work; the conversion is one more port-0/5 uop per 8 elements, which the loads still
// outpace.
func pairKernel(name string, e elt, o pairOp) {
	typ, size := "float32", 4
	if e == eltF16 {
		typ, size = "uint16", 2
	}
	TEXT(name, NOSPLIT, "func(a, b *"+typ+", n int) float32")
	Pragma("noescape")
	Doc(name + " returns the distance of the n elements at a and b; shapes are checked by the Go caller.")
	pa := Load(Param("a"), GP64())
	pb := Load(Param("b"), GP64())
	cnt := Load(Param("n"), GP64())

	var mask, onev VecVirtual
	if o == pairL1 {
		mask = YMM()
		VPCMPEQD(mask, mask, mask)
		VPSRLD(U8(1), mask, mask)
	}
	// Over halves the two VCVTPH2PS per 8 elements take the FP add pipes on AMD Zen 4/5,
	// so the subtract and the L1 accumulate go to the FMA pipes instead, as x·1 - y and
	// |d|·1 + acc: the same single rounding, so the same sums, and L1 over halves measured
	// ~2x faster on Zen 5 (bench/results/simd.md). Intel cores run both forms on the same
	// ports.
	fmaSub := e == eltF16 && (o == pairL1 || o == pairL2)
	if fmaSub {
		if oneF32.Symbol.Name == "" {
			oneF32 = ConstData("onef32", U32(math.Float32bits(1)))
		}
		onev = YMM()
		VBROADCASTSS(oneF32, onev)
	}
	sums := 1
	if o == pairCos {
		sums = 3
	}
	const unroll = 4
	acc := make([][]VecVirtual, sums)
	for j := range acc {
		acc[j] = make([]VecVirtual, unroll)
		for k := range acc[j] {
			acc[j][k] = YMM()
			VXORPS(acc[j][k], acc[j][k], acc[j][k])
		}
	}
	load := func(p Register, disp int) VecVirtual {
		x := YMM()
		if e == eltF16 {
			VCVTPH2PS(Mem{Base: p, Disp: disp}, x)
		} else {
			VMOVUPS(Mem{Base: p, Disp: disp}, x)
		}
		return x
	}
	step := func(k, disp int) {
		x, y := load(pa, disp), load(pb, disp)
		switch o {
		case pairDot:
			VFMADD231PS(y, x, acc[0][k])
		case pairL2:
			if fmaSub {
				VFMSUB132PS(onev, y, x)
			} else {
				VSUBPS(y, x, x)
			}
			VFMADD231PS(x, x, acc[0][k])
		case pairL1:
			if fmaSub {
				VFMSUB132PS(onev, y, x)
				VANDPS(mask, x, x)
				VFMADD231PS(onev, x, acc[0][k])
			} else {
				VSUBPS(y, x, x)
				VANDPS(mask, x, x)
				VADDPS(x, acc[0][k], acc[0][k])
			}
		case pairCos:
			VFMADD231PS(y, x, acc[0][k])
			VFMADD231PS(y, y, acc[1][k])
			VFMADD231PS(x, x, acc[2][k])
		}
	}

	Label(name + "_loop32")
	CMPQ(cnt, Imm(32))
	JL(LabelRef(name + "_loop8"))
	for k := 0; k < unroll; k++ {
		step(k, 8*size*k)
	}
	ADDQ(Imm(uint64(32*size)), pa)
	ADDQ(Imm(uint64(32*size)), pb)
	SUBQ(Imm(32), cnt)
	JMP(LabelRef(name + "_loop32"))

	Label(name + "_loop8")
	CMPQ(cnt, Imm(8))
	JL(LabelRef(name + "_reduce"))
	step(0, 0)
	ADDQ(Imm(uint64(8*size)), pa)
	ADDQ(Imm(uint64(8*size)), pb)
	SUBQ(Imm(8), cnt)
	JMP(LabelRef(name + "_loop8"))

	Label(name + "_reduce")
	s := make([]VecVirtual, sums)
	for j := range acc {
		s[j] = reduce(acc[j])
	}

	// At most 7 elements left, one at a time into the reduced sums.
	Label(name + "_tail")
	TESTQ(cnt, cnt)
	JE(LabelRef(name + "_end"))
	loadOne := func(p Register) VecVirtual {
		x := XMM()
		if e == eltF16 {
			w := GP32()
			MOVWLZX(Mem{Base: p}, w)
			VMOVD(w, x)
			VCVTPH2PS(x, x)
		} else {
			VMOVSS(Mem{Base: p}, x)
		}
		return x
	}
	x, y := loadOne(pa), loadOne(pb)
	switch o {
	case pairDot:
		VFMADD231SS(y, x, s[0])
	case pairL2:
		VSUBSS(y, x, x)
		VFMADD231SS(x, x, s[0])
	case pairL1:
		VSUBSS(y, x, x)
		VANDPS(mask.AsX(), x, x)
		VADDSS(x, s[0], s[0])
	case pairCos:
		VFMADD231SS(y, x, s[0])
		VFMADD231SS(y, y, s[1])
		VFMADD231SS(x, x, s[2])
	}
	ADDQ(Imm(uint64(size)), pa)
	ADDQ(Imm(uint64(size)), pb)
	DECQ(cnt)
	JMP(LabelRef(name + "_tail"))
	Label(name + "_end")
	if o == pairCos {
		cosFinishBranchy(name, s[0], s[1], s[2])
	}
	VMOVSS(s[0], addr(ReturnIndex(0)))
	VZEROUPPER()
	RET()
}

// cosHalfQuery is cosHalfAVX2 for a query prepared once and scored against many stored
// halves (simd.HalfQuery): the query is read as float32 (its exact conversion, made once)
// and its squared norm comes in as anorm, computed by dotHalfAVX2(a, a), whose
// accumulators, trips, reduction and tail are those of cosHalfAVX2's |a|² sum. The dot and
// |b|² sums are built exactly as there, so the result is the same bits, with one
// conversion and two FMAs per 8 elements instead of two and three.
//
// next is the stored vector the caller scores after b (b itself when none): each 32-half trip
// prefetches the line of next at the same offset, so a search's next neighbour (3 kB at 1,536
// dimensions, scattered over the graph file) is in flight while this one is summed, as the
// float32 gather kernels do. The prefetch changes no arithmetic.
func cosHalfQuery() {
	const name = "cosHalfQueryAVX2"
	TEXT(name, NOSPLIT, "func(a *float32, b *uint16, next *uint16, n int, anorm float32) float32")
	Pragma("noescape")
	Doc(name + " returns the cosine distance of the n float32 at a (squared norm anorm) and the n halves at b, prefetching the n halves at next; shapes are checked by the Go caller.")
	pa := Load(Param("a"), GP64())
	pb := Load(Param("b"), GP64())
	pn := Load(Param("next"), GP64())
	cnt := Load(Param("n"), GP64())
	const unroll = 4
	acc := make([][]VecVirtual, 2)
	for j := range acc {
		acc[j] = make([]VecVirtual, unroll)
		for k := range acc[j] {
			acc[j][k] = YMM()
			VXORPS(acc[j][k], acc[j][k], acc[j][k])
		}
	}
	step := func(k, disp int) {
		x, y := YMM(), YMM()
		VMOVUPS(Mem{Base: pa, Disp: 2 * disp}, x)
		VCVTPH2PS(Mem{Base: pb, Disp: disp}, y)
		VFMADD231PS(y, x, acc[0][k])
		VFMADD231PS(y, y, acc[1][k])
	}
	Label(name + "_loop32")
	CMPQ(cnt, Imm(32))
	JL(LabelRef(name + "_loop8"))
	PREFETCHT0(Mem{Base: pn})
	for k := 0; k < unroll; k++ {
		step(k, 16*k)
	}
	ADDQ(Imm(128), pa)
	ADDQ(Imm(64), pb)
	ADDQ(Imm(64), pn)
	SUBQ(Imm(32), cnt)
	JMP(LabelRef(name + "_loop32"))

	Label(name + "_loop8")
	CMPQ(cnt, Imm(8))
	JL(LabelRef(name + "_reduce"))
	step(0, 0)
	ADDQ(Imm(32), pa)
	ADDQ(Imm(16), pb)
	SUBQ(Imm(8), cnt)
	JMP(LabelRef(name + "_loop8"))

	Label(name + "_reduce")
	s0, s1 := reduce(acc[0]), reduce(acc[1])

	Label(name + "_tail")
	TESTQ(cnt, cnt)
	JE(LabelRef(name + "_end"))
	x, y := XMM(), XMM()
	VMOVSS(Mem{Base: pa}, x)
	w := GP32()
	MOVWLZX(Mem{Base: pb}, w)
	VMOVD(w, y)
	VCVTPH2PS(y, y)
	VFMADD231SS(y, x, s0)
	VFMADD231SS(y, y, s1)
	ADDQ(Imm(4), pa)
	ADDQ(Imm(2), pb)
	DECQ(cnt)
	JMP(LabelRef(name + "_tail"))
	Label(name + "_end")
	m := XMM()
	VMOVSS(addr(Param("anorm")), m)
	cosFinishBranchy(name, s0, s1, m)
	VMOVSS(s0, addr(ReturnIndex(0)))
	VZEROUPPER()
	RET()
}

// halfToFloat widens n halves with VCVTPH2PS, 32 per trip, then 8, then one at a time
// through the same instruction (a half moved into the low lane of an xmm).
func halfToFloat() {
	const name = "halfToFloat32F16C"
	TEXT(name, NOSPLIT, "func(dst *float32, src *uint16, n int)")
	Pragma("noescape")
	Doc(name + " converts the n halves at src to float32 at dst, exactly.")
	dst := Load(Param("dst"), GP64())
	src := Load(Param("src"), GP64())
	cnt := Load(Param("n"), GP64())
	convLoops(name, src, dst, cnt, 2, 4, func(k int) {
		y := YMM()
		VCVTPH2PS(Mem{Base: src, Disp: 16 * k}, y)
		VMOVUPS(y, Mem{Base: dst, Disp: 32 * k})
	}, func() {
		w, x := GP32(), XMM()
		MOVWLZX(Mem{Base: src}, w)
		VMOVD(w, x)
		VCVTPH2PS(x, x)
		VMOVSS(x, Mem{Base: dst})
	})
	VZEROUPPER()
	RET()
}

// floatToHalf narrows n floats with VCVTPS2PH, immediate 0: round to nearest even, the
// IEEE default, whatever MXCSR says. Overflow gives Inf and NaNs come back quiet.
func floatToHalf() {
	const name = "float32ToHalfF16C"
	TEXT(name, NOSPLIT, "func(dst *uint16, src *float32, n int)")
	Pragma("noescape")
	Doc(name + " rounds the n floats at src to binary16 at dst, to nearest even.")
	dst := Load(Param("dst"), GP64())
	src := Load(Param("src"), GP64())
	cnt := Load(Param("n"), GP64())
	convLoops(name, src, dst, cnt, 4, 2, func(k int) {
		// The register form and a store: VCVTPS2PH's memory form is 4 uops on Intel
		// cores, the register form 2; measured 158 ns against 56 ns at 1,536 floats.
		y, h := YMM(), XMM()
		VMOVUPS(Mem{Base: src, Disp: 32 * k}, y)
		VCVTPS2PH(U8(0), y, h)
		VMOVDQU(h, Mem{Base: dst, Disp: 16 * k})
	}, func() {
		x, h := XMM(), XMM()
		w := GP32()
		VMOVSS(Mem{Base: src}, x)
		VCVTPS2PH(U8(0), x, h)
		VMOVD(h, w)
		MOVW(w.As16(), Mem{Base: dst})
	})
	VZEROUPPER()
	RET()
}

// convLoops runs vec (8 elements at block k) four times per trip, then once per trip, then
// one for each element left; src and dst advance by their element sizes.
func convLoops(name string, src, dst, cnt Register, srcSize, dstSize int, vec func(k int), one func()) {
	Label(name + "_loop32")
	CMPQ(cnt, Imm(32))
	JL(LabelRef(name + "_loop8"))
	for k := 0; k < 4; k++ {
		vec(k)
	}
	ADDQ(Imm(uint64(32*srcSize)), src)
	ADDQ(Imm(uint64(32*dstSize)), dst)
	SUBQ(Imm(32), cnt)
	JMP(LabelRef(name + "_loop32"))
	Label(name + "_loop8")
	CMPQ(cnt, Imm(8))
	JL(LabelRef(name + "_tail"))
	vec(0)
	ADDQ(Imm(uint64(8*srcSize)), src)
	ADDQ(Imm(uint64(8*dstSize)), dst)
	SUBQ(Imm(8), cnt)
	JMP(LabelRef(name + "_loop8"))
	Label(name + "_tail")
	TESTQ(cnt, cnt)
	JE(LabelRef(name + "_end"))
	one()
	ADDQ(Imm(uint64(srcSize)), src)
	ADDQ(Imm(uint64(dstSize)), dst)
	DECQ(cnt)
	JMP(LabelRef(name + "_tail"))
	Label(name + "_end")
}

var popLUT Mem

// popcountKernel counts bits 256 at a time with the nibble table (VPSHUFB looks up the
// count of each byte's low and high nibble; VPSADBW against zero sums the bytes of each
// quadword), Mula's method: eight vector instructions per count of four words, where the
// Go loop issues one POPCNT per word behind a feature check (GOAMD64=v1). Jaccard counts
// a∧b and a∨b, Hamming a⊕b. n is a multiple of 4 words; the Go caller counts the rest.
func popcountKernel(name string, jaccard bool) {
	sig := "func(a, b *uint64, n int) int"
	if jaccard {
		sig = "func(a, b *uint64, n int) (inter, union int)"
	}
	TEXT(name, NOSPLIT, sig)
	Pragma("noescape")
	Doc(name + " counts bits of the n words at a and b, n a multiple of 4.")
	if popLUT.Symbol.Name == "" {
		popLUT = GLOBL("popcntlut", RODATA|NOPTR)
		for i := 0; i < 32; i++ {
			DATA(i, U8(bitsIn(i%16)))
		}
	}
	pa := Load(Param("a"), GP64())
	pb := Load(Param("b"), GP64())
	cnt := Load(Param("n"), GP64())
	lut, mask, zero := YMM(), YMM(), YMM()
	VMOVDQU(popLUT, lut)
	m := GP32()
	MOVL(U32(0x0f0f0f0f), m)
	VMOVD(m, mask.AsX())
	VPBROADCASTD(mask.AsX(), mask)
	VPXOR(zero, zero, zero)
	acc := []VecVirtual{YMM(), YMM()}
	for _, a := range acc {
		VPXOR(a, a, a)
	}
	count := func(v, acc VecVirtual) {
		hi := YMM()
		VPSRLW(U8(4), v, hi)
		VPAND(mask, v, v)
		VPAND(mask, hi, hi)
		VPSHUFB(v, lut, v)
		VPSHUFB(hi, lut, hi)
		VPADDB(hi, v, v)
		VPSADBW(zero, v, v)
		VPADDQ(v, acc, acc)
	}
	Label(name + "_loop")
	CMPQ(cnt, Imm(4))
	JL(LabelRef(name + "_done"))
	x, y := YMM(), YMM()
	VMOVDQU(Mem{Base: pa}, x)
	VMOVDQU(Mem{Base: pb}, y)
	if jaccard {
		u := YMM()
		VPOR(y, x, u)
		VPAND(y, x, x)
		count(x, acc[0])
		count(u, acc[1])
	} else {
		VPXOR(y, x, x)
		count(x, acc[0])
	}
	ADDQ(Imm(32), pa)
	ADDQ(Imm(32), pb)
	SUBQ(Imm(4), cnt)
	JMP(LabelRef(name + "_loop"))

	Label(name + "_done")
	sum := func(a VecVirtual) Register {
		hi := XMM()
		VEXTRACTI128(U8(1), a, hi)
		s := a.AsX()
		VPADDQ(hi, s, s)
		VPSHUFD(U8(0x4e), s, hi)
		VPADDQ(hi, s, s)
		r := GP64()
		VMOVQ(s, r)
		return r
	}
	if jaccard {
		Store(sum(acc[0]), ReturnIndex(0))
		Store(sum(acc[1]), ReturnIndex(1))
	} else {
		Store(sum(acc[0]), ReturnIndex(0))
	}
	VZEROUPPER()
	RET()
}

func bitsIn(x int) uint8 {
	n := uint8(0)
	for ; x != 0; x &= x - 1 {
		n++
	}
	return n
}
