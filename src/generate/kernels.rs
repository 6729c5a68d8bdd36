//! CPU kernels for the transformer in `model.rs`: quantized matrix-vector products for decoding
//! (Q8_0 and Q5_0 weights against Q8_0-quantized activations, AVX2 when compiled for it) and the
//! small per-token operations (RMSNorm, RoPE, SwiGLU, softmax, dot products).
//!
//! Work is spread over candle's persistent CPU pool, so the thread count is whatever the caller
//! configured for candle (`RAYON_NUM_THREADS`).

use std::ops::Range;

/// Values per quantization block of Q8_0 and Q5_0.
pub(crate) const QK: usize = 32;
pub(crate) const Q8_0_BYTES: usize = 34;
pub(crate) const Q5_0_BYTES: usize = 22;

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
}

impl QuantizedActs {
    /// Quantizes `x` (length a multiple of 32), reusing the buffers.
    pub(crate) fn quantize(&mut self, x: &[f32]) {
        debug_assert_eq!(x.len() % QK, 0);
        self.qs.resize(x.len(), 0);
        self.d.resize(x.len() / QK, 0.0);
        for ((block, qs), d) in x
            .chunks_exact(QK)
            .zip(self.qs.chunks_exact_mut(QK))
            .zip(self.d.iter_mut())
        {
            let amax = block.iter().fold(0f32, |m, v| m.max(v.abs()));
            let scale = amax / 127.0;
            let inv = if scale > 0.0 { 1.0 / scale } else { 0.0 };
            for (q, v) in qs.iter_mut().zip(block) {
                *q = (v * inv).round() as i8;
            }
            *d = scale;
        }
    }
}

/// The weight encodings the matrix-vector kernels read directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RawKind {
    Q8_0,
    Q5_0,
}

impl RawKind {
    pub(crate) fn block_bytes(self) -> usize {
        match self {
            RawKind::Q8_0 => Q8_0_BYTES,
            RawKind::Q5_0 => Q5_0_BYTES,
        }
    }
}

/// A row-major quantized matrix `[rows, cols]` in GGUF block layout.
#[derive(Clone, Copy)]
pub(crate) struct RawMatrix<'a> {
    pub(crate) kind: RawKind,
    pub(crate) data: &'a [u8],
    pub(crate) rows: usize,
    pub(crate) cols: usize,
}

impl RawMatrix<'_> {
    fn row_bytes(&self) -> usize {
        self.cols / QK * self.kind.block_bytes()
    }
}

/// Rows handed to a worker at a time; a multiple of the 4-row kernels.
const ROWS_PER_UNIT: usize = 16;

/// Computes `out_i = W_i · x` for several matrices sharing one quantized input, in one parallel
/// region (q/k/v, or gate/up).
pub(crate) fn matvec_many(parts: &mut [(RawMatrix<'_>, &mut [f32])], x: &QuantizedActs) {
    let mut starts = Vec::with_capacity(parts.len());
    let mut units = 0;
    for (m, out) in parts.iter() {
        assert_eq!(out.len(), m.rows, "output length");
        assert_eq!(x.qs.len(), m.cols, "input length");
        assert_eq!(m.data.len(), m.rows * m.row_bytes(), "matrix bytes");
        starts.push(units);
        units += m.rows.div_ceil(ROWS_PER_UNIT);
    }
    let outs: Vec<(RawMatrix<'_>, SharedMut)> = parts
        .iter_mut()
        .map(|(m, out)| (*m, SharedMut::new(out)))
        .collect();
    par_ranges(units, |range| {
        for unit in range {
            let p = starts.partition_point(|&s| s <= unit) - 1;
            let (m, out) = &outs[p];
            let first = (unit - starts[p]) * ROWS_PER_UNIT;
            let rows = first..(first + ROWS_PER_UNIT).min(m.rows);
            // SAFETY: units map to disjoint row ranges of one output each.
            let dst = unsafe { out.slice(rows.clone()) };
            matvec_rows(m, rows, x, dst);
        }
    });
}

/// `out = W · x` for one matrix.
#[cfg(test)]
pub(crate) fn matvec(m: RawMatrix<'_>, x: &QuantizedActs, out: &mut [f32]) {
    matvec_many(&mut [(m, out)], x);
}

fn matvec_rows(m: &RawMatrix<'_>, rows: Range<usize>, x: &QuantizedActs, out: &mut [f32]) {
    let row_bytes = m.row_bytes();
    let mut r = rows.start;
    let mut o = 0;
    while r + 4 <= rows.end {
        let w: [&[u8]; 4] =
            std::array::from_fn(|i| &m.data[(r + i) * row_bytes..(r + i + 1) * row_bytes]);
        out[o..o + 4].copy_from_slice(&dot4(m.kind, w, x));
        r += 4;
        o += 4;
    }
    while r < rows.end {
        let w = &m.data[r * row_bytes..(r + 1) * row_bytes];
        out[o] = dot1(m.kind, w, x);
        r += 1;
        o += 1;
    }
}

fn dot4(kind: RawKind, w: [&[u8]; 4], x: &QuantizedActs) -> [f32; 4] {
    #[cfg(all(
        target_arch = "x86_64",
        target_feature = "avx2",
        target_feature = "fma",
        target_feature = "f16c"
    ))]
    {
        // SAFETY: the target features are enabled at compile time; slice lengths were checked.
        unsafe {
            match kind {
                RawKind::Q8_0 => avx2::dot4_q8_0(w, &x.qs, &x.d),
                RawKind::Q5_0 => avx2::dot4_q5_0(w, &x.qs, &x.d),
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
        std::array::from_fn(|i| dot1(kind, w[i], x))
    }
}

fn dot1(kind: RawKind, w: &[u8], x: &QuantizedActs) -> f32 {
    let bb = kind.block_bytes();
    let mut sum = 0f32;
    for ((block, aq), ad) in w.chunks_exact(bb).zip(x.qs.chunks_exact(QK)).zip(&x.d) {
        let d = f16_to_f32(u16::from_le_bytes([block[0], block[1]]));
        let dot: i32 = match kind {
            RawKind::Q8_0 => block[2..]
                .iter()
                .zip(aq)
                .map(|(&q, &a)| i32::from(q as i8) * i32::from(a))
                .sum(),
            RawKind::Q5_0 => {
                let qh = u32::from_le_bytes([block[2], block[3], block[4], block[5]]);
                (0..QK)
                    .map(|j| {
                        let nib = if j < 16 {
                            block[6 + j] & 0x0F
                        } else {
                            block[6 + j - 16] >> 4
                        };
                        let hi = ((qh >> j) & 1) as u8;
                        let q = i32::from(nib | (hi << 4)) - 16;
                        q * i32::from(aq[j])
                    })
                    .sum()
            }
        };
        sum += d * ad * dot as f32;
    }
    sum
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
    use super::{Q5_0_BYTES, Q8_0_BYTES, QK};
    use std::arch::x86_64::*;

    #[inline(always)]
    unsafe fn half(p: *const u8) -> f32 {
        let bits = (p as *const u16).read_unaligned();
        _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(i32::from(bits))))
    }

    /// Sum over 4-byte groups of w·a as 8 f32 lanes (w, a signed bytes).
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

    pub(super) unsafe fn dot4_q8_0(w: [&[u8]; 4], aq: &[i8], ad: &[f32]) -> [f32; 4] {
        let nb = ad.len();
        let p: [*const u8; 4] = std::array::from_fn(|i| w[i].as_ptr());
        let mut acc = [_mm256_setzero_ps(); 4];
        for b in 0..nb {
            let a = _mm256_loadu_si256(aq.as_ptr().add(b * QK) as *const __m256i);
            let da = *ad.get_unchecked(b);
            for r in 0..4 {
                let blk = p[r].add(b * Q8_0_BYTES);
                let q = _mm256_loadu_si256(blk.add(2) as *const __m256i);
                let d = _mm256_set1_ps(half(blk) * da);
                acc[r] = _mm256_fmadd_ps(d, dot_i8(q, a), acc[r]);
            }
        }
        std::array::from_fn(|r| hsum(acc[r]))
    }

    /// 32 five-bit values as signed bytes in -16..=15: low nibbles hold elements 0..16, high
    /// nibbles 16..32, and bit j of `qh` is element j's fifth bit.
    #[inline(always)]
    unsafe fn unpack_q5_0(blk: *const u8) -> __m256i {
        let qs = _mm_loadu_si128(blk.add(6) as *const __m128i);
        let nibbles = _mm256_and_si256(
            _mm256_set_m128i(_mm_srli_epi16(qs, 4), qs),
            _mm256_set1_epi8(0x0F),
        );
        let qh = (blk.add(2) as *const u32).read_unaligned();
        // Spread bit j of qh to byte j, as 0xFF where set.
        let spread = _mm256_shuffle_epi8(
            _mm256_set1_epi32(qh as i32),
            _mm256_set_epi64x(
                0x0303_0303_0303_0303,
                0x0202_0202_0202_0202,
                0x0101_0101_0101_0101,
                0,
            ),
        );
        let bit_set = _mm256_cmpeq_epi8(
            _mm256_or_si256(spread, _mm256_set1_epi64x(0x7fbf_dfef_f7fb_fdfe)),
            _mm256_set1_epi64x(-1),
        );
        // Without the fifth bit the value is nibble - 16, i.e. the nibble with 0xF0 set.
        let high = _mm256_andnot_si256(bit_set, _mm256_set1_epi8(0xF0u8 as i8));
        _mm256_or_si256(nibbles, high)
    }

    pub(super) unsafe fn dot4_q5_0(w: [&[u8]; 4], aq: &[i8], ad: &[f32]) -> [f32; 4] {
        let nb = ad.len();
        let p: [*const u8; 4] = std::array::from_fn(|i| w[i].as_ptr());
        let mut acc = [_mm256_setzero_ps(); 4];
        for b in 0..nb {
            let a = _mm256_loadu_si256(aq.as_ptr().add(b * QK) as *const __m256i);
            let da = *ad.get_unchecked(b);
            for r in 0..4 {
                let blk = p[r].add(b * Q5_0_BYTES);
                let d = _mm256_set1_ps(half(blk) * da);
                acc[r] = _mm256_fmadd_ps(d, dot_i8(unpack_q5_0(blk), a), acc[r]);
            }
        }
        std::array::from_fn(|r| hsum(acc[r]))
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

/// `x = silu(x) * up` (SwiGLU).
pub(crate) fn silu_mul(gate: &mut [f32], up: &[f32]) {
    for (g, &u) in gate.iter_mut().zip(up) {
        *g = *g / (1.0 + (-*g).exp()) * u;
    }
}

/// In-place softmax of `x`.
pub(crate) fn softmax(x: &mut [f32]) {
    let max = x.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    let mut sum = 0f32;
    for v in x.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    let inv = 1.0 / sum;
    for v in x.iter_mut() {
        *v *= inv;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let m = RawMatrix {
            kind: RawKind::Q8_0,
            data: &data,
            rows,
            cols,
        };
        let mut out = vec![0f32; rows];
        matvec(m, &acts, &mut out);
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
        let m = RawMatrix {
            kind: RawKind::Q5_0,
            data: &data,
            rows,
            cols,
        };
        matvec(m, &acts, &mut out);
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
