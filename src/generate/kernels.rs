//! CPU kernels for the transformer in `model.rs`: quantized matrix-vector products for decoding
//! (Q8_0, Q5_0 and Q4_K weights, repacked at load, against Q8_0-quantized activations), decode
//! attention blocks, and the small per-token operations (RMSNorm, SwiGLU, softmax). AVX2/FMA
//! intrinsics when the crate is compiled for them (`.cargo/config.toml` targets x86-64-v3),
//! portable code otherwise.
//!
//! Work is spread over candle's persistent CPU pool, so the thread count is whatever the caller
//! configured for candle (`RAYON_NUM_THREADS`).

use std::ops::Range;

/// Values per quantization block of Q8_0 and Q5_0.
pub(crate) const QK: usize = 32;
pub(crate) const Q8_0_BYTES: usize = 34;
pub(crate) const Q5_0_BYTES: usize = 22;
/// Q4_K super-blocks: 256 values, 144 bytes.
const Q4K_VALUES: usize = 256;
const Q4K_BYTES: usize = 144;
/// A Q4_K sub-block of 32 as this crate stores it: f16 scale, f16 min, 16 bytes of nibbles.
const Q4S_BYTES: usize = 20;

/// Runs `f` over `0..n_items` split into ranges across the CPU pool.
pub(crate) fn par_ranges(n_items: usize, f: impl Fn(Range<usize>) + Sync) {
    candle_core::utils::barrier_pool().execute_chunked(n_items, f)
}

/// A raw output pointer shared by workers that write disjoint ranges of it.
#[derive(Clone, Copy)]
pub(crate) struct SharedMut(*mut f32);
// SAFETY: every user writes disjoint index ranges and the pool joins before the buffer is read.
unsafe impl Send for SharedMut {}
unsafe impl Sync for SharedMut {}

impl SharedMut {
    pub(crate) fn new(s: &mut [f32]) -> Self {
        SharedMut(s.as_mut_ptr())
    }

    /// # Safety
    /// `range` must lie inside the buffer this was made from and no other worker may touch it.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn slice(&self, range: Range<usize>) -> &mut [f32] {
        std::slice::from_raw_parts_mut(self.0.add(range.start), range.len())
    }
}

/// Activations quantized to Q8_0 blocks (32 signed bytes and one f32 scale each), the form the
/// integer dot products take.
#[derive(Debug, Default)]
pub(crate) struct QuantizedActs {
    pub(crate) qs: Vec<i8>,
    pub(crate) d: Vec<f32>,
    /// Per block, `d` times the sum of the quants: lets Q5_0 kernels use the weights unsigned
    /// (value + 16) and take the offset off afterwards.
    pub(crate) dsum: Vec<f32>,
}

impl QuantizedActs {
    /// Quantizes `x` (length a multiple of 32), reusing the buffers.
    pub(crate) fn quantize(&mut self, x: &[f32]) {
        debug_assert_eq!(x.len() % QK, 0);
        self.qs.resize(x.len(), 0);
        self.d.resize(x.len() / QK, 0.0);
        self.dsum.resize(x.len() / QK, 0.0);
        for (((block, qs), d), dsum) in x
            .chunks_exact(QK)
            .zip(self.qs.chunks_exact_mut(QK))
            .zip(self.d.iter_mut())
            .zip(self.dsum.iter_mut())
        {
            let amax = block.iter().fold(0f32, |m, v| m.max(v.abs()));
            let scale = amax / 127.0;
            let inv = if scale > 0.0 { 1.0 / scale } else { 0.0 };
            let mut sum = 0i32;
            for (q, v) in qs.iter_mut().zip(block) {
                *q = (v * inv).round() as i8;
                sum += i32::from(*q);
            }
            *d = scale;
            *dsum = scale * sum as f32;
        }
    }
}

/// The weight encodings the matrix-vector kernels read directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RawKind {
    Q8_0,
    Q5_0,
    /// Q4_K, stored per 32 values with the scale and min already multiplied out.
    Q4K,
}

impl RawKind {
    /// Bytes per 32 values of one row, as packed.
    pub(crate) fn block_bytes(self) -> usize {
        match self {
            RawKind::Q8_0 => Q8_0_BYTES,
            RawKind::Q5_0 => Q5_0_BYTES,
            RawKind::Q4K => Q4S_BYTES,
        }
    }
}

/// Rows interleaved in [`PackedMatrix`].
const GROUP: usize = 4;

/// A quantized matrix `[rows, cols]` re-laid out for decoding: rows in groups of four, and
/// within a group, block column by block column, the four rows' f16 scales, then (Q5_0) their
/// fifth bits, then their quants. One group is a single sequential stream, which keeps the
/// hardware prefetcher ahead, and the four scales convert with one instruction.
///
/// Q5_0 fifth bits are regrouped so a kernel needs no byte shuffle to spread them: for each pair
/// of rows (2p, 2p+1) and half k of the block (elements 16k..16k+16) one u32 holds the 32 bits
/// of the vector `[row 2p elements | row 2p+1 elements]`, the bit for vector byte j at
/// `q5_bit(j)`. Broadcast to every dword, byte j then finds its bit in byte j % 4.
pub(crate) struct PackedMatrix {
    kind: RawKind,
    rows: usize,
    cols: usize,
    data: Vec<u8>,
}

impl PackedMatrix {
    /// Repacks GGUF blocks (`rows` rows of `cols / 32` blocks each). Rows are padded to a
    /// multiple of four with zero scales.
    pub(crate) fn from_blocks(kind: RawKind, blocks: &[u8], rows: usize, cols: usize) -> Self {
        assert_eq!(cols % QK, 0, "columns must be whole blocks");
        let converted;
        let blocks = if kind == RawKind::Q4K {
            converted = q4k_to_q4s(blocks, rows, cols);
            &converted[..]
        } else {
            blocks
        };
        let bb = kind.block_bytes();
        let nb = cols / QK;
        assert_eq!(blocks.len(), rows * nb * bb, "block data size");
        let groups = rows.div_ceil(GROUP);
        let mut data = vec![0u8; groups * nb * GROUP * bb];
        for g in 0..groups {
            for b in 0..nb {
                let dst = &mut data[(g * nb + b) * GROUP * bb..][..GROUP * bb];
                for r in 0..GROUP {
                    let row = g * GROUP + r;
                    if row >= rows {
                        continue;
                    }
                    let src = &blocks[(row * nb + b) * bb..][..bb];
                    dst[2 * r..2 * r + 2].copy_from_slice(&src[..2]);
                    match kind {
                        RawKind::Q8_0 => {
                            dst[8 + r * QK..8 + (r + 1) * QK].copy_from_slice(&src[2..]);
                        }
                        RawKind::Q5_0 => {
                            let qh = u32::from_le_bytes(src[2..6].try_into().expect("4 bytes"));
                            let (p, side) = (r / 2, r % 2);
                            for e in (0..QK).filter(|e| qh >> e & 1 == 1) {
                                let (k, j) = (e / 16, 16 * side + e % 16);
                                let word = 8 + 4 * (2 * p + k);
                                let bit = q5_bit(j);
                                dst[word + bit / 8] |= 1 << (bit % 8);
                            }
                            dst[24 + 16 * r..40 + 16 * r].copy_from_slice(&src[6..]);
                        }
                        RawKind::Q4K => {
                            dst[8 + 2 * r..10 + 2 * r].copy_from_slice(&src[2..4]);
                            dst[16 + 16 * r..32 + 16 * r].copy_from_slice(&src[4..]);
                        }
                    }
                }
            }
        }
        PackedMatrix {
            kind,
            rows,
            cols,
            data,
        }
    }

    fn group_bytes(&self) -> usize {
        self.cols / QK * GROUP * self.kind.block_bytes()
    }

    /// Output rows `4 * group .. 4 * group + 4` (padding rows included).
    fn group_dot(&self, group: usize, x: &QuantizedActs) -> [f32; GROUP] {
        let data = &self.data[group * self.group_bytes()..][..self.group_bytes()];
        #[cfg(all(
            target_arch = "x86_64",
            target_feature = "avx2",
            target_feature = "fma",
            target_feature = "f16c"
        ))]
        {
            // SAFETY: the features are enabled at compile time and `data` holds `x.d.len()`
            // block columns of this kind (checked in matvec_many).
            unsafe {
                match self.kind {
                    RawKind::Q8_0 => avx2::group_dot_q8_0(data, &x.qs, &x.d),
                    RawKind::Q5_0 => avx2::group_dot_q5_0(data, &x.qs, &x.d, &x.dsum),
                    RawKind::Q4K => avx2::group_dot_q4s(data, &x.qs, &x.d, &x.dsum),
                }
            }
        }
        #[cfg(not(all(
            target_arch = "x86_64",
            target_feature = "avx2",
            target_feature = "fma",
            target_feature = "f16c"
        )))]
        {
            group_dot_scalar(self.kind, data, x)
        }
    }
}

/// Groups of four rows handed to a worker at a time.
const GROUPS_PER_UNIT: usize = 4;

/// Computes `out_i = W_i · x` for several matrices sharing one quantized input, in one parallel
/// region (q/k/v, or gate/up).
pub(crate) fn matvec_many(parts: &mut [(&PackedMatrix, &mut [f32])], x: &QuantizedActs) {
    let mut starts = Vec::with_capacity(parts.len());
    let mut units = 0;
    for (m, out) in parts.iter() {
        assert_eq!(out.len(), m.rows, "output length");
        assert_eq!(x.qs.len(), m.cols, "input length");
        starts.push(units);
        units += m.rows.div_ceil(GROUP * GROUPS_PER_UNIT);
    }
    let outs: Vec<(&PackedMatrix, SharedMut)> = parts
        .iter_mut()
        .map(|(m, out)| (*m, SharedMut::new(out)))
        .collect();
    par_ranges(units, |range| {
        for unit in range {
            let p = starts.partition_point(|&s| s <= unit) - 1;
            let (m, out) = &outs[p];
            let first_group = (unit - starts[p]) * GROUPS_PER_UNIT;
            let last_group = (first_group + GROUPS_PER_UNIT).min(m.rows.div_ceil(GROUP));
            let rows = first_group * GROUP..(last_group * GROUP).min(m.rows);
            // SAFETY: units map to disjoint row ranges of one output each.
            let dst = unsafe { out.slice(rows) };
            for (g, dst) in (first_group..last_group).zip(dst.chunks_mut(GROUP)) {
                let sums = m.group_dot(g, x);
                dst.copy_from_slice(&sums[..dst.len()]);
            }
        }
    });
}

/// `out = W · x` for one matrix.
#[cfg(test)]
pub(crate) fn matvec(m: &PackedMatrix, x: &QuantizedActs, out: &mut [f32]) {
    matvec_many(&mut [(m, out)], x);
}

#[cfg_attr(
    all(
        target_arch = "x86_64",
        target_feature = "avx2",
        target_feature = "fma",
        target_feature = "f16c"
    ),
    allow(dead_code)
)]
fn group_dot_scalar(kind: RawKind, data: &[u8], x: &QuantizedActs) -> [f32; GROUP] {
    let x4 = GROUP * kind.block_bytes();
    let mut sums = [0f32; GROUP];
    for (((col, aq), ad), dsum) in data
        .chunks_exact(x4)
        .zip(x.qs.chunks_exact(QK))
        .zip(&x.d)
        .zip(&x.dsum)
    {
        for (r, sum) in sums.iter_mut().enumerate() {
            let d = f16_to_f32(u16::from_le_bytes([col[2 * r], col[2 * r + 1]]));
            if kind == RawKind::Q4K {
                let min = f16_to_f32(u16::from_le_bytes([col[8 + 2 * r], col[9 + 2 * r]]));
                let qs = &col[16 + 16 * r..32 + 16 * r];
                let dot: i32 = (0..QK)
                    .map(|e| {
                        let q = if e < 16 {
                            qs[e] & 0x0F
                        } else {
                            qs[e - 16] >> 4
                        };
                        i32::from(q) * i32::from(aq[e])
                    })
                    .sum();
                *sum += d * ad * dot as f32 - min * dsum;
                continue;
            }
            let dot: i32 = match kind {
                RawKind::Q8_0 => col[8 + r * QK..8 + (r + 1) * QK]
                    .iter()
                    .zip(aq)
                    .map(|(&q, &a)| i32::from(q as i8) * i32::from(a))
                    .sum(),
                RawKind::Q5_0 => {
                    let qs = &col[24 + 16 * r..40 + 16 * r];
                    let (p, side) = (r / 2, r % 2);
                    (0..QK)
                        .map(|e| {
                            let nib = if e < 16 {
                                qs[e] & 0x0F
                            } else {
                                qs[e - 16] >> 4
                            };
                            let word = 8 + 4 * (2 * p + e / 16);
                            let bit = q5_bit(16 * side + e % 16);
                            let high = col[word + bit / 8] >> (bit % 8) & 1;
                            let q = i32::from(nib | high << 4) - 16;
                            q * i32::from(aq[e])
                        })
                        .sum()
                }
                RawKind::Q4K => unreachable!("handled above"),
            };
            *sum += d * ad * dot as f32;
        }
    }
    sums
}

/// Rewrites Q4_K super-blocks (rows of `cols / 256`) as one 20-byte block per 32 values:
/// f16 `d * scale`, f16 `dmin * min`, then the nibbles with element i in the low half of byte i
/// and element i + 16 in the high half, so that value = scale * q - min. The products round to
/// f16 (11 significant bits; the 6-bit factors need at most 6 more).
fn q4k_to_q4s(blocks: &[u8], rows: usize, cols: usize) -> Vec<u8> {
    assert_eq!(cols % Q4K_VALUES, 0, "Q4_K rows must be whole super-blocks");
    assert_eq!(
        blocks.len(),
        rows * cols / Q4K_VALUES * Q4K_BYTES,
        "Q4_K data size"
    );
    let mut out = Vec::with_capacity(rows * cols / QK * Q4S_BYTES);
    for sb in blocks.chunks_exact(Q4K_BYTES) {
        let d = f16_to_f32(u16::from_le_bytes([sb[0], sb[1]]));
        let dmin = f16_to_f32(u16::from_le_bytes([sb[2], sb[3]]));
        let scales: &[u8; 12] = sb[4..16].try_into().expect("12 bytes");
        let qs = &sb[16..];
        for j in 0..Q4K_VALUES / QK {
            let (sc, m) = q4k_scale_min(j, scales);
            out.extend_from_slice(&f32_to_f16(d * f32::from(sc)).to_le_bytes());
            out.extend_from_slice(&f32_to_f16(dmin * f32::from(m)).to_le_bytes());
            // Sub-block j is the low (even j) or high (odd j) nibbles of 32 bytes.
            let src = &qs[32 * (j / 2)..32 * (j / 2) + 32];
            let value = |e: usize| {
                if j % 2 == 0 {
                    src[e] & 0x0F
                } else {
                    src[e] >> 4
                }
            };
            out.extend((0..16).map(|i| value(i) | value(i + 16) << 4));
        }
    }
    out
}

/// The 6-bit scale and min of sub-block `j` (0..8) of a Q4_K super-block (ggml's layout).
fn q4k_scale_min(j: usize, s: &[u8; 12]) -> (u8, u8) {
    if j < 4 {
        (s[j] & 63, s[j + 4] & 63)
    } else {
        (
            (s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4),
            (s[j + 4] >> 4) | ((s[j] >> 6) << 4),
        )
    }
}

/// Single to half precision, rounding to nearest even (normal and subnormal results; values
/// beyond the half range become infinity).
pub(crate) fn f32_to_f16(v: f32) -> u16 {
    let bits = v.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let exp = ((bits >> 23) & 0xFF) as i32;
    let mant = bits & 0x7F_FFFF;
    if exp == 0xFF {
        return sign | 0x7C00 | if mant != 0 { 0x200 } else { 0 };
    }
    let e = exp - 127 + 15;
    if e >= 0x1F {
        return sign | 0x7C00;
    }
    if e <= 0 {
        if e < -10 {
            return sign;
        }
        // Subnormal: shift the mantissa (with its implicit bit) into place, rounding.
        let m = mant | 0x80_0000;
        let shift = (14 - e) as u32;
        let half = 1 << (shift - 1);
        let rest = m & ((1 << shift) - 1);
        let mut h = m >> shift;
        if rest > half || (rest == half && h & 1 == 1) {
            h += 1;
        }
        return sign | h as u16;
    }
    let mut h = ((e as u32) << 10) | (mant >> 13);
    let rest = mant & 0x1FFF;
    if rest > 0x1000 || (rest == 0x1000 && h & 1 == 1) {
        h += 1; // may carry into the exponent, which is still correct rounding
    }
    sign | h as u16
}

/// Where the fifth bit of vector byte `j` (0..32) sits in its packed u32: in byte `j % 4`, at
/// bit `j / 4`, so that a dword broadcast and one per-byte mask test find it.
fn q5_bit(j: usize) -> usize {
    8 * (j % 4) + j / 4
}

/// IEEE half to single precision (GGUF block scales).
pub(crate) fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = u32::from((h >> 10) & 0x1F);
    let mant = u32::from(h & 0x3FF);
    let bits = match (exp, mant) {
        (0, 0) => sign,
        (0, _) => {
            // Subnormal half: normalise into an f32 exponent.
            let shift = mant.leading_zeros() - 21;
            let mant = (mant << shift) & 0x3FF;
            sign | ((127 - 15 + 1 - shift) << 23) | (mant << 13)
        }
        (0x1F, _) => sign | 0x7F80_0000 | (mant << 13),
        _ => sign | ((exp + 127 - 15) << 23) | (mant << 13),
    };
    f32::from_bits(bits)
}

#[cfg(all(
    target_arch = "x86_64",
    target_feature = "avx2",
    target_feature = "fma",
    target_feature = "f16c"
))]
mod avx2 {
    use super::{GROUP, Q5_0_BYTES, Q8_0_BYTES, QK};
    use std::arch::x86_64::*;

    /// Sum over 4-byte groups of w·a as 8 f32 lanes (w, a signed bytes, a in -127..=127).
    #[inline(always)]
    unsafe fn dot_i8(w: __m256i, a: __m256i) -> __m256 {
        let abs_w = _mm256_sign_epi8(w, w);
        let a_signed = _mm256_sign_epi8(a, w);
        let pairs = _mm256_maddubs_epi16(abs_w, a_signed);
        _mm256_cvtepi32_ps(_mm256_madd_epi16(pairs, _mm256_set1_epi16(1)))
    }

    #[inline(always)]
    unsafe fn hsum(v: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_movehdup_ps(s));
        _mm_cvtss_f32(s)
    }

    /// The four rows' block scales times the activation scale, each broadcast to 8 lanes.
    #[inline(always)]
    unsafe fn scales(col: *const u8, da: f32) -> [__m256; GROUP] {
        let d4 = _mm_mul_ps(
            _mm_cvtph_ps(_mm_loadl_epi64(col as *const __m128i)),
            _mm_set1_ps(da),
        );
        let d8 = _mm256_castps128_ps256(d4);
        [
            _mm256_permutevar8x32_ps(d8, _mm256_set1_epi32(0)),
            _mm256_permutevar8x32_ps(d8, _mm256_set1_epi32(1)),
            _mm256_permutevar8x32_ps(d8, _mm256_set1_epi32(2)),
            _mm256_permutevar8x32_ps(d8, _mm256_set1_epi32(3)),
        ]
    }

    const PREFETCH: usize = 1024;

    pub(super) unsafe fn group_dot_q8_0(data: &[u8], aq: &[i8], ad: &[f32]) -> [f32; GROUP] {
        const X4: usize = GROUP * Q8_0_BYTES;
        debug_assert_eq!(data.len(), ad.len() * X4);
        let mut acc = [_mm256_setzero_ps(); GROUP];
        for (b, &da) in ad.iter().enumerate() {
            let col = data.as_ptr().add(b * X4);
            _mm_prefetch(col.wrapping_add(PREFETCH) as *const i8, _MM_HINT_T0);
            let a = _mm256_loadu_si256(aq.as_ptr().add(b * QK) as *const __m256i);
            let d = scales(col, da);
            for r in 0..GROUP {
                let q = _mm256_loadu_si256(col.add(8 + r * QK) as *const __m256i);
                acc[r] = _mm256_fmadd_ps(d[r], dot_i8(q, a), acc[r]);
            }
        }
        std::array::from_fn(|r| hsum(acc[r]))
    }

    /// Q5_0 rows (packed as described on `PackedMatrix`) against Q8_0 activations. The weights
    /// are used unsigned (value + 16, which `maddubs` takes directly since 31 * 127 * 2 fits in
    /// i16), two rows per vector; the extra 16 * sum(a) comes off at the end.
    pub(super) unsafe fn group_dot_q5_0(
        data: &[u8],
        aq: &[i8],
        ad: &[f32],
        adsum: &[f32],
    ) -> [f32; GROUP] {
        const X4: usize = GROUP * Q5_0_BYTES;
        debug_assert_eq!(data.len(), ad.len() * X4);
        let ones = _mm256_set1_epi16(1);
        let low4 = _mm256_set1_epi8(0x0F);
        let fifth = _mm256_set1_epi8(0x10);
        // Byte j tests bit j / 4.
        let select = _mm256_set_epi64x(
            0x8080_8080_4040_4040_u64 as i64,
            0x2020_2020_1010_1010,
            0x0808_0808_0404_0404,
            0x0202_0202_0101_0101,
        );
        let pair_scale = [
            _mm256_set_epi32(1, 1, 1, 1, 0, 0, 0, 0),
            _mm256_set_epi32(3, 3, 3, 3, 2, 2, 2, 2),
        ];
        let mut acc = [_mm256_setzero_ps(); 2];
        let mut offset = _mm_setzero_ps();
        for (b, (&da, &dsum)) in ad.iter().zip(adsum).enumerate() {
            let col = data.as_ptr().add(b * X4);
            _mm_prefetch(col.wrapping_add(PREFETCH) as *const i8, _MM_HINT_T0);
            let a = _mm256_loadu_si256(aq.as_ptr().add(b * QK) as *const __m256i);
            // Activations 0..16 (and 16..32) in both halves, to meet two rows at once.
            let a_half = [
                _mm256_permute2x128_si256(a, a, 0x00),
                _mm256_permute2x128_si256(a, a, 0x11),
            ];
            let dw = _mm_cvtph_ps(_mm_loadl_epi64(col as *const __m128i));
            offset = _mm_fmadd_ps(dw, _mm_set1_ps(dsum), offset);
            let d8 = _mm256_castps128_ps256(_mm_mul_ps(dw, _mm_set1_ps(da)));
            for (p, acc) in acc.iter_mut().enumerate() {
                let qs = _mm256_loadu_si256(col.add(24 + 32 * p) as *const __m256i);
                let nibbles = [
                    _mm256_and_si256(qs, low4),
                    _mm256_and_si256(_mm256_srli_epi16(qs, 4), low4),
                ];
                let mut dot = _mm256_setzero_si256();
                for k in 0..2 {
                    let word = (col.add(8 + 4 * (2 * p + k)) as *const i32).read_unaligned();
                    let bits = _mm256_and_si256(_mm256_set1_epi32(word), select);
                    let set = _mm256_cmpeq_epi8(bits, select);
                    let w = _mm256_or_si256(nibbles[k], _mm256_and_si256(set, fifth));
                    let pairs = _mm256_maddubs_epi16(w, a_half[k]);
                    dot = _mm256_add_epi32(dot, _mm256_madd_epi16(pairs, ones));
                }
                let d = _mm256_permutevar8x32_ps(d8, pair_scale[p]);
                *acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot), *acc);
            }
        }
        finish_pairs(&acc, offset, 16.0)
    }

    /// Row sums of two pair accumulators (lanes 0..4 one row, 4..8 the next) minus
    /// `factor * offset` per row.
    #[inline(always)]
    unsafe fn finish_pairs(acc: &[__m256; 2], offset: __m128, factor: f32) -> [f32; GROUP] {
        let mut offsets = [0f32; GROUP];
        _mm_storeu_ps(offsets.as_mut_ptr(), offset);
        let mut sums = [0f32; 8];
        let mut out = [0f32; GROUP];
        for (p, acc) in acc.iter().enumerate() {
            _mm256_storeu_ps(sums.as_mut_ptr(), *acc);
            out[2 * p] = sums[..4].iter().sum::<f32>() - factor * offsets[2 * p];
            out[2 * p + 1] = sums[4..].iter().sum::<f32>() - factor * offsets[2 * p + 1];
        }
        out
    }

    /// Q4_K rows (as 32-value blocks of scale, min and nibbles) against Q8_0 activations, two
    /// rows per vector: scale * q * a summed with integer dot products, min * sum(a) taken off.
    pub(super) unsafe fn group_dot_q4s(
        data: &[u8],
        aq: &[i8],
        ad: &[f32],
        adsum: &[f32],
    ) -> [f32; GROUP] {
        const X4: usize = GROUP * super::Q4S_BYTES;
        debug_assert_eq!(data.len(), ad.len() * X4);
        let ones = _mm256_set1_epi16(1);
        let low4 = _mm256_set1_epi8(0x0F);
        let pair_scale = [
            _mm256_set_epi32(1, 1, 1, 1, 0, 0, 0, 0),
            _mm256_set_epi32(3, 3, 3, 3, 2, 2, 2, 2),
        ];
        let mut acc = [_mm256_setzero_ps(); 2];
        let mut mins = _mm_setzero_ps();
        for (b, (&da, &dsum)) in ad.iter().zip(adsum).enumerate() {
            let col = data.as_ptr().add(b * X4);
            _mm_prefetch(col.wrapping_add(PREFETCH) as *const i8, _MM_HINT_T0);
            let a = _mm256_loadu_si256(aq.as_ptr().add(b * QK) as *const __m256i);
            let a_half = [
                _mm256_permute2x128_si256(a, a, 0x00),
                _mm256_permute2x128_si256(a, a, 0x11),
            ];
            let scale = _mm_cvtph_ps(_mm_loadl_epi64(col as *const __m128i));
            let min = _mm_cvtph_ps(_mm_loadl_epi64(col.add(8) as *const __m128i));
            mins = _mm_fmadd_ps(min, _mm_set1_ps(dsum), mins);
            let d8 = _mm256_castps128_ps256(_mm_mul_ps(scale, _mm_set1_ps(da)));
            for (p, acc) in acc.iter_mut().enumerate() {
                let qs = _mm256_loadu_si256(col.add(16 + 32 * p) as *const __m256i);
                let lo = _mm256_and_si256(qs, low4);
                let hi = _mm256_and_si256(_mm256_srli_epi16(qs, 4), low4);
                let dot = _mm256_add_epi32(
                    _mm256_madd_epi16(_mm256_maddubs_epi16(lo, a_half[0]), ones),
                    _mm256_madd_epi16(_mm256_maddubs_epi16(hi, a_half[1]), ones),
                );
                let d = _mm256_permutevar8x32_ps(d8, pair_scale[p]);
                *acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot), *acc);
            }
        }
        finish_pairs(&acc, mins, 1.0)
    }
}

/// Query heads per attention block.
pub(crate) const HEADS: usize = 4;
/// Key positions per attention score block.
pub(crate) const POSITIONS: usize = 8;
/// Value dimensions per weighted-sum block.
pub(crate) const DIMS: usize = 16;

/// Dot products of `HEADS` queries with one or two blocks of `POSITIONS` keys, each block
/// `[dim][POSITIONS]` (`keys` holds `hd * POSITIONS` or twice that). Each step broadcasts one
/// query value against eight keys, so no horizontal sums are needed; two blocks give eight
/// independent accumulators, enough to hide the FMA latency. Without a second block its half of
/// the result is zero.
pub(crate) fn scores_block(q: [&[f32]; HEADS], keys: &[f32]) -> [[f32; 2 * POSITIONS]; HEADS] {
    let hd = q[0].len();
    assert!(q.iter().all(|qh| qh.len() == hd));
    let two = keys.len() == 2 * hd * POSITIONS;
    assert!(two || keys.len() == hd * POSITIONS);
    let mut out = [[0f32; 2 * POSITIONS]; HEADS];
    #[cfg(all(
        target_arch = "x86_64",
        target_feature = "avx2",
        target_feature = "fma"
    ))]
    // SAFETY: features enabled at compile time; every index was bounds-checked above.
    unsafe {
        use std::arch::x86_64::*;
        let k0 = keys.as_ptr();
        if two {
            let k1 = k0.add(hd * POSITIONS);
            let mut acc = [[_mm256_setzero_ps(); 2]; HEADS];
            for d in 0..hd {
                let a = _mm256_loadu_ps(k0.add(d * POSITIONS));
                let b = _mm256_loadu_ps(k1.add(d * POSITIONS));
                for h in 0..HEADS {
                    let qd = _mm256_set1_ps(*q[h].get_unchecked(d));
                    acc[h][0] = _mm256_fmadd_ps(qd, a, acc[h][0]);
                    acc[h][1] = _mm256_fmadd_ps(qd, b, acc[h][1]);
                }
            }
            for h in 0..HEADS {
                _mm256_storeu_ps(out[h].as_mut_ptr(), acc[h][0]);
                _mm256_storeu_ps(out[h].as_mut_ptr().add(POSITIONS), acc[h][1]);
            }
        } else {
            let mut acc = [_mm256_setzero_ps(); HEADS];
            for d in 0..hd {
                let a = _mm256_loadu_ps(k0.add(d * POSITIONS));
                for h in 0..HEADS {
                    let qd = _mm256_set1_ps(*q[h].get_unchecked(d));
                    acc[h] = _mm256_fmadd_ps(qd, a, acc[h]);
                }
            }
            for h in 0..HEADS {
                _mm256_storeu_ps(out[h].as_mut_ptr(), acc[h]);
            }
        }
    }
    #[cfg(not(all(
        target_arch = "x86_64",
        target_feature = "avx2",
        target_feature = "fma"
    )))]
    {
        for (b, block) in keys.chunks_exact(hd * POSITIONS).enumerate() {
            for d in 0..hd {
                let k = &block[d * POSITIONS..][..POSITIONS];
                for h in 0..HEADS {
                    for l in 0..POSITIONS {
                        let o = &mut out[h][b * POSITIONS + l];
                        *o = q[h][d].mul_add(k[l], *o);
                    }
                }
            }
        }
    }
    out
}

/// `sum_j p_h[j] * values[j][dc..dc + DIMS]` for `HEADS` weight rows over all positions of
/// `values` (`[position][hd]`).
pub(crate) fn weighted_values(
    p: [&[f32]; HEADS],
    values: &[f32],
    hd: usize,
    dc: usize,
) -> [[f32; DIMS]; HEADS] {
    let n = values.len() / hd;
    assert!(p.iter().all(|ph| ph.len() >= n) && dc + DIMS <= hd);
    #[cfg(all(
        target_arch = "x86_64",
        target_feature = "avx2",
        target_feature = "fma"
    ))]
    // SAFETY: features enabled at compile time; every index was bounds-checked above.
    unsafe {
        use std::arch::x86_64::*;
        let mut acc = [[_mm256_setzero_ps(); 2]; HEADS];
        for j in 0..n {
            let v = values.as_ptr().add(j * hd + dc);
            let (v0, v1) = (_mm256_loadu_ps(v), _mm256_loadu_ps(v.add(8)));
            for h in 0..HEADS {
                let w = _mm256_set1_ps(*p[h].get_unchecked(j));
                acc[h][0] = _mm256_fmadd_ps(w, v0, acc[h][0]);
                acc[h][1] = _mm256_fmadd_ps(w, v1, acc[h][1]);
            }
        }
        let mut out = [[0f32; DIMS]; HEADS];
        for h in 0..HEADS {
            _mm256_storeu_ps(out[h].as_mut_ptr(), acc[h][0]);
            _mm256_storeu_ps(out[h].as_mut_ptr().add(8), acc[h][1]);
        }
        out
    }
    #[cfg(not(all(
        target_arch = "x86_64",
        target_feature = "avx2",
        target_feature = "fma"
    )))]
    {
        let mut acc = [[0f32; DIMS]; HEADS];
        for j in 0..n {
            let v = &values[j * hd + dc..][..DIMS];
            for h in 0..HEADS {
                for l in 0..DIMS {
                    acc[h][l] = p[h][j].mul_add(v[l], acc[h][l]);
                }
            }
        }
        acc
    }
}

/// `out = x * w / rms(x)` for one row.
pub(crate) fn rms_norm(x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
    let ss = dot(x, x);
    let scale = 1.0 / (ss / x.len() as f32 + eps).sqrt();
    for ((o, &v), &g) in out.iter_mut().zip(x).zip(w) {
        *o = v * scale * g;
    }
}

/// Dot product in 8 independent lanes, so it vectorises.
#[inline]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let ca = a.chunks_exact(8);
    let cb = b.chunks_exact(8);
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] = x[i].mul_add(y[i], acc[i]);
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// `y += a * x`.
#[inline]
pub(crate) fn axpy(a: f32, x: &[f32], y: &mut [f32]) {
    for (y, &x) in y.iter_mut().zip(x) {
        *y = a.mul_add(x, *y);
    }
}

/// `e^x` to within a few ulp for the range softmax and SiLU see, written without calls or
/// branches so that loops over it vectorise (libm's `expf` took several milliseconds per decoded
/// token in attention and SiLU). Inputs below -87 give about 1e-38 rather than 0.
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    const LOG2_E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split so that n * LN2_HI is exact for |n| < 2^8.
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    let x = x.clamp(-87.0, 88.0);
    let n = (x * LOG2_E + 0.5).floor();
    let r = x - n * LN2_HI - n * LN2_LO;
    // Taylor series of e^r on |r| <= ln2 / 2, Horner form.
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r / 5040.0))))));
    // 2^n without a float-to-int conversion (Rust's saturating `as` does not vectorise): adding
    // 1.5 * 2^23 leaves the integer n in the low mantissa bits.
    const MAGIC: f32 = 12_582_912.0;
    let n_bits = (n + MAGIC).to_bits().wrapping_sub(MAGIC.to_bits());
    p * f32::from_bits(n_bits.wrapping_add(127) << 23)
}

/// `x = silu(x) * up` (SwiGLU).
pub(crate) fn silu_mul(gate: &mut [f32], up: &[f32]) {
    for (g, &u) in gate.iter_mut().zip(up) {
        *g = *g / (1.0 + exp(-*g)) * u;
    }
}

/// Largest value of `x` (`-inf` when empty).
pub(crate) fn max(x: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; 8];
    let chunks = x.chunks_exact(8);
    let tail = chunks
        .remainder()
        .iter()
        .fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    for c in chunks {
        for i in 0..8 {
            lanes[i] = lanes[i].max(c[i]);
        }
    }
    lanes.iter().fold(tail, |m, &v| m.max(v))
}

/// `x = e^(x - shift)` in place; returns the sum of the results.
pub(crate) fn exp_shifted(x: &mut [f32], shift: f32) -> f32 {
    let mut lanes = [0f32; 8];
    let mut chunks = x.chunks_exact_mut(8);
    for c in &mut chunks {
        for i in 0..8 {
            c[i] = exp(c[i] - shift);
            lanes[i] += c[i];
        }
    }
    let mut sum: f32 = lanes.iter().sum();
    for v in chunks.into_remainder() {
        *v = exp(*v - shift);
        sum += *v;
    }
    sum
}

/// In-place softmax of `x`.
pub(crate) fn softmax(x: &mut [f32]) {
    let sum = exp_shifted(x, max(x));
    let inv = 1.0 / sum;
    for v in x.iter_mut() {
        *v *= inv;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_exp_is_accurate() {
        let mut worst = 0f32;
        for i in -8700..=8800 {
            let x = i as f32 / 100.0;
            let rel = ((exp(x) - x.exp()) / x.exp()).abs();
            worst = worst.max(rel);
        }
        assert!(worst < 1e-6, "relative error {worst}");
        assert!(exp(-1000.0) < 1e-37 && exp(f32::NEG_INFINITY) < 1e-37);
        let mut v = vec![
            1.0,
            2.0,
            3.0,
            f32::NEG_INFINITY,
            0.5,
            -4.0,
            7.0,
            1.0,
            2.0,
            0.0,
        ];
        softmax(&mut v);
        let want: Vec<f32> = {
            let raw = [
                1.0f32,
                2.0,
                3.0,
                f32::NEG_INFINITY,
                0.5,
                -4.0,
                7.0,
                1.0,
                2.0,
                0.0,
            ];
            let s: f32 = raw.iter().map(|x| (x - 7.0).exp()).sum();
            raw.iter().map(|x| (x - 7.0).exp() / s).collect()
        };
        for (a, b) in v.iter().zip(&want) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
    }

    #[test]
    fn f32_to_f16_rounds_to_nearest() {
        for v in [
            0.0f32, 1.0, -2.0, 65504.0, 0.1, 2.5e3, -1e-3, 6.1e-5, 1e-6, 5.96e-8,
        ] {
            let back = f16_to_f32(f32_to_f16(v));
            let tol = (v.abs() * 2f32.powi(-11)).max(2f32.powi(-25));
            assert!((back - v).abs() <= tol, "{v} -> {back}");
        }
        assert_eq!(f32_to_f16(1.0), 0x3C00);
        assert_eq!(f32_to_f16(1e6), 0x7C00);
        assert_eq!(f32_to_f16(-0.0), 0x8000);
    }

    #[test]
    fn q4k_kernel_matches_candle_dequantization() {
        use candle_core::quantized::{GgmlDType, QTensor};
        use candle_core::{Device, Tensor};
        let (rows, cols) = (6, 512);
        let w: Vec<f32> = (0..rows * cols)
            .map(|i| ((i * 7919 % 1000) as f32 / 1000.0 - 0.4) * 0.1)
            .collect();
        let t = Tensor::from_vec(w, (rows, cols), &Device::Cpu).unwrap();
        let q = QTensor::quantize(&t, GgmlDType::Q4K).unwrap();
        let deq = q
            .dequantize(&Device::Cpu)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        let m = PackedMatrix::from_blocks(RawKind::Q4K, &q.data().unwrap(), rows, cols);
        let x: Vec<f32> = (0..cols).map(|i| (i as f32 * 0.37).sin()).collect();
        let mut acts = QuantizedActs::default();
        acts.quantize(&x);
        let xq: Vec<f32> = acts
            .qs
            .iter()
            .enumerate()
            .map(|(i, &v)| v as f32 * acts.d[i / QK])
            .collect();
        let mut out = vec![0f32; rows];
        matvec(&m, &acts, &mut out);
        for r in 0..rows {
            let want = dot(&deq[r], &xq);
            let scalar = group_dot_scalar(
                RawKind::Q4K,
                &m.data[(r / GROUP) * m.group_bytes()..][..m.group_bytes()],
                &acts,
            )[r % GROUP];
            // Scales and mins are rounded to f16 when repacking.
            let tol = 2e-3 * deq[r].iter().map(|v| v.abs()).sum::<f32>().max(1.0);
            assert!((out[r] - want).abs() < tol, "row {r}: {} vs {want}", out[r]);
            assert!(
                (scalar - out[r]).abs() < 1e-4,
                "row {r}: scalar {scalar} vs {}",
                out[r]
            );
        }
    }

    #[test]
    fn f16_conversion() {
        assert_eq!(f16_to_f32(0x3C00), 1.0);
        assert_eq!(f16_to_f32(0xC000), -2.0);
        assert_eq!(f16_to_f32(0x0000), 0.0);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x7BFF), 65504.0);
        assert!(f16_to_f32(0x7C00).is_infinite());
    }

    fn q8_0_row(vals: &[f32]) -> Vec<u8> {
        let mut acts = QuantizedActs::default();
        acts.quantize(vals);
        let mut out = Vec::new();
        for (qs, d) in acts.qs.chunks(QK).zip(&acts.d) {
            out.extend_from_slice(&f32_to_f16_bits(*d).to_le_bytes());
            out.extend(qs.iter().map(|&q| q as u8));
        }
        out
    }

    fn f32_to_f16_bits(v: f32) -> u16 {
        // Only for normal test values.
        let bits = v.to_bits();
        let sign = ((bits >> 16) & 0x8000) as u16;
        let exp = ((bits >> 23) & 0xFF) as i32 - 127 + 15;
        let mant = ((bits >> 13) & 0x3FF) as u16;
        sign | ((exp as u16) << 10) | mant
    }

    fn q5_0_row(q: &[i8], d: u16) -> Vec<u8> {
        let mut out = Vec::new();
        for block in q.chunks(QK) {
            out.extend_from_slice(&d.to_le_bytes());
            let mut qh = 0u32;
            let mut qs = [0u8; 16];
            for (j, &v) in block.iter().enumerate() {
                let u = (v + 16) as u8;
                qh |= u32::from(u >> 4) << j;
                if j < 16 {
                    qs[j] |= u & 0x0F;
                } else {
                    qs[j - 16] |= (u & 0x0F) << 4;
                }
            }
            out.extend_from_slice(&qh.to_le_bytes());
            out.extend_from_slice(&qs);
        }
        out
    }

    #[test]
    fn kernels_match_plain_dot_products() {
        let cols = 96;
        let rows = 7;
        let x: Vec<f32> = (0..cols)
            .map(|i| ((i * 37 % 23) as f32 - 11.0) / 7.0)
            .collect();
        let mut acts = QuantizedActs::default();
        acts.quantize(&x);
        let xq: Vec<f32> = acts
            .qs
            .iter()
            .enumerate()
            .map(|(i, &q)| q as f32 * acts.d[i / QK])
            .collect();

        // Q8_0 rows built from known values.
        let w: Vec<Vec<f32>> = (0..rows)
            .map(|r| {
                (0..cols)
                    .map(|i| ((i * 11 + r * 5) % 17) as f32 - 8.0)
                    .collect()
            })
            .collect();
        let data: Vec<u8> = w.iter().flat_map(|row| q8_0_row(row)).collect();
        let m = PackedMatrix::from_blocks(RawKind::Q8_0, &data, rows, cols);
        let mut out = vec![0f32; rows];
        matvec(&m, &acts, &mut out);
        for r in 0..rows {
            let mut wa = QuantizedActs::default();
            wa.quantize(&w[r]);
            let wq: Vec<f32> = wa
                .qs
                .iter()
                .enumerate()
                .map(|(i, &q)| q as f32 * f16_to_f32(f32_to_f16_bits(wa.d[i / QK])))
                .collect();
            let want = dot(&wq, &xq);
            assert!(
                (out[r] - want).abs() < 1e-3 * want.abs().max(1.0),
                "{r}: {} vs {want}",
                out[r]
            );
        }

        // Q5_0 rows with every value in -16..=15.
        let q: Vec<Vec<i8>> = (0..rows)
            .map(|r| {
                (0..cols)
                    .map(|i| ((i * 7 + r * 3) % 32) as i8 - 16)
                    .collect()
            })
            .collect();
        let d = 0x3800; // 0.5
        let data: Vec<u8> = q.iter().flat_map(|row| q5_0_row(row, d)).collect();
        let m = PackedMatrix::from_blocks(RawKind::Q5_0, &data, rows, cols);
        matvec(&m, &acts, &mut out);
        let scalar: Vec<f32> = (0..rows.div_ceil(GROUP))
            .flat_map(|g| {
                group_dot_scalar(
                    RawKind::Q5_0,
                    &m.data[g * m.group_bytes()..][..m.group_bytes()],
                    &acts,
                )
            })
            .take(rows)
            .collect();
        for (a, b) in out.iter().zip(&scalar) {
            assert!((a - b).abs() < 1e-3 * b.abs().max(1.0), "{a} vs scalar {b}");
        }
        for r in 0..rows {
            let wq: Vec<f32> = q[r].iter().map(|&v| v as f32 * 0.5).collect();
            let want = dot(&wq, &xq);
            assert!(
                (out[r] - want).abs() < 1e-3 * want.abs().max(1.0),
                "{r}: {} vs {want}",
                out[r]
            );
        }
    }
}
