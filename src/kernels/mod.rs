//! CPU kernels shared by the generator (`generate/`) and the embedder (`embed/`): matrix
//! products over quantized weights read as stored (GGUF Q4_K, Q5_K, Q6_K and Q8_0 blocks) with
//! activations quantized to int8 per block ([`quant`]).
//!
//! The build targets x86-64-v3 (AVX2, FMA, F16C), so the AVX2 path is always there; faster
//! instructions (AVX-512 VNNI, AVX-VNNI) are chosen at run time by [`Isa::detect`]. Every SIMD
//! path computes the same integer sums as the scalar reference it is tested against; the model
//! code calls [`quant::matmul`] without knowing which path runs.

pub mod packed;
pub mod quant;

// The embedder's kernels (`embed::bert`), each with the scalar version it is tested against:
// element-wise and row kernels (erf GELU, softmax, layer norm), and 16-bit integer matrix
// products (AVX-512 VNNI) for its linear layers.
pub mod elementwise;
pub mod int16;

use std::sync::OnceLock;

/// An instruction-set path of the kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Isa {
    /// Portable Rust: the reference every other path is tested against.
    Scalar,
    /// AVX2 + FMA + F16C (`vpmaddubsw`/`vpmaddwd`).
    Avx2,
    /// AVX2 with the VEX-encoded VNNI dot products (`vpdpbusd`/`vpdpwssd` on 256 bits).
    AvxVnni,
    /// AVX-512 VNNI with 256-bit vectors (AVX512VL): the VNNI dot products and 32 registers.
    Avx512Vnni,
}

impl Isa {
    /// The fastest path this CPU runs, detected once.
    pub fn detect() -> Isa {
        static DETECTED: OnceLock<Isa> = OnceLock::new();
        *DETECTED.get_or_init(|| {
            let all = Isa::available();
            *all.last().unwrap_or(&Isa::Scalar)
        })
    }

    /// Every path this CPU can run, slowest first (tests run each against the reference).
    pub fn available() -> Vec<Isa> {
        let mut out = vec![Isa::Scalar];
        #[cfg(target_arch = "x86_64")]
        {
            let avx2 = is_x86_feature_detected!("avx2")
                && is_x86_feature_detected!("fma")
                && is_x86_feature_detected!("f16c");
            if avx2 {
                out.push(Isa::Avx2);
                if is_x86_feature_detected!("avxvnni") {
                    out.push(Isa::AvxVnni);
                }
                if is_x86_feature_detected!("avx512f")
                    && is_x86_feature_detected!("avx512bw")
                    && is_x86_feature_detected!("avx512vl")
                    && is_x86_feature_detected!("avx512vnni")
                {
                    out.push(Isa::Avx512Vnni);
                }
            }
        }
        out
    }

    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::AvxVnni => "avx-vnni",
            Isa::Avx512Vnni => "avx512-vnni",
        }
    }
}

/// Runs `f` over `0..n_items` split into ranges across candle's persistent CPU pool (its thread
/// count is the caller's `--threads`).
pub fn par_ranges(n_items: usize, f: impl Fn(std::ops::Range<usize>) + Sync) {
    candle_core::utils::barrier_pool().execute_chunked(n_items, f)
}

/// A raw output pointer shared by workers that write disjoint parts of it.
#[derive(Clone, Copy)]
pub(crate) struct SharedOut(*mut f32, usize);
// SAFETY: every user writes disjoint indices and the pool joins before the buffer is read.
unsafe impl Send for SharedOut {}
unsafe impl Sync for SharedOut {}

impl SharedOut {
    pub(crate) fn new(s: &mut [f32]) -> Self {
        SharedOut(s.as_mut_ptr(), s.len())
    }

    /// # Safety
    /// No other worker may write index `i` concurrently.
    #[inline(always)]
    pub(crate) unsafe fn write(&self, i: usize, v: f32) {
        debug_assert!(i < self.1);
        *self.0.add(i) = v;
    }
}

/// IEEE half to single precision (GGUF block scales).
#[inline(always)]
pub fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = u32::from((h >> 10) & 0x1F);
    let mant = u32::from(h & 0x3FF);
    let bits = match (exp, mant) {
        (0, 0) => sign,
        (0, _) => {
            let shift = mant.leading_zeros() - 21;
            let mant = (mant << shift) & 0x3FF;
            sign | ((127 - 15 + 1 - shift) << 23) | (mant << 13)
        }
        (0x1F, _) => sign | 0x7F80_0000 | (mant << 13),
        _ => sign | ((exp + 127 - 15) << 23) | (mant << 13),
    };
    f32::from_bits(bits)
}

/// Single to half precision, rounding to nearest even.
pub fn f32_to_f16(v: f32) -> u16 {
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
        h += 1;
    }
    sign | h as u16
}
