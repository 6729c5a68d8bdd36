//! Matrix products `out[t][r] = Σ_c W[r][c] · x[t][c] + b[r]` over 16-bit integers, for the
//! embedder's linear layers: weights quantized once per row to 13 bits, activations per token to
//! 14 bits, products summed exactly in i32 by AVX-512 VNNI (`vpdpwssd`, 32 multiply-adds per
//! instruction, twice an f32 FMA's) and moved to f32 every [`CHUNK`] columns, before an i32 sum
//! could overflow. int8 activations (the generator's [`super::quant`]) move all-MiniLM-L6-v2's
//! embeddings by 2-4e-3, past the 1e-3 the golden test allows; these bounds move them by 4e-4.
//!
//! [`matmul`] runs the AVX-512 path when the CPU has it and the scalar reference otherwise;
//! callers that have a faster fallback (the embedder's f32 GEMM) check [`available`] first.

use super::{par_ranges, SharedOut};

/// Largest weight magnitude after quantization (13-bit signed).
pub const W_MAX: i32 = 4095;
/// Largest activation magnitude after quantization (14-bit signed).
pub const X_MAX: i32 = 8191;
/// Columns summed in i32 before the sum is moved to f32: `CHUNK * W_MAX * X_MAX < 2^31`.
pub const CHUNK: usize = 64;
/// Inner dimensions are multiples of this (32: an attention head's width).
pub const COL_STEP: usize = 32;
const _: () = assert!((CHUNK as i64) * (W_MAX as i64) * (X_MAX as i64) < i32::MAX as i64);

/// Output rows per vector (16 i32 lanes).
const LANES: usize = 16;
/// Row groups of [`LANES`] and tokens per register tile.
const TILE_G: usize = 2;
const TILE_T: usize = 6;
/// Tokens per pass over a pair of row groups: their activations stay in L2 meanwhile.
const TOKEN_BLOCK: usize = 16 * TILE_T;

/// Whether this CPU runs the fast path.
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512vnni")
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// A `[rows, cols]` weight matrix (output x input) quantized per row, stored for the tile kernel:
/// groups of 16 rows, within a group the 16 rows' values of each column pair side by side (one
/// vector per column pair). Rows past the last are zero.
#[derive(Default)]
pub struct I16Matrix {
    rows: usize,
    cols: usize,
    packed: Vec<i16>,
    /// One per row, padded with zeros to whole groups.
    scale: Vec<f32>,
}

impl std::fmt::Debug for I16Matrix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "I16Matrix([{}, {}])", self.rows, self.cols)
    }
}

/// `x` to `q` in `[-max, max]`; returns the scale. AVX-512 when there and `x` is whole vectors.
fn quantize_slice(x: &[f32], q: &mut [i16], max: i32) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if available() && x.len().is_multiple_of(LANES) {
        // SAFETY: AVX-512 was detected; the row is whole vectors.
        return unsafe { avx512::quantize_row(x, q, max) };
    }
    quantize_row(x, max, |c, v| q[c] = v)
}

/// Symmetric quantization of `x` to `[-max, max]`; returns the scale.
fn quantize_row(x: &[f32], max: i32, mut q: impl FnMut(usize, i16)) -> f32 {
    let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
    let d = amax / max as f32;
    let id = if d > 0.0 { 1.0 / d } else { 0.0 };
    for (i, v) in x.iter().enumerate() {
        q(i, (v * id).round() as i16);
    }
    d
}

impl I16Matrix {
    /// Quantizes f32 weights `[rows, cols]`, `cols` a multiple of [`COL_STEP`].
    pub fn quantize(w: &[f32], rows: usize, cols: usize) -> Self {
        assert_eq!(w.len(), rows * cols, "weights length");
        let mut m = Self::default();
        m.quantize_with(rows, cols, |r, c| w[r * cols + c]);
        m
    }

    /// Requantizes this matrix, reusing its buffers, to `[rows, cols]` with element `(r, c)`
    /// given by `at` (`cols` a multiple of [`COL_STEP`]).
    pub fn quantize_with(&mut self, rows: usize, cols: usize, at: impl Fn(usize, usize) -> f32) {
        self.reshape(rows, cols);
        for r in 0..rows {
            let (g, lane) = (r / LANES, r % LANES);
            let base = g * LANES * cols + lane * 2;
            let amax = (0..cols).fold(0f32, |m, c| m.max(at(r, c).abs()));
            let d = amax / W_MAX as f32;
            let id = if d > 0.0 { 1.0 / d } else { 0.0 };
            for c in 0..cols {
                self.packed[base + (c / 2) * 2 * LANES + c % 2] = (at(r, c) * id).round() as i16;
            }
            self.scale[r] = d;
        }
    }

    /// [`I16Matrix::quantize_with`] for rows that are slices: `row(r)` holds row `r`'s `cols`
    /// values (the attention keys, read in place).
    pub fn quantize_rows<'a>(
        &mut self,
        rows: usize,
        cols: usize,
        row: impl Fn(usize) -> &'a [f32],
    ) {
        self.reshape(rows, cols);
        let mut q = vec![0i16; cols];
        for r in 0..rows {
            let src = &row(r)[..cols];
            self.scale[r] = quantize_slice(src, &mut q, W_MAX);
            let base = (r / LANES) * LANES * cols + (r % LANES) * 2;
            for (p, pair) in q.chunks_exact(2).enumerate() {
                self.packed[base + p * 2 * LANES] = pair[0];
                self.packed[base + p * 2 * LANES + 1] = pair[1];
            }
        }
    }

    /// The transpose of `n` rows of `rows` values: `[rows, cols]` with element `(r, c)` equal to
    /// `src(c)[r]` for `c < n` and zero up to `cols` (the attention values, read in place).
    pub fn quantize_transposed<'a>(
        &mut self,
        rows: usize,
        cols: usize,
        n: usize,
        src: impl Fn(usize) -> &'a [f32],
    ) {
        assert!(n <= cols, "{n} source rows for {cols} columns");
        self.reshape(rows, cols);
        let mut amax = vec![0f32; rows];
        for c in 0..n {
            for (m, v) in amax.iter_mut().zip(&src(c)[..rows]) {
                *m = m.max(v.abs());
            }
        }
        let inv: Vec<f32> = amax
            .iter()
            .map(|&m| if m > 0.0 { W_MAX as f32 / m } else { 0.0 })
            .collect();
        for (s, m) in self.scale.iter_mut().zip(&amax) {
            *s = m / W_MAX as f32;
        }
        for c in 0..n {
            let base = (c / 2) * 2 * LANES + c % 2;
            for (r, (v, i)) in src(c)[..rows].iter().zip(&inv).enumerate() {
                self.packed[(r / LANES) * LANES * cols + base + (r % LANES) * 2] =
                    (v * i).round() as i16;
            }
        }
    }

    /// Zeroed buffers for `[rows, cols]`.
    fn reshape(&mut self, rows: usize, cols: usize) {
        assert!(
            cols.is_multiple_of(COL_STEP) && cols > 0,
            "{cols} columns are not whole steps of {COL_STEP}"
        );
        let groups = rows.div_ceil(LANES);
        self.rows = rows;
        self.cols = cols;
        self.packed.clear();
        self.packed.resize(groups * LANES * cols, 0);
        self.scale.clear();
        self.scale.resize(groups * LANES, 0.0);
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    fn groups(&self) -> usize {
        self.rows.div_ceil(LANES)
    }

    /// Quantized value at row `r`, column `c`.
    fn q(&self, r: usize, c: usize) -> i16 {
        self.packed[(r / LANES) * LANES * self.cols + (c / 2) * 2 * LANES + (r % LANES) * 2 + c % 2]
    }
}

/// Activations `[n, cols]` quantized per token, reused between calls.
#[derive(Debug, Default)]
pub struct I16Acts {
    n: usize,
    cols: usize,
    q: Vec<i16>,
    scale: Vec<f32>,
}

impl I16Acts {
    pub fn quantize(&mut self, x: &[f32], n: usize, cols: usize) {
        assert_eq!(x.len(), n * cols, "activation length");
        self.n = n;
        self.cols = cols;
        self.q.resize(n * cols, 0);
        self.scale.resize(n, 0.0);
        for t in 0..n {
            let q = &mut self.q[t * cols..(t + 1) * cols];
            self.scale[t] = quantize_slice(&x[t * cols..(t + 1) * cols], q, X_MAX);
        }
    }
}

impl I16Acts {
    /// The softmax of each of the `n` rows of `scores` (`cols` wide) over its first `len`
    /// values, quantized as activations, the rest of each row zero. The unnormalised
    /// probabilities `e^(x - max)` have 1 as their largest, so they quantize as
    /// `round(e * X_MAX)` with scale `1 / (sum * X_MAX)`: the normalising pass and the search
    /// for the largest value that [`I16Acts::quantize`] of a normalised row makes are not
    /// needed. `scores` is overwritten with the unnormalised values.
    pub fn softmax_quantize(&mut self, scores: &mut [f32], n: usize, cols: usize, len: usize) {
        assert_eq!(scores.len(), n * cols, "score length");
        assert!(len <= cols, "{len} scores in rows of {cols}");
        self.n = n;
        self.cols = cols;
        self.q.resize(n * cols, 0);
        self.scale.resize(n, 0.0);
        for (t, row) in scores.chunks_exact_mut(cols).enumerate() {
            let sum = super::elementwise::softmax_exp(&mut row[..len]);
            let q = &mut self.q[t * cols..(t + 1) * cols];
            scale_to_i16(&row[..len], &mut q[..len], X_MAX as f32);
            q[len..].fill(0);
            self.scale[t] = 1.0 / (sum * X_MAX as f32);
        }
    }
}

/// `q[i] = round(x[i] * k)`, for values whose products fit in i16.
fn scale_to_i16(x: &[f32], q: &mut [i16], k: f32) {
    let whole = x.len() - x.len() % LANES;
    #[cfg(target_arch = "x86_64")]
    let whole = if available() {
        // SAFETY: AVX-512 was detected; only whole vectors are passed.
        unsafe { avx512::scale_row(&x[..whole], &mut q[..whole], k) };
        whole
    } else {
        0
    };
    #[cfg(not(target_arch = "x86_64"))]
    let whole = 0;
    for (o, v) in q[whole..].iter_mut().zip(&x[whole..]) {
        *o = (v * k).round() as i16;
    }
}

/// `out[t * stride + r] = Σ_c W[r][c] · x[t][c] + bias[r]` for the `n` tokens of `x`; entries
/// of `out` past `w.rows()` in each row are left alone.
pub fn matmul(
    w: &I16Matrix,
    x: &[f32],
    n: usize,
    bias: Option<&[f32]>,
    out: &mut [f32],
    stride: usize,
    acts: &mut I16Acts,
) {
    acts.quantize(x, n, w.cols);
    matmul_quantized(w, acts, bias, out, stride)
}

/// [`matmul`] over activations already quantized (for `w`'s width).
pub fn matmul_quantized(
    w: &I16Matrix,
    acts: &I16Acts,
    bias: Option<&[f32]>,
    out: &mut [f32],
    stride: usize,
) {
    let n = acts.n;
    assert_eq!(acts.cols, w.cols, "activation width");
    assert!(bias.is_none_or(|b| b.len() == w.rows), "bias length");
    assert!(stride >= w.rows, "output stride");
    if n == 0 || w.rows == 0 {
        return;
    }
    assert!(out.len() >= (n - 1) * stride + w.rows, "output length");
    #[cfg(target_arch = "x86_64")]
    if available() {
        let dst = SharedOut::new(out);
        let pairs = w.groups().div_ceil(TILE_G);
        // SAFETY: AVX-512 VNNI was detected; each range of group pairs writes its own rows.
        let run = |range: std::ops::Range<usize>| unsafe {
            avx512::run_groups(
                w,
                acts,
                bias,
                dst,
                stride,
                range.start * TILE_G..range.end * TILE_G,
            )
        };
        if n * w.rows * w.cols >= 1 << 20 {
            par_ranges(pairs, run);
        } else {
            run(0..pairs);
        }
        return;
    }
    matmul_scalar(w, acts, bias, out, stride)
}

/// The reference: exact integer sums, scaled once.
pub fn matmul_scalar(
    w: &I16Matrix,
    acts: &I16Acts,
    bias: Option<&[f32]>,
    out: &mut [f32],
    stride: usize,
) {
    for t in 0..acts.n {
        let xq = &acts.q[t * acts.cols..(t + 1) * acts.cols];
        for r in 0..w.rows {
            let dot: i64 = xq
                .iter()
                .enumerate()
                .map(|(c, &x)| i64::from(w.q(r, c)) * i64::from(x))
                .sum();
            let b = bias.map_or(0.0, |b| b[r]);
            out[t * stride + r] = dot as f32 * w.scale[r] * acts.scale[t] + b;
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{I16Acts, I16Matrix, SharedOut, CHUNK, LANES, TILE_G, TILE_T, TOKEN_BLOCK};

    /// Every token's outputs for row groups `groups` (clipped to the matrix).
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub unsafe fn run_groups(
        w: &I16Matrix,
        a: &I16Acts,
        bias: Option<&[f32]>,
        dst: SharedOut,
        stride: usize,
        groups: std::ops::Range<usize>,
    ) {
        let last = w.groups();
        for t0 in (0..a.n).step_by(TOKEN_BLOCK) {
            let t1 = (t0 + TOKEN_BLOCK).min(a.n);
            for g in groups.clone().step_by(TILE_G) {
                if g >= last {
                    break;
                }
                let two = g + 1 < last.min(groups.end);
                for t in (t0..t1).step_by(TILE_T) {
                    let nt = (t1 - t).min(TILE_T);
                    match (two, nt) {
                        (true, 6) => tile::<2, 6>(w, a, bias, dst, stride, g, t),
                        (true, 5) => tile::<2, 5>(w, a, bias, dst, stride, g, t),
                        (true, 4) => tile::<2, 4>(w, a, bias, dst, stride, g, t),
                        (true, 3) => tile::<2, 3>(w, a, bias, dst, stride, g, t),
                        (true, 2) => tile::<2, 2>(w, a, bias, dst, stride, g, t),
                        (true, _) => tile::<2, 1>(w, a, bias, dst, stride, g, t),
                        (false, 6) => tile::<1, 6>(w, a, bias, dst, stride, g, t),
                        (false, 5) => tile::<1, 5>(w, a, bias, dst, stride, g, t),
                        (false, 4) => tile::<1, 4>(w, a, bias, dst, stride, g, t),
                        (false, 3) => tile::<1, 3>(w, a, bias, dst, stride, g, t),
                        (false, 2) => tile::<1, 2>(w, a, bias, dst, stride, g, t),
                        (false, _) => tile::<1, 1>(w, a, bias, dst, stride, g, t),
                    }
                }
            }
        }
    }

    /// `acc + Σ` of the lanes' two i16 products, as `vpdpwssd`. Written as assembly because
    /// LLVM splits the intrinsic into `vpmaddwd` + `vpaddd` (two instructions for one) for
    /// CPUs it does not know to be fast at it, this one included.
    #[inline]
    #[target_feature(enable = "avx512f,avx512vnni")]
    unsafe fn dpwssd(acc: __m512i, a: __m512i, b: __m512i) -> __m512i {
        let mut acc = acc;
        std::arch::asm!(
            "vpdpwssd {acc}, {a}, {b}",
            acc = inout(zmm_reg) acc,
            a = in(zmm_reg) a,
            b = in(zmm_reg) b,
            options(pure, nomem, nostack, preserves_flags),
        );
        acc
    }

    /// `q = round(x * k)` (`x.len()` a multiple of 16), saturating to i16.
    #[target_feature(enable = "avx512f,avx512bw")]
    pub unsafe fn scale_row(x: &[f32], q: &mut [i16], k: f32) {
        let k = _mm512_set1_ps(k);
        for (c, o) in x.chunks_exact(LANES).zip(q.chunks_exact_mut(LANES)) {
            let v = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(c.as_ptr()), k));
            _mm256_storeu_si256(o.as_mut_ptr() as *mut __m256i, _mm512_cvtsepi32_epi16(v));
        }
    }

    /// One token's activations to i16 (`x.len()` a multiple of 16); returns the scale.
    #[target_feature(enable = "avx512f,avx512bw")]
    pub unsafe fn quantize_row(x: &[f32], q: &mut [i16], max: i32) -> f32 {
        let mut m = _mm512_setzero_ps();
        for c in x.chunks_exact(LANES) {
            m = _mm512_max_ps(m, _mm512_abs_ps(_mm512_loadu_ps(c.as_ptr())));
        }
        let d = _mm512_reduce_max_ps(m) / max as f32;
        let id = _mm512_set1_ps(if d > 0.0 { 1.0 / d } else { 0.0 });
        for (c, o) in x.chunks_exact(LANES).zip(q.chunks_exact_mut(LANES)) {
            let v = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(c.as_ptr()), id));
            _mm256_storeu_si256(o.as_mut_ptr() as *mut __m256i, _mm512_cvtsepi32_epi16(v));
        }
        d
    }

    /// `G` groups of 16 rows from group `g` by `T` tokens from token `t`, over every column.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    // Register-tile coordinates (i, j) read more plainly as indices than as zipped iterators.
    #[allow(clippy::needless_range_loop)]
    unsafe fn tile<const G: usize, const T: usize>(
        w: &I16Matrix,
        a: &I16Acts,
        bias: Option<&[f32]>,
        dst: SharedOut,
        stride: usize,
        g: usize,
        t: usize,
    ) {
        const { assert!(G <= TILE_G && T <= TILE_T) };
        let cols = w.cols;
        let wp = w.packed.as_ptr().add(g * LANES * cols);
        let xp = a.q.as_ptr().add(t * cols);
        let mut facc = [[_mm512_setzero_ps(); T]; G];
        for c0 in (0..cols).step_by(CHUNK) {
            let mut iacc = [[_mm512_setzero_si512(); T]; G];
            for p in (c0 / 2)..(c0 + CHUNK).min(cols) / 2 {
                let wv: [__m512i; G] = std::array::from_fn(|i| {
                    _mm512_loadu_si512(wp.add(i * LANES * cols + p * 2 * LANES) as *const __m512i)
                });
                for j in 0..T {
                    let pair = (xp.add(j * cols + 2 * p) as *const i32).read_unaligned();
                    let xb = _mm512_set1_epi32(pair);
                    for i in 0..G {
                        iacc[i][j] = dpwssd(iacc[i][j], wv[i], xb);
                    }
                }
            }
            for i in 0..G {
                for j in 0..T {
                    facc[i][j] = _mm512_add_ps(facc[i][j], _mm512_cvtepi32_ps(iacc[i][j]));
                }
            }
        }
        for i in 0..G {
            let r0 = (g + i) * LANES;
            let live = w.rows.saturating_sub(r0).min(LANES);
            let mask: __mmask16 = if live == LANES {
                0xFFFF
            } else {
                (1u16 << live) - 1
            };
            let ws = _mm512_loadu_ps(w.scale.as_ptr().add(r0));
            let b = match bias {
                Some(b) => _mm512_maskz_loadu_ps(mask, b.as_ptr().add(r0)),
                None => _mm512_setzero_ps(),
            };
            for j in 0..T {
                let s = _mm512_mul_ps(ws, _mm512_set1_ps(a.scale[t + j]));
                let v = _mm512_fmadd_ps(facc[i][j], s, b);
                let at = (t + j) * stride + r0;
                let mut lanes = [0f32; LANES];
                _mm512_storeu_ps(lanes.as_mut_ptr(), v);
                for (l, &x) in lanes.iter().enumerate().take(live) {
                    dst.write(at + l, x);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise(n: usize, seed: u64, scale: f32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(1);
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                ((s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
            })
            .collect()
    }

    #[test]
    fn the_fast_path_matches_the_integer_reference_on_odd_shapes() {
        // Rows not whole groups or group pairs, tokens not whole tiles or token blocks, inner
        // dimensions of the embedder (32, 384, 1536, attention lengths) and the generator (896);
        // outputs into wider rows, with and without a bias.
        for (n, rows, cols, stride) in [
            (1, 16, 64, 16),
            (7, 33, 384, 40),
            (13, 1152, 384, 1152),
            (101, 40, 1536, 40),
            (5, 24, 896, 24),
            (37, 32, 32, 384),
            (29, 29, 96, 32),
        ] {
            let w = noise(rows * cols, rows as u64, 0.2);
            let x = noise(n * cols, n as u64 + 7, 3.0);
            let bias = noise(rows, 3, 1.0);
            let bias = (stride % 2 == 0).then_some(bias.as_slice());
            let m = I16Matrix::quantize(&w, rows, cols);
            let mut acts = I16Acts::default();
            let mut fast = vec![f32::NAN; n * stride];
            matmul(&m, &x, n, bias, &mut fast, stride, &mut acts);
            let mut want = vec![f32::NAN; n * stride];
            matmul_scalar(&m, &acts, bias, &mut want, stride);
            for t in 0..n {
                for r in 0..stride {
                    let (f, reference) = (fast[t * stride + r], want[t * stride + r]);
                    if r >= rows {
                        // Past the matrix's rows nothing is written.
                        assert!(f.is_nan() && reference.is_nan(), "out[{t}][{r}] written");
                        continue;
                    }
                    // Only the f32 conversions of the chunk sums round differently.
                    assert!(
                        (f - reference).abs() <= 1e-5 * (1.0 + reference.abs()),
                        "n {n} rows {rows} cols {cols}: out[{t}][{r}] {f} vs {reference}"
                    );
                    // And the quantized product is close to the f32 one.
                    let exact = (0..cols)
                        .map(|c| x[t * cols + c] * w[r * cols + c])
                        .sum::<f32>()
                        + bias.map_or(0.0, |b| b[r]);
                    assert!(
                        (reference - exact).abs() < 2e-3 * (cols as f32).sqrt(),
                        "{reference} vs {exact}"
                    );
                }
            }
        }
    }

    #[test]
    fn fused_softmax_quantization_matches_softmax_then_quantization() {
        // Attention rows: lengths not whole vectors, padded to steps of 32; scores up to ±8.
        for (len, seed) in [(1usize, 1), (17, 2), (32, 3), (45, 4), (200, 5)] {
            let (n, cols) = (len, len.next_multiple_of(COL_STEP));
            let scores = noise(n * cols, seed, 8.0);
            let mut want = scores.clone();
            for row in want.chunks_exact_mut(cols) {
                crate::kernels::elementwise::softmax_scalar(&mut row[..len]);
                row[len..].fill(0.0);
            }
            let mut reference = I16Acts {
                n,
                cols,
                ..Default::default()
            };
            for row in want.chunks_exact(cols) {
                let mut q = vec![0i16; cols];
                reference
                    .scale
                    .push(quantize_row(row, X_MAX, |c, v| q[c] = v));
                reference.q.extend(q);
            }
            let mut fused = I16Acts::default();
            let mut work = scores.clone();
            fused.softmax_quantize(&mut work, n, cols, len);
            assert_eq!((fused.n, fused.cols), (n, cols));
            for t in 0..n {
                let (a, b) = (fused.scale[t], reference.scale[t]);
                assert!(
                    (a - b).abs() <= 1e-5 * b,
                    "len {len} row {t}: scale {a} vs {b}"
                );
                for c in 0..cols {
                    let (x, y) = (fused.q[t * cols + c], reference.q[t * cols + c]);
                    assert!((x - y).abs() <= 1, "len {len} row {t} col {c}: {x} vs {y}");
                    if c >= len {
                        assert_eq!(x, 0);
                    }
                }
                // The largest probability is the largest integer.
                assert_eq!(
                    fused.q[t * cols..t * cols + len].iter().max(),
                    Some(&(X_MAX as i16))
                );
            }
        }
    }

    #[test]
    fn requantizing_reuses_a_matrix_for_new_shapes() {
        let mut m = I16Matrix::quantize(&noise(64 * 64, 1, 1.0), 64, 64);
        let w = noise(20 * 32, 2, 1.0);
        m.quantize_with(20, 32, |r, c| w[r * 32 + c]);
        let fresh = I16Matrix::quantize(&w, 20, 32);
        assert_eq!((m.rows(), m.cols()), (20, 32));
        assert_eq!(m.packed, fresh.packed);
        assert_eq!(m.scale, fresh.scale);
    }

    #[test]
    fn slices_and_transposes_quantize_as_the_element_function_does() {
        let (rows, cols) = (37, 64);
        let w = noise(rows * cols, 9, 2.0);
        let want = I16Matrix::quantize(&w, rows, cols);
        let mut m = I16Matrix::default();
        m.quantize_rows(rows, cols, |r| &w[r * cols..]);
        assert_eq!(m.packed, want.packed);
        // 50 source rows of 37 values, transposed and padded to 64 columns.
        let src = noise(50 * rows, 10, 2.0);
        let mut t = I16Matrix::default();
        t.quantize_transposed(rows, cols, 50, |c| &src[c * rows..]);
        let mut want = I16Matrix::default();
        want.quantize_with(
            rows,
            cols,
            |r, c| if c < 50 { src[c * rows + r] } else { 0.0 },
        );
        for r in 0..rows {
            assert!((t.scale[r] - want.scale[r]).abs() <= 1e-6 * want.scale[r]);
            for c in 0..cols {
                assert!((t.q(r, c) - want.q(r, c)).abs() <= 1, "({r}, {c})");
            }
        }
    }

    #[test]
    fn extreme_values_do_not_overflow_the_integer_sums() {
        // Every product at its largest: a chunk's sum is the closest to 2^31 it can get.
        let (rows, cols) = (16, 1536);
        let w = vec![1.0f32; rows * cols];
        let x = vec![-2.0f32; cols];
        let m = I16Matrix::quantize(&w, rows, cols);
        let mut acts = I16Acts::default();
        let mut out = vec![0f32; rows];
        matmul(&m, &x, 1, None, &mut out, rows, &mut acts);
        for v in out {
            assert!((v + 2.0 * cols as f32).abs() < 1e-2, "{v}");
        }
    }
}
