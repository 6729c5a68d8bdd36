//! Element-wise and row kernels for the models' forward passes: erf GELU, softmax and layer
//! normalisation with its residual add. Each has a portable scalar version, which is also the
//! reference its AVX2/FMA version is tested against; the AVX2 path is chosen at run time.
//! Called by the embedder's BERT forward pass (`embed::bert`).

/// `0.5 x (1 + erf(x / sqrt 2))` in place: BERT's exact (not tanh) GELU.
pub fn gelu_erf(x: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if avx2() {
        // SAFETY: AVX2 and FMA were detected on this CPU.
        return unsafe { avx2::gelu_erf(x) };
    }
    gelu_erf_scalar(x)
}

/// Softmax of one row in place (subtracting its maximum first, as everyone does).
pub fn softmax(row: &mut [f32]) {
    let inv = 1.0 / softmax_exp(row);
    for v in row {
        *v *= inv;
    }
}

/// The unnormalised softmax of one row in place, `e^(x - max)`, each in (0, 1] and the largest
/// exactly 1; returns their sum, by which a caller divides (or folds the division into a
/// scale, as the embedder's attention does when it quantizes the probabilities).
pub fn softmax_exp(row: &mut [f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if avx2() {
        // SAFETY: AVX2 and FMA were detected on this CPU.
        return unsafe { avx2::softmax_exp(row) };
    }
    softmax_exp_scalar(row)
}

/// `x = layer_norm(x + residual) * gamma + beta` over each row of `gamma.len()` values.
pub fn add_layer_norm(x: &mut [f32], residual: &[f32], gamma: &[f32], beta: &[f32], eps: f32) {
    assert_eq!(x.len(), residual.len());
    assert_eq!(gamma.len(), beta.len());
    assert!(!gamma.is_empty() && x.len().is_multiple_of(gamma.len()));
    #[cfg(target_arch = "x86_64")]
    if avx2() && gamma.len().is_multiple_of(8) {
        // SAFETY: AVX2 and FMA were detected on this CPU; rows are whole 8-lane vectors.
        return unsafe { avx2::add_layer_norm(x, residual, gamma, beta, eps) };
    }
    add_layer_norm_scalar(x, residual, gamma, beta, eps)
}

#[cfg(target_arch = "x86_64")]
fn avx2() -> bool {
    is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
}

// The erf approximation of Eigen and XLA (`generic_fast_erf_float`): an odd rational function of
// x on [-4, 4], outside which erf is +-1 in f32. Absolute error below 1e-6 (see the tests).
const ERF_CLAMP: f32 = 4.0;
const ERF_ALPHA: [f32; 7] = [
    -2.726_142_3e-10,
    2.770_681_4e-8,
    -2.101_024e-6,
    -5.692_506_4e-5,
    -7.349_906_3e-4,
    -2.9546e-3,
    -1.609_603_3e-2,
];
const ERF_BETA: [f32; 5] = [
    -1.456_607_2e-5,
    -2.133_740_6e-4,
    -1.682_827e-3,
    -7.373_329_2e-3,
    -1.426_473_9e-2,
];

fn erf_scalar(x: f32) -> f32 {
    let x = x.clamp(-ERF_CLAMP, ERF_CLAMP);
    let x2 = x * x;
    let p = ERF_ALPHA[1..]
        .iter()
        .fold(ERF_ALPHA[0], |p, &a| p.mul_add(x2, a));
    let q = ERF_BETA[1..]
        .iter()
        .fold(ERF_BETA[0], |q, &b| q.mul_add(x2, b));
    x * p / q
}

pub fn gelu_erf_scalar(x: &mut [f32]) {
    for v in x {
        *v = 0.5 * *v * (1.0 + erf_scalar(*v * std::f32::consts::FRAC_1_SQRT_2));
    }
}

pub fn softmax_scalar(row: &mut [f32]) {
    let inv = 1.0 / softmax_exp_scalar(row);
    for v in row {
        *v *= inv;
    }
}

pub fn softmax_exp_scalar(row: &mut [f32]) -> f32 {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for v in row.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    sum
}

pub fn add_layer_norm_scalar(
    x: &mut [f32],
    residual: &[f32],
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
) {
    let d = gamma.len();
    for (row, res) in x.chunks_exact_mut(d).zip(residual.chunks_exact(d)) {
        for (v, r) in row.iter_mut().zip(res) {
            *v += r;
        }
        let mean = row.iter().sum::<f32>() / d as f32;
        let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / d as f32;
        let inv = 1.0 / (var + eps).sqrt();
        for ((v, g), b) in row.iter_mut().zip(gamma).zip(beta) {
            *v = (*v - mean) * inv * g + b;
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{ERF_ALPHA, ERF_BETA, ERF_CLAMP};

    #[target_feature(enable = "avx2,fma")]
    unsafe fn erf8(x: __m256) -> __m256 {
        let x = _mm256_min_ps(
            _mm256_max_ps(x, _mm256_set1_ps(-ERF_CLAMP)),
            _mm256_set1_ps(ERF_CLAMP),
        );
        let x2 = _mm256_mul_ps(x, x);
        let mut p = _mm256_set1_ps(ERF_ALPHA[0]);
        for &a in &ERF_ALPHA[1..] {
            p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(a));
        }
        let mut q = _mm256_set1_ps(ERF_BETA[0]);
        for &b in &ERF_BETA[1..] {
            q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(b));
        }
        _mm256_div_ps(_mm256_mul_ps(x, p), q)
    }

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn gelu_erf(x: &mut [f32]) {
        let half = _mm256_set1_ps(0.5);
        let one = _mm256_set1_ps(1.0);
        let s = _mm256_set1_ps(std::f32::consts::FRAC_1_SQRT_2);
        let mut chunks = x.chunks_exact_mut(8);
        for c in &mut chunks {
            let v = _mm256_loadu_ps(c.as_ptr());
            let e = erf8(_mm256_mul_ps(v, s));
            let g = _mm256_mul_ps(_mm256_mul_ps(half, v), _mm256_add_ps(one, e));
            _mm256_storeu_ps(c.as_mut_ptr(), g);
        }
        super::gelu_erf_scalar(chunks.into_remainder());
    }

    /// e^x for x <= 0 (Cephes' expf: range reduction by ln 2, a degree-5 polynomial, the
    /// exponent put back by integer addition). Inputs below -87 give about 1e-38, not 0.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn exp8(x: __m256) -> __m256 {
        let x = _mm256_max_ps(x, _mm256_set1_ps(-87.0));
        let n = _mm256_round_ps(
            _mm256_mul_ps(x, _mm256_set1_ps(std::f32::consts::LOG2_E)),
            _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC,
        );
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693_359_4), x);
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.121_944_4e-4), r);
        let mut y = _mm256_set1_ps(1.987_569_1e-4);
        for c in [
            1.398_2e-3,
            8.333_452e-3,
            4.166_579_6e-2,
            1.666_666_5e-1,
            0.5,
        ] {
            y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(c));
        }
        y = _mm256_fmadd_ps(
            y,
            _mm256_mul_ps(r, r),
            _mm256_add_ps(r, _mm256_set1_ps(1.0)),
        );
        let pow2 = _mm256_slli_epi32(
            _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)),
            23,
        );
        _mm256_mul_ps(y, _mm256_castsi256_ps(pow2))
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn hsum(v: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
        _mm_cvtss_f32(s)
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn hmax(v: __m256) -> f32 {
        let s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let s = _mm_max_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_max_ss(s, _mm_shuffle_ps(s, s, 1));
        _mm_cvtss_f32(s)
    }

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn softmax_exp(row: &mut [f32]) -> f32 {
        let n = row.len();
        let whole = n - n % 8;
        let mut vmax = _mm256_set1_ps(f32::NEG_INFINITY);
        for i in (0..whole).step_by(8) {
            vmax = _mm256_max_ps(vmax, _mm256_loadu_ps(row.as_ptr().add(i)));
        }
        let max = row[whole..].iter().copied().fold(hmax(vmax), f32::max);
        let vm = _mm256_set1_ps(max);
        let mut vsum = _mm256_setzero_ps();
        for i in (0..whole).step_by(8) {
            let p = row.as_mut_ptr().add(i);
            let e = exp8(_mm256_sub_ps(_mm256_loadu_ps(p), vm));
            _mm256_storeu_ps(p, e);
            vsum = _mm256_add_ps(vsum, e);
        }
        let mut sum = hsum(vsum);
        for v in &mut row[whole..] {
            *v = (*v - max).exp();
            sum += *v;
        }
        sum
    }

    /// Rows of `gamma.len()`, a multiple of 8.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn add_layer_norm(
        x: &mut [f32],
        residual: &[f32],
        gamma: &[f32],
        beta: &[f32],
        eps: f32,
    ) {
        let d = gamma.len();
        for (row, res) in x.chunks_exact_mut(d).zip(residual.chunks_exact(d)) {
            let (p, r) = (row.as_mut_ptr(), res.as_ptr());
            let mut vsum = _mm256_setzero_ps();
            for i in (0..d).step_by(8) {
                let v = _mm256_add_ps(_mm256_loadu_ps(p.add(i)), _mm256_loadu_ps(r.add(i)));
                _mm256_storeu_ps(p.add(i), v);
                vsum = _mm256_add_ps(vsum, v);
            }
            let vmean = _mm256_set1_ps(hsum(vsum) / d as f32);
            let mut vvar = _mm256_setzero_ps();
            for i in (0..d).step_by(8) {
                let c = _mm256_sub_ps(_mm256_loadu_ps(p.add(i)), vmean);
                vvar = _mm256_fmadd_ps(c, c, vvar);
            }
            let inv = _mm256_set1_ps(1.0 / (hsum(vvar) / d as f32 + eps).sqrt());
            for i in (0..d).step_by(8) {
                let c = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(p.add(i)), vmean), inv);
                let y = _mm256_fmadd_ps(
                    c,
                    _mm256_loadu_ps(gamma.as_ptr().add(i)),
                    _mm256_loadu_ps(beta.as_ptr().add(i)),
                );
                _mm256_storeu_ps(p.add(i), y);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic values in [-scale, scale).
    fn noise(n: usize, seed: u64, scale: f32) -> Vec<f32> {
        let mut s = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
            })
            .collect()
    }

    fn max_diff(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
    }

    #[test]
    fn erf_approximation_is_within_1e6_of_libm() {
        for i in -6000..=6000 {
            let x = i as f32 / 1000.0;
            let want = libm::erf(x as f64) as f32;
            let d = (erf_scalar(x) - want).abs();
            assert!(d < 1e-6, "erf({x}): {} vs {want}", erf_scalar(x));
        }
    }

    #[test]
    fn gelu_matches_the_exact_formula_and_its_scalar_version() {
        // Odd lengths exercise the tail after the last whole vector.
        for (n, scale) in [(1, 3.0), (7, 3.0), (1539, 8.0), (4096, 20.0)] {
            let x = noise(n, n as u64, scale);
            let exact: Vec<f32> = x
                .iter()
                .map(|&v| {
                    let v = v as f64;
                    (0.5 * v * (1.0 + libm::erf(v / std::f64::consts::SQRT_2))) as f32
                })
                .collect();
            let (mut fast, mut scalar) = (x.clone(), x.clone());
            gelu_erf(&mut fast);
            gelu_erf_scalar(&mut scalar);
            assert!(max_diff(&scalar, &exact) < 1e-5, "scalar, n {n}");
            assert!(max_diff(&fast, &scalar) < 1e-6, "fast, n {n}");
        }
    }

    #[test]
    fn softmax_matches_its_scalar_version() {
        for (n, scale) in [(1, 1.0), (5, 4.0), (13, 10.0), (256, 30.0), (250, 90.0)] {
            let x = noise(n, 7 + n as u64, scale);
            let (mut fast, mut scalar) = (x.clone(), x.clone());
            softmax(&mut fast);
            softmax_scalar(&mut scalar);
            let d = fast
                .iter()
                .zip(&scalar)
                .map(|(a, b)| (a - b).abs() / b.max(1e-30))
                .fold(0.0f32, f32::max);
            assert!(d < 1e-5, "n {n}: relative diff {d}");
            assert!((fast.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        }
    }

    #[test]
    fn layer_norm_matches_its_scalar_version() {
        for (rows, d) in [(1, 8), (3, 384), (5, 12)] {
            let x = noise(rows * d, 3, 5.0);
            let res = noise(rows * d, 4, 2.0);
            let gamma = noise(d, 5, 1.5);
            let beta = noise(d, 6, 0.5);
            let (mut fast, mut scalar) = (x.clone(), x.clone());
            add_layer_norm(&mut fast, &res, &gamma, &beta, 1e-12);
            add_layer_norm_scalar(&mut scalar, &res, &gamma, &beta, 1e-12);
            assert!(max_diff(&fast, &scalar) < 1e-5, "rows {rows} d {d}");
            let row = &scalar[..d];
            let mean: f32 = (0..d).map(|i| (row[i] - beta[i]) / gamma[i]).sum::<f32>() / d as f32;
            assert!(mean.abs() < 1e-4, "normalised mean {mean}");
        }
    }
}
