//! CPU kernels for the transformer in `model.rs` that are not matrix products over weights
//! (those are `crate::kernels::quant`): decode attention blocks and the small per-token
//! operations (RMSNorm, SwiGLU, softmax). AVX2/FMA intrinsics when the crate is compiled for them
//! (`.cargo/config.toml` targets x86-64-v3), portable code otherwise.
//!
//! Work is spread over candle's persistent CPU pool, so the thread count is whatever the caller
//! configured for candle.

use std::ops::Range;

pub(crate) use crate::kernels::quant::QK8_0 as QK;

pub(crate) use crate::kernels::par_ranges;

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
    use crate::kernels::{f16_to_f32, f32_to_f16};

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
    fn f16_conversion() {
        assert_eq!(f16_to_f32(0x3C00), 1.0);
        assert_eq!(f16_to_f32(0xC000), -2.0);
        assert_eq!(f16_to_f32(0x0000), 0.0);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x7BFF), 65504.0);
        assert!(f16_to_f32(0x7C00).is_infinite());
    }
}
