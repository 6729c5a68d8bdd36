//! Q4_K and Q6_K matrices repacked at load into groups of 8 interleaved rows, for the matrix
//! products of [`super::quant`] (which calls these kernels for a packed [`super::quant::QMatrix`]).
//!
//! Why: decoding reads every weight once per token, so it runs at the speed the cores unpack and
//! multiply the weights, overlapped with streaming them from memory. In the GGUF layout each row
//! is a run of its own blocks, so a kernel reduces each row's sums horizontally and decodes each
//! row's scales with shuffles: about 60 vector operations per 256 weights. Interleaved, one
//! 32-byte vector holds 4 bytes of each of 8 rows; one activation dword is broadcast against it,
//! so every i32 lane of a `vpdpbusd` is one row's running sum, the scales of 8 rows are applied
//! in one multiply, and no horizontal reduction is left: about 22 operations per 256 weights.
//! A thread also reads one sequential stream (its groups) instead of a tile of separate rows.
//! llama.cpp's CPU "repack" buffers rest on the same observation; this layout is docqa's own.
//!
//! Layouts, per group of 8 rows and per super-block of 256 values (group blocks follow one
//! another, a group's super-blocks in order):
//! - `Q4_K` (1184 bytes, the rows' 8 x 144 plus 32 for scales kept unpacked): `d[8]` f16,
//!   `dmin[8]` f16, `scales[8 sub-blocks][8 rows]` u8, `mins[4 pairs][8 rows][2]` u8,
//!   `qs[4 chunks][8 dwords][8 rows][4 bytes]`: chunk `c` dword `k` of row `r` holds the row's
//!   original `qs[32c + 4k .. 32c + 4k + 4]`: low nibbles values `64c + 4k + i`, high nibbles
//!   `64c + 32 + 4k + i`.
//! - `Q6_K` (1680 bytes, the same as the rows' 8 x 210): `d[8]` f16,
//!   `scales[16 groups][8 rows]` i8, low nibbles `ql` laid out as Q4_K's `qs` above (over the
//!   6-bit values), high bit pairs `qh[4 chunks][4 dword pairs][8 rows][4 bytes]`: byte `i` of
//!   pair `p` holds bits 4-5 of the values `64c + 8p + i` (bits 0-1), `64c + 32 + 8p + i`
//!   (bits 2-3), `64c + 8p + 4 + i` (bits 4-5) and `64c + 32 + 8p + 4 + i` (bits 6-7).
//!
//! The scalar functions here are the reference the SIMD kernels are tested against, and are
//! themselves tested against the row-layout reference of `quant`.

use super::quant::{read_f16, scale_min_k4, QType};

/// Rows per interleaved group.
pub const GROUP: usize = 8;
/// Bytes of one group's super-block.
pub const Q4K_GROUP_BYTES: usize = 1184;
pub const Q6K_GROUP_BYTES: usize = 1680;

const Q4K_D: usize = 0;
const Q4K_DMIN: usize = 16;
const Q4K_SCALES: usize = 32;
const Q4K_MINS: usize = 96;
const Q4K_QS: usize = 160;

const Q6K_D: usize = 0;
const Q6K_SCALES: usize = 16;
const Q6K_QL: usize = 144;
const Q6K_QH: usize = 1168;

/// Whether matrices of `kind` with `rows` rows are repacked.
pub fn packable(kind: QType, rows: usize) -> bool {
    matches!(kind, QType::Q4K | QType::Q6K) && rows.is_multiple_of(GROUP) && rows > 0
}

/// Bytes of one group's super-block of `kind` (a packable kind).
pub const fn group_bytes(kind: QType) -> usize {
    match kind {
        QType::Q4K => Q4K_GROUP_BYTES,
        QType::Q6K => Q6K_GROUP_BYTES,
        _ => 0,
    }
}

/// The 256 6-bit values (0..64) of a Q6_K block, in element order.
fn q6k_values(b: &[u8]) -> [u8; 256] {
    let mut q = [0u8; 256];
    for h in 0..2 {
        let ql = &b[64 * h..];
        let qh = &b[128 + 32 * h..];
        for l in 0..32 {
            q[128 * h + l] = (ql[l] & 0xF) | ((qh[l] & 3) << 4);
            q[128 * h + 32 + l] = (ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4);
            q[128 * h + 64 + l] = (ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4);
            q[128 * h + 96 + l] = (ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4);
        }
    }
    q
}

/// Repacks group `g` (rows `8g..8g + 8`) of a row-layout matrix into `out` (the group's
/// `nsb` super-blocks). `row(r)` gives row `r`'s GGUF blocks.
pub fn pack_group<'a>(kind: QType, nsb: usize, row: impl Fn(usize) -> &'a [u8], out: &mut [u8]) {
    let gb = group_bytes(kind);
    assert_eq!(out.len(), nsb * gb, "packed group length");
    let bb = kind.block_bytes();
    for sb in 0..nsb {
        let o = &mut out[sb * gb..(sb + 1) * gb];
        for r in 0..GROUP {
            let b = &row(r)[sb * bb..(sb + 1) * bb];
            match kind {
                QType::Q4K => {
                    o[Q4K_D + 2 * r..Q4K_D + 2 * r + 2].copy_from_slice(&b[0..2]);
                    o[Q4K_DMIN + 2 * r..Q4K_DMIN + 2 * r + 2].copy_from_slice(&b[2..4]);
                    for j in 0..8 {
                        let (sc, m) = scale_min_k4(j, &b[4..16]);
                        o[Q4K_SCALES + 8 * j + r] = sc;
                        o[Q4K_MINS + 16 * (j / 2) + 2 * r + j % 2] = m;
                    }
                    for c in 0..4 {
                        for k in 0..8 {
                            let at = Q4K_QS + ((c * 8 + k) * 8 + r) * 4;
                            o[at..at + 4].copy_from_slice(&b[16 + 32 * c + 4 * k..][..4]);
                        }
                    }
                }
                QType::Q6K => {
                    o[Q6K_D + 2 * r..Q6K_D + 2 * r + 2].copy_from_slice(&b[208..210]);
                    for g in 0..16 {
                        o[Q6K_SCALES + 8 * g + r] = b[192 + g];
                    }
                    let q = q6k_values(b);
                    for c in 0..4 {
                        for k in 0..8 {
                            let at = Q6K_QL + ((c * 8 + k) * 8 + r) * 4;
                            for i in 0..4 {
                                let lo = q[64 * c + 4 * k + i] & 0xF;
                                let hi = q[64 * c + 32 + 4 * k + i] & 0xF;
                                o[at + i] = lo | (hi << 4);
                            }
                        }
                        for p in 0..4 {
                            let at = Q6K_QH + ((c * 4 + p) * 8 + r) * 4;
                            for i in 0..4 {
                                let v = |at: usize| q[at] >> 4;
                                o[at + i] = v(64 * c + 8 * p + i)
                                    | (v(64 * c + 32 + 8 * p + i) << 2)
                                    | (v(64 * c + 8 * p + 4 + i) << 4)
                                    | (v(64 * c + 32 + 8 * p + 4 + i) << 6);
                            }
                        }
                    }
                }
                QType::Q5K | QType::Q8_0 => unreachable!("{} is not repacked", kind.name()),
            }
        }
    }
}

/// Row `r` (0..8) of a packed group super-block: its 256 integer values and, per value, the
/// integer scale; plus the float factors. Q4_K: `x = d·sc·q - dmin·m`; Q6_K: `x = d·sc·(q - 32)`.
struct Unpacked {
    q: [u8; 256],
    sc: [i32; 16],
    m: [i32; 8],
    d: f32,
    dmin: f32,
}

fn unpack(kind: QType, o: &[u8], r: usize) -> Unpacked {
    let mut u = Unpacked {
        q: [0; 256],
        sc: [0; 16],
        m: [0; 8],
        d: 0.0,
        dmin: 0.0,
    };
    match kind {
        QType::Q4K => {
            u.d = read_f16(o, Q4K_D + 2 * r);
            u.dmin = read_f16(o, Q4K_DMIN + 2 * r);
            for j in 0..8 {
                u.sc[j] = i32::from(o[Q4K_SCALES + 8 * j + r]);
                u.m[j] = i32::from(o[Q4K_MINS + 16 * (j / 2) + 2 * r + j % 2]);
            }
            for c in 0..4 {
                for k in 0..8 {
                    for i in 0..4 {
                        let byte = o[Q4K_QS + ((c * 8 + k) * 8 + r) * 4 + i];
                        u.q[64 * c + 4 * k + i] = byte & 0xF;
                        u.q[64 * c + 32 + 4 * k + i] = byte >> 4;
                    }
                }
            }
        }
        QType::Q6K => {
            u.d = read_f16(o, Q6K_D + 2 * r);
            for g in 0..16 {
                u.sc[g] = i32::from(o[Q6K_SCALES + 8 * g + r] as i8);
            }
            for c in 0..4 {
                for k in 0..8 {
                    for i in 0..4 {
                        let byte = o[Q6K_QL + ((c * 8 + k) * 8 + r) * 4 + i];
                        u.q[64 * c + 4 * k + i] = byte & 0xF;
                        u.q[64 * c + 32 + 4 * k + i] = byte >> 4;
                    }
                }
                for p in 0..4 {
                    for i in 0..4 {
                        let h = o[Q6K_QH + ((c * 4 + p) * 8 + r) * 4 + i];
                        u.q[64 * c + 8 * p + i] |= (h & 3) << 4;
                        u.q[64 * c + 32 + 8 * p + i] |= ((h >> 2) & 3) << 4;
                        u.q[64 * c + 8 * p + 4 + i] |= ((h >> 4) & 3) << 4;
                        u.q[64 * c + 32 + 8 * p + 4 + i] |= ((h >> 6) & 3) << 4;
                    }
                }
            }
        }
        QType::Q5K | QType::Q8_0 => unreachable!("{} is not repacked", kind.name()),
    }
    u
}

/// Row `r` of a packed group as f32 (`nsb` super-blocks of `group`).
pub fn dequantize_row(kind: QType, group: &[u8], nsb: usize, r: usize, out: &mut [f32]) {
    let gb = group_bytes(kind);
    for sb in 0..nsb {
        let u = unpack(kind, &group[sb * gb..(sb + 1) * gb], r);
        let y = &mut out[sb * 256..(sb + 1) * 256];
        for (i, y) in y.iter_mut().enumerate() {
            let q = i32::from(u.q[i]);
            *y = match kind {
                QType::Q4K => u.d * (u.sc[i / 32] * q) as f32 - u.dmin * u.m[i / 32] as f32,
                _ => u.d * (u.sc[i / 16] * (q - 32)) as f32,
            };
        }
    }
}

/// The reference dot product of row `r` of a packed group with one token's activations
/// (`qs` int8 values, `d` one scale per 256), integer sums written out plainly.
pub fn dot_scalar(kind: QType, group: &[u8], nsb: usize, r: usize, qs: &[i8], d: &[f32]) -> f32 {
    let gb = group_bytes(kind);
    let mut total = 0f32;
    for sb in 0..nsb {
        let u = unpack(kind, &group[sb * gb..(sb + 1) * gb], r);
        let a = &qs[sb * 256..(sb + 1) * 256];
        match kind {
            QType::Q4K => {
                let (mut sumi, mut summ) = (0i32, 0i32);
                for j in 0..8 {
                    let (mut dot, mut sum) = (0i32, 0i32);
                    let span = 32 * j..32 * j + 32;
                    for (&q, &a) in u.q[span.clone()].iter().zip(&a[span]) {
                        dot += i32::from(q) * i32::from(a);
                        sum += i32::from(a);
                    }
                    sumi += u.sc[j] * dot;
                    summ += u.m[j] * sum;
                }
                total += u.d * d[sb] * sumi as f32 - u.dmin * d[sb] * summ as f32;
            }
            _ => {
                let mut sumi = 0i32;
                for g in 0..16 {
                    let dot: i32 = (16 * g..16 * g + 16)
                        .map(|l| (i32::from(u.q[l]) - 32) * i32::from(a[l]))
                        .sum();
                    sumi += u.sc[g] * dot;
                }
                total += u.d * d[sb] * sumi as f32;
            }
        }
    }
    total
}

/// Pointers to one token's activations as the packed kernels read them.
#[derive(Clone, Copy)]
pub(super) struct PackedAct {
    /// int8 values.
    pub qs: *const i8,
    /// One scale per 256 values.
    pub d: *const f32,
    /// Sums of each 32 values as i16, 8 per 256 (Q4_K's mins).
    pub sums32: *const i16,
    /// 32 x the sum of each 16 values as i32, 16 per 256 (Q6_K's offset of 32).
    pub sums16x32: *const i32,
}

#[cfg(target_arch = "x86_64")]
pub(super) mod x86 {
    use super::*;
    use crate::kernels::Isa;
    use std::arch::x86_64::*;

    /// The integer dot products, per instruction set.
    trait Dot {
        /// Whether `vpdpbusd` sums straight into i32 (so high nibbles can be used in place,
        /// 16 times their value, without the i16 saturation of `vpmaddubsw`).
        const WIDE: bool;
        /// `acc + Σ u·s` over quads of bytes per i32 lane (`u` unsigned, `s` signed).
        unsafe fn dpbusd(acc: __m256i, u: __m256i, s: __m256i) -> __m256i;
        /// `acc + Σ a·b` over pairs of i16 per i32 lane.
        unsafe fn dpwssd(acc: __m256i, a: __m256i, b: __m256i) -> __m256i;
    }

    struct Avx2;
    impl Dot for Avx2 {
        const WIDE: bool = false;
        #[inline(always)]
        unsafe fn dpbusd(acc: __m256i, u: __m256i, s: __m256i) -> __m256i {
            let pairs = _mm256_maddubs_epi16(u, s);
            _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)))
        }
        #[inline(always)]
        unsafe fn dpwssd(acc: __m256i, a: __m256i, b: __m256i) -> __m256i {
            _mm256_add_epi32(acc, _mm256_madd_epi16(a, b))
        }
    }

    struct AvxVnni;
    impl Dot for AvxVnni {
        const WIDE: bool = true;
        #[inline(always)]
        unsafe fn dpbusd(acc: __m256i, u: __m256i, s: __m256i) -> __m256i {
            _mm256_dpbusd_avx_epi32(acc, u, s)
        }
        #[inline(always)]
        unsafe fn dpwssd(acc: __m256i, a: __m256i, b: __m256i) -> __m256i {
            _mm256_dpwssd_avx_epi32(acc, a, b)
        }
    }

    struct Vnni512;
    impl Dot for Vnni512 {
        const WIDE: bool = true;
        #[inline(always)]
        unsafe fn dpbusd(acc: __m256i, u: __m256i, s: __m256i) -> __m256i {
            _mm256_dpbusd_epi32(acc, u, s)
        }
        #[inline(always)]
        unsafe fn dpwssd(acc: __m256i, a: __m256i, b: __m256i) -> __m256i {
            _mm256_dpwssd_epi32(acc, a, b)
        }
    }

    #[inline(always)]
    unsafe fn load(p: *const u8) -> __m256i {
        _mm256_loadu_si256(p as *const __m256i)
    }

    #[inline(always)]
    unsafe fn bcast(p: *const i8) -> __m256i {
        _mm256_set1_epi32((p as *const i32).read_unaligned())
    }

    /// Group super-blocks ahead that are prefetched. A thread streams its groups in order, which
    /// the hardware prefetchers follow within a 4 KB page; asking for the next block covers the
    /// page crossings. Measured on 2 threads over 300-450 MB of weights (GB/s from memory, Q4_K
    /// / Q6_K): none 24.5 / 21.0, one block ahead 24.5 / 25.9, two 17.9 / 17.7, three 17.8 /
    /// -, twelve 20.0 / -: prefetches further ahead compete with the hardware's own.
    const PREFETCH_BLOCKS: usize = 1;

    #[inline(always)]
    unsafe fn prefetch(b: *const u8, gb: usize) {
        let p = b.wrapping_add(PREFETCH_BLOCKS * gb);
        let mut off = 0;
        while off < gb {
            _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(off) as *const i8);
            off += 64;
        }
    }

    /// One Q4_K group (8 rows) times `T` tokens over `nsb` super-blocks; lane `r` of result `t`
    /// is row `r`'s product with token `t`.
    #[inline(always)]
    unsafe fn q4k<O: Dot, const T: usize>(
        g: *const u8,
        nsb: usize,
        a: [PackedAct; T],
    ) -> [__m256; T] {
        let lo_m = _mm256_set1_epi8(0x0F);
        let hi_m = _mm256_set1_epi8(0xF0u8 as i8);
        let mut facc = [_mm256_setzero_ps(); T];
        for sb in 0..nsb {
            let b = g.add(sb * Q4K_GROUP_BYTES);
            prefetch(b, Q4K_GROUP_BYTES);
            let mut tot = [_mm256_setzero_si256(); T];
            for c in 0..4 {
                let mut lo = [_mm256_setzero_si256(); T];
                let mut hi = [_mm256_setzero_si256(); T];
                for k in 0..8 {
                    let w = load(b.add(Q4K_QS + (c * 8 + k) * 32));
                    let wl = _mm256_and_si256(w, lo_m);
                    let wh = if O::WIDE {
                        _mm256_and_si256(w, hi_m)
                    } else {
                        _mm256_and_si256(_mm256_srli_epi16(w, 4), lo_m)
                    };
                    for t in 0..T {
                        let ap = a[t].qs.add(sb * 256 + 64 * c + 4 * k);
                        lo[t] = O::dpbusd(lo[t], wl, bcast(ap));
                        hi[t] = O::dpbusd(hi[t], wh, bcast(ap.add(32)));
                    }
                }
                let s_lo = b.add(Q4K_SCALES + 16 * c);
                let mut sl = _mm256_cvtepu8_epi32(_mm_loadl_epi64(s_lo as *const __m128i));
                let sh = _mm256_cvtepu8_epi32(_mm_loadl_epi64(s_lo.add(8) as *const __m128i));
                if O::WIDE {
                    // The high nibbles were summed at 16 times their value.
                    sl = _mm256_slli_epi32(sl, 4);
                }
                for t in 0..T {
                    let both = _mm256_add_epi32(
                        _mm256_mullo_epi32(lo[t], sl),
                        _mm256_mullo_epi32(hi[t], sh),
                    );
                    tot[t] = _mm256_add_epi32(tot[t], both);
                }
            }
            let mut mins = [_mm256_setzero_si256(); 4];
            for (p, m) in mins.iter_mut().enumerate() {
                *m = _mm256_cvtepu8_epi16(_mm_loadu_si128(
                    b.add(Q4K_MINS + 16 * p) as *const __m128i
                ));
            }
            let d = _mm256_cvtph_ps(_mm_loadu_si128(b.add(Q4K_D) as *const __m128i));
            let dmin = _mm256_cvtph_ps(_mm_loadu_si128(b.add(Q4K_DMIN) as *const __m128i));
            let unit = if O::WIDE { 1.0 / 16.0 } else { 1.0 };
            for t in 0..T {
                let mut msum = _mm256_setzero_si256();
                for (p, m) in mins.iter().enumerate() {
                    let s = bcast(a[t].sums32.add(sb * 8 + 2 * p) as *const i8);
                    msum = O::dpwssd(msum, *m, s);
                }
                let da = *a[t].d.add(sb);
                let scale = _mm256_mul_ps(d, _mm256_set1_ps(da * unit));
                facc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(tot[t]), scale, facc[t]);
                let mscale = _mm256_mul_ps(dmin, _mm256_set1_ps(da));
                facc[t] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(msum), mscale, facc[t]);
            }
        }
        facc
    }

    /// One Q6_K group (8 rows) times `T` tokens, as [`q4k`].
    #[inline(always)]
    unsafe fn q6k<O: Dot, const T: usize>(
        g: *const u8,
        nsb: usize,
        a: [PackedAct; T],
    ) -> [__m256; T] {
        let m4 = _mm256_set1_epi8(0x0F);
        let m30 = _mm256_set1_epi8(0x30);
        let mut facc = [_mm256_setzero_ps(); T];
        for sb in 0..nsb {
            let b = g.add(sb * Q6K_GROUP_BYTES);
            prefetch(b, Q6K_GROUP_BYTES);
            let mut tot = [_mm256_setzero_si256(); T];
            for c in 0..4 {
                for half in 0..2 {
                    let mut lo = [_mm256_setzero_si256(); T];
                    let mut hi = [_mm256_setzero_si256(); T];
                    for p in 0..2 {
                        let pair = 2 * half + p;
                        let h = load(b.add(Q6K_QH + (c * 4 + pair) * 32));
                        for e in 0..2 {
                            let k = 2 * pair + e;
                            let w = load(b.add(Q6K_QL + (c * 8 + k) * 32));
                            let (hl, hh) = if e == 0 {
                                (_mm256_slli_epi16(h, 4), _mm256_slli_epi16(h, 2))
                            } else {
                                (h, _mm256_srli_epi16(h, 2))
                            };
                            let wl =
                                _mm256_or_si256(_mm256_and_si256(w, m4), _mm256_and_si256(hl, m30));
                            let wh = _mm256_or_si256(
                                _mm256_and_si256(_mm256_srli_epi16(w, 4), m4),
                                _mm256_and_si256(hh, m30),
                            );
                            for t in 0..T {
                                let ap = a[t].qs.add(sb * 256 + 64 * c + 4 * k);
                                lo[t] = O::dpbusd(lo[t], wl, bcast(ap));
                                hi[t] = O::dpbusd(hi[t], wh, bcast(ap.add(32)));
                            }
                        }
                    }
                    // Groups of 16 values: `lo` covers 64c + 16·half.., `hi` 64c + 32 + 16·half..
                    let (g_lo, g_hi) = (4 * c + half, 4 * c + 2 + half);
                    let s = b.add(Q6K_SCALES);
                    let sl =
                        _mm256_cvtepi8_epi32(_mm_loadl_epi64(s.add(8 * g_lo) as *const __m128i));
                    let sh =
                        _mm256_cvtepi8_epi32(_mm_loadl_epi64(s.add(8 * g_hi) as *const __m128i));
                    for t in 0..T {
                        let off = a[t].sums16x32.add(sb * 16);
                        let l = _mm256_sub_epi32(lo[t], _mm256_set1_epi32(*off.add(g_lo)));
                        let h = _mm256_sub_epi32(hi[t], _mm256_set1_epi32(*off.add(g_hi)));
                        let both =
                            _mm256_add_epi32(_mm256_mullo_epi32(l, sl), _mm256_mullo_epi32(h, sh));
                        tot[t] = _mm256_add_epi32(tot[t], both);
                    }
                }
            }
            let d = _mm256_cvtph_ps(_mm_loadu_si128(b.add(Q6K_D) as *const __m128i));
            for t in 0..T {
                let scale = _mm256_mul_ps(d, _mm256_set1_ps(*a[t].d.add(sb)));
                facc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(tot[t]), scale, facc[t]);
            }
        }
        facc
    }

    #[inline(always)]
    unsafe fn any<O: Dot, const T: usize>(
        kind: QType,
        g: *const u8,
        nsb: usize,
        a: [PackedAct; T],
    ) -> [__m256; T] {
        match kind {
            QType::Q4K => q4k::<O, T>(g, nsb, a),
            _ => q6k::<O, T>(g, nsb, a),
        }
    }

    /// Results stored: `out[t][r]` for the 8 rows.
    #[inline(always)]
    unsafe fn store<const T: usize>(v: [__m256; T]) -> [[f32; GROUP]; T] {
        let mut out = [[0f32; GROUP]; T];
        for t in 0..T {
            _mm256_storeu_ps(out[t].as_mut_ptr(), v[t]);
        }
        out
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn group_avx2<const T: usize>(
        kind: QType,
        g: *const u8,
        nsb: usize,
        a: [PackedAct; T],
    ) -> [[f32; GROUP]; T] {
        store(any::<Avx2, T>(kind, g, nsb, a))
    }

    #[target_feature(enable = "avx2,fma,f16c,avxvnni")]
    unsafe fn group_avxvnni<const T: usize>(
        kind: QType,
        g: *const u8,
        nsb: usize,
        a: [PackedAct; T],
    ) -> [[f32; GROUP]; T] {
        store(any::<AvxVnni, T>(kind, g, nsb, a))
    }

    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
    unsafe fn group_vnni512<const T: usize>(
        kind: QType,
        g: *const u8,
        nsb: usize,
        a: [PackedAct; T],
    ) -> [[f32; GROUP]; T] {
        store(any::<Vnni512, T>(kind, g, nsb, a))
    }

    /// One group of 8 rows times `T` tokens on the chosen path: `out[t][r]`.
    ///
    /// # Safety
    /// `isa` is available on this CPU and not [`Isa::Scalar`]; `g` points at the group's `nsb`
    /// packed super-blocks of `kind`; each `a` at a token's activations over `nsb · 256` values.
    #[inline(always)]
    pub(in crate::kernels) unsafe fn group<const T: usize>(
        isa: Isa,
        kind: QType,
        g: *const u8,
        nsb: usize,
        a: [PackedAct; T],
    ) -> [[f32; GROUP]; T] {
        match isa {
            Isa::Avx512Vnni => group_vnni512::<T>(kind, g, nsb, a),
            Isa::AvxVnni => group_avxvnni::<T>(kind, g, nsb, a),
            Isa::Avx2 | Isa::Scalar => group_avx2::<T>(kind, g, nsb, a),
        }
    }

    /// Two groups (16 rows) at once in 512-bit vectors, for AVX-512 VNNI: on cores with two
    /// 512-bit units a `vpdpbusd` on 512 bits does twice the work of one on 256 at nearly the
    /// same rate (measured here: 124 against 84 GMAC/s on one core). Lanes 0-7 are group `g0`'s
    /// rows, 8-15 group `g1`'s; the arithmetic is [`q4k`]'s and [`q6k`]'s lane for lane.
    mod wide {
        use super::*;

        #[inline(always)]
        unsafe fn pair(b0: *const u8, b1: *const u8, at: usize) -> __m512i {
            _mm512_inserti64x4::<1>(_mm512_castsi256_si512(load(b0.add(at))), load(b1.add(at)))
        }

        #[inline(always)]
        unsafe fn bytes16(b0: *const u8, b1: *const u8, at: usize) -> __m128i {
            _mm_unpacklo_epi64(
                _mm_loadl_epi64(b0.add(at) as *const __m128i),
                _mm_loadl_epi64(b1.add(at) as *const __m128i),
            )
        }

        #[inline(always)]
        unsafe fn halves16(b0: *const u8, b1: *const u8, at: usize) -> __m256i {
            _mm256_set_m128i(
                _mm_loadu_si128(b1.add(at) as *const __m128i),
                _mm_loadu_si128(b0.add(at) as *const __m128i),
            )
        }

        #[inline(always)]
        unsafe fn bcast512(p: *const i8) -> __m512i {
            _mm512_set1_epi32((p as *const i32).read_unaligned())
        }

        #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
        pub(in crate::kernels) unsafe fn q4k<const T: usize>(
            g0: *const u8,
            g1: *const u8,
            nsb: usize,
            a: [PackedAct; T],
        ) -> [__m512; T] {
            let lo_m = _mm512_set1_epi8(0x0F);
            let hi_m = _mm512_set1_epi8(0xF0u8 as i8);
            let mut facc = [_mm512_setzero_ps(); T];
            for sb in 0..nsb {
                let (b0, b1) = (g0.add(sb * Q4K_GROUP_BYTES), g1.add(sb * Q4K_GROUP_BYTES));
                prefetch(b0, Q4K_GROUP_BYTES);
                prefetch(b1, Q4K_GROUP_BYTES);
                let mut tot = [_mm512_setzero_si512(); T];
                for c in 0..4 {
                    let mut lo = [_mm512_setzero_si512(); T];
                    let mut hi = [_mm512_setzero_si512(); T];
                    for k in 0..8 {
                        let w = pair(b0, b1, Q4K_QS + (c * 8 + k) * 32);
                        let wl = _mm512_and_si512(w, lo_m);
                        let wh = _mm512_and_si512(w, hi_m);
                        for t in 0..T {
                            let ap = a[t].qs.add(sb * 256 + 64 * c + 4 * k);
                            lo[t] = _mm512_dpbusd_epi32(lo[t], wl, bcast512(ap));
                            hi[t] = _mm512_dpbusd_epi32(hi[t], wh, bcast512(ap.add(32)));
                        }
                    }
                    let s = Q4K_SCALES + 16 * c;
                    // The high nibbles were summed at 16 times their value.
                    let sl = _mm512_slli_epi32::<4>(_mm512_cvtepu8_epi32(bytes16(b0, b1, s)));
                    let sh = _mm512_cvtepu8_epi32(bytes16(b0, b1, s + 8));
                    for t in 0..T {
                        let both = _mm512_add_epi32(
                            _mm512_mullo_epi32(lo[t], sl),
                            _mm512_mullo_epi32(hi[t], sh),
                        );
                        tot[t] = _mm512_add_epi32(tot[t], both);
                    }
                }
                let mut mins = [_mm512_setzero_si512(); 4];
                for (p, m) in mins.iter_mut().enumerate() {
                    let at = Q4K_MINS + 16 * p;
                    *m = _mm512_inserti64x4::<1>(
                        _mm512_castsi256_si512(_mm256_cvtepu8_epi16(_mm_loadu_si128(
                            b0.add(at) as *const __m128i
                        ))),
                        _mm256_cvtepu8_epi16(_mm_loadu_si128(b1.add(at) as *const __m128i)),
                    );
                }
                let d = _mm512_cvtph_ps(halves16(b0, b1, Q4K_D));
                let dmin = _mm512_cvtph_ps(halves16(b0, b1, Q4K_DMIN));
                for t in 0..T {
                    let mut msum = _mm512_setzero_si512();
                    for (p, m) in mins.iter().enumerate() {
                        let s = bcast512(a[t].sums32.add(sb * 8 + 2 * p) as *const i8);
                        msum = _mm512_dpwssd_epi32(msum, *m, s);
                    }
                    let da = *a[t].d.add(sb);
                    let scale = _mm512_mul_ps(d, _mm512_set1_ps(da / 16.0));
                    facc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(tot[t]), scale, facc[t]);
                    let mscale = _mm512_mul_ps(dmin, _mm512_set1_ps(da));
                    facc[t] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(msum), mscale, facc[t]);
                }
            }
            facc
        }

        #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
        pub(in crate::kernels) unsafe fn q6k<const T: usize>(
            g0: *const u8,
            g1: *const u8,
            nsb: usize,
            a: [PackedAct; T],
        ) -> [__m512; T] {
            let m4 = _mm512_set1_epi8(0x0F);
            let m30 = _mm512_set1_epi8(0x30);
            let mut facc = [_mm512_setzero_ps(); T];
            for sb in 0..nsb {
                let (b0, b1) = (g0.add(sb * Q6K_GROUP_BYTES), g1.add(sb * Q6K_GROUP_BYTES));
                prefetch(b0, Q6K_GROUP_BYTES);
                prefetch(b1, Q6K_GROUP_BYTES);
                let mut tot = [_mm512_setzero_si512(); T];
                for c in 0..4 {
                    for half in 0..2 {
                        let mut lo = [_mm512_setzero_si512(); T];
                        let mut hi = [_mm512_setzero_si512(); T];
                        for p in 0..2 {
                            let pr = 2 * half + p;
                            let h = pair(b0, b1, Q6K_QH + (c * 4 + pr) * 32);
                            for e in 0..2 {
                                let k = 2 * pr + e;
                                let w = pair(b0, b1, Q6K_QL + (c * 8 + k) * 32);
                                let (hl, hh) = if e == 0 {
                                    (_mm512_slli_epi16::<4>(h), _mm512_slli_epi16::<2>(h))
                                } else {
                                    (h, _mm512_srli_epi16::<2>(h))
                                };
                                let wl = _mm512_or_si512(
                                    _mm512_and_si512(w, m4),
                                    _mm512_and_si512(hl, m30),
                                );
                                let wh = _mm512_or_si512(
                                    _mm512_and_si512(_mm512_srli_epi16::<4>(w), m4),
                                    _mm512_and_si512(hh, m30),
                                );
                                for t in 0..T {
                                    let ap = a[t].qs.add(sb * 256 + 64 * c + 4 * k);
                                    lo[t] = _mm512_dpbusd_epi32(lo[t], wl, bcast512(ap));
                                    hi[t] = _mm512_dpbusd_epi32(hi[t], wh, bcast512(ap.add(32)));
                                }
                            }
                        }
                        let (g_lo, g_hi) = (4 * c + half, 4 * c + 2 + half);
                        let sl = _mm512_cvtepi8_epi32(bytes16(b0, b1, Q6K_SCALES + 8 * g_lo));
                        let sh = _mm512_cvtepi8_epi32(bytes16(b0, b1, Q6K_SCALES + 8 * g_hi));
                        for t in 0..T {
                            let off = a[t].sums16x32.add(sb * 16);
                            let l = _mm512_sub_epi32(lo[t], _mm512_set1_epi32(*off.add(g_lo)));
                            let h = _mm512_sub_epi32(hi[t], _mm512_set1_epi32(*off.add(g_hi)));
                            let both = _mm512_add_epi32(
                                _mm512_mullo_epi32(l, sl),
                                _mm512_mullo_epi32(h, sh),
                            );
                            tot[t] = _mm512_add_epi32(tot[t], both);
                        }
                    }
                }
                let d = _mm512_cvtph_ps(halves16(b0, b1, Q6K_D));
                for t in 0..T {
                    let scale = _mm512_mul_ps(d, _mm512_set1_ps(*a[t].d.add(sb)));
                    facc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(tot[t]), scale, facc[t]);
                }
            }
            facc
        }
    }

    /// Two groups (rows `8g0..8g0 + 8` and `8g1..8g1 + 8`) times `T` tokens on AVX-512 VNNI:
    /// `out[t]` holds group `g0`'s 8 rows, then `g1`'s.
    ///
    /// # Safety
    /// AVX-512 VNNI is available ([`Isa::Avx512Vnni`]); otherwise as [`group`].
    pub(in crate::kernels) unsafe fn group_pair<const T: usize>(
        kind: QType,
        g0: *const u8,
        g1: *const u8,
        nsb: usize,
        a: [PackedAct; T],
    ) -> [[f32; 2 * GROUP]; T] {
        let v = match kind {
            QType::Q4K => wide::q4k::<T>(g0, g1, nsb, a),
            _ => wide::q6k::<T>(g0, g1, nsb, a),
        };
        let mut out = [[0f32; 2 * GROUP]; T];
        for t in 0..T {
            out[t] = std::mem::transmute::<__m512, [f32; 16]>(v[t]);
        }
        out
    }
}
