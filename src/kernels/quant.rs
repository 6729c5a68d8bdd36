//! Matrix products `out[t][r] = Σ_c W[r][c] · x[t][c]` over quantized weights read as stored in
//! a GGUF file (Q4_K, Q5_K, Q6_K, Q8_0; memory-mapped or owned), with the activations `x`
//! quantized per block to int8: blocks of 256 with 16-value sums for the K formats (ggml's Q8_K
//! layout), blocks of 32 for Q8_0. One call serves decoding (one token) and prompt processing
//! (many tokens: register tiles of 4 rows x 4 tokens reuse each unpacked weight vector for four
//! tokens and each activation vector for four rows).
//!
//! Within a K-format super-block the integer sums are accumulated exactly in i32 lanes with the
//! 6-bit (Q4_K/Q5_K) or 8-bit (Q6_K) sub-block scales applied as integers, so there is one float
//! conversion per 256 values; the SIMD paths compute exactly the integer sums of
//! [`dot_scalar`], only the final float sums are ordered differently.

use std::ops::Range;
use std::sync::Arc;

use super::{f16_to_f32, f32_to_f16, packed, par_ranges, Isa, SharedOut};

/// The destination of a parallel repack.
#[derive(Clone, Copy)]
struct SharedBytes(*mut u8);
// SAFETY: workers write disjoint ranges, and the pool joins before the buffer is used.
unsafe impl Send for SharedBytes {}
unsafe impl Sync for SharedBytes {}

impl SharedBytes {
    /// # Safety
    /// No other worker may use `at..at + len` concurrently, and it lies within the buffer.
    #[allow(clippy::mut_from_ref)]
    unsafe fn slice(&self, at: usize, len: usize) -> &mut [u8] {
        std::slice::from_raw_parts_mut(self.0.add(at), len)
    }
}

/// Values per Q8_0 block.
pub const QK8_0: usize = 32;
/// Values per K-format super-block.
pub const QK_K: usize = 256;

/// The weight encodings the kernels read directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QType {
    Q4K,
    Q5K,
    Q6K,
    Q8_0,
}

impl QType {
    /// Values per block.
    pub const fn block_values(self) -> usize {
        match self {
            QType::Q8_0 => QK8_0,
            _ => QK_K,
        }
    }

    /// Bytes per block.
    pub const fn block_bytes(self) -> usize {
        match self {
            QType::Q4K => 144,
            QType::Q5K => 176,
            QType::Q6K => 210,
            QType::Q8_0 => 34,
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            QType::Q4K => "Q4_K",
            QType::Q5K => "Q5_K",
            QType::Q6K => "Q6_K",
            QType::Q8_0 => "Q8_0",
        }
    }

    /// Activation block size this weight type is multiplied with.
    const fn act_block(self) -> usize {
        self.block_values()
    }
}

/// Where a matrix's blocks live.
pub enum WeightBytes {
    Owned(Vec<u8>),
    /// A range of a memory-mapped file (the GGUF), shared by every matrix of the model.
    Mapped {
        map: Arc<memmap2::Mmap>,
        offset: usize,
        len: usize,
    },
}

impl WeightBytes {
    fn as_slice(&self) -> &[u8] {
        match self {
            WeightBytes::Owned(v) => v,
            WeightBytes::Mapped { map, offset, len } => &map[*offset..*offset + *len],
        }
    }
}

/// Why a matrix cannot be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum QuantError {
    #[error("{kind} rows of {cols} values are not whole blocks of {block}")]
    PartialBlock {
        kind: &'static str,
        cols: usize,
        block: usize,
    },
    #[error("{kind} matrix [{rows}, {cols}] needs {expected} bytes, got {got}")]
    Size {
        kind: &'static str,
        rows: usize,
        cols: usize,
        expected: usize,
        got: usize,
    },
}

/// A quantized `[rows, cols]` matrix (output x input), rows stored one after another as GGUF
/// blocks.
pub struct QMatrix {
    kind: QType,
    rows: usize,
    cols: usize,
    bytes: WeightBytes,
    /// Rows interleaved in groups of 8 ([`super::packed`]) rather than the GGUF row layout.
    packed: bool,
}

impl std::fmt::Debug for QMatrix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "QMatrix({} [{}, {}])",
            self.kind.name(),
            self.rows,
            self.cols
        )
    }
}

impl QMatrix {
    pub fn new(
        kind: QType,
        rows: usize,
        cols: usize,
        bytes: WeightBytes,
    ) -> Result<Self, QuantError> {
        let block = kind.block_values();
        if !cols.is_multiple_of(block) || cols == 0 {
            return Err(QuantError::PartialBlock {
                kind: kind.name(),
                cols,
                block,
            });
        }
        let expected = rows * cols / block * kind.block_bytes();
        let got = bytes.as_slice().len();
        if got != expected {
            return Err(QuantError::Size {
                kind: kind.name(),
                rows,
                cols,
                expected,
                got,
            });
        }
        Ok(QMatrix {
            kind,
            rows,
            cols,
            bytes,
            packed: false,
        })
    }

    /// This matrix with its rows interleaved in groups of 8 ([`super::packed`]), in memory of its
    /// own (in parallel over the caller's threads), when its format and row count allow; else
    /// itself. The products give the same integer sums either way.
    pub fn packed(self) -> QMatrix {
        if self.packed || !packed::packable(self.kind, self.rows) {
            return self;
        }
        let nsb = self.cols / QK_K;
        let per_group = nsb * packed::group_bytes(self.kind);
        let groups = self.rows / packed::GROUP;
        let mut out = vec![0u8; groups * per_group];
        let dst = SharedBytes(out.as_mut_ptr());
        let src = &self;
        par_ranges(groups, |range| {
            for g in range {
                // SAFETY: each group writes its own range of `out`.
                let o = unsafe { dst.slice(g * per_group, per_group) };
                packed::pack_group(src.kind, nsb, |r| src.row(g * packed::GROUP + r), o);
            }
        });
        QMatrix {
            kind: self.kind,
            rows: self.rows,
            cols: self.cols,
            bytes: WeightBytes::Owned(out),
            packed: true,
        }
    }

    /// Whether the rows are interleaved in groups of 8.
    pub fn is_packed(&self) -> bool {
        self.packed
    }

    /// Quantizes f32 weights `[rows, cols]` (cols a multiple of 32) to Q8_0.
    pub fn quantize_q8_0(w: &[f32], rows: usize, cols: usize) -> Result<Self, QuantError> {
        assert_eq!(w.len(), rows * cols, "weights length");
        if !cols.is_multiple_of(QK8_0) {
            return Err(QuantError::PartialBlock {
                kind: "Q8_0",
                cols,
                block: QK8_0,
            });
        }
        let mut out = Vec::with_capacity(w.len() / QK8_0 * 34);
        for block in w.chunks_exact(QK8_0) {
            let amax = block.iter().fold(0f32, |m, v| m.max(v.abs()));
            let d = amax / 127.0;
            let id = if d > 0.0 { 1.0 / d } else { 0.0 };
            out.extend_from_slice(&f32_to_f16(d).to_le_bytes());
            out.extend(block.iter().map(|v| (v * id).round() as i8 as u8));
        }
        QMatrix::new(QType::Q8_0, rows, cols, WeightBytes::Owned(out))
    }

    pub fn kind(&self) -> QType {
        self.kind
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The packed super-blocks of group `g` (rows `8g..8g + 8`).
    fn group(&self, g: usize) -> &[u8] {
        let per_group = self.cols / QK_K * packed::group_bytes(self.kind);
        &self.bytes.as_slice()[g * per_group..(g + 1) * per_group]
    }

    /// Bytes of weights (resident or mapped).
    pub fn byte_len(&self) -> usize {
        self.bytes.as_slice().len()
    }

    fn row_bytes(&self) -> usize {
        self.cols / self.kind.block_values() * self.kind.block_bytes()
    }

    fn row(&self, r: usize) -> &[u8] {
        debug_assert!(!self.packed, "rows of a packed matrix are interleaved");
        let rb = self.row_bytes();
        &self.bytes.as_slice()[r * rb..(r + 1) * rb]
    }

    /// Row `r` as f32 (the GGUF definition of each format).
    pub fn dequantize_row(&self, r: usize, out: &mut [f32]) {
        assert_eq!(out.len(), self.cols, "output length");
        if self.packed {
            let (nsb, g) = (self.cols / QK_K, r / packed::GROUP);
            packed::dequantize_row(self.kind, self.group(g), nsb, r % packed::GROUP, out);
            return;
        }
        let (bv, bb) = (self.kind.block_values(), self.kind.block_bytes());
        for (block, y) in self.row(r).chunks_exact(bb).zip(out.chunks_exact_mut(bv)) {
            dequantize_block(self.kind, block, y);
        }
    }
}

pub(super) fn read_f16(b: &[u8], at: usize) -> f32 {
    f16_to_f32(u16::from_le_bytes([b[at], b[at + 1]]))
}

/// The 6-bit scale and min of sub-block `j` (0..8) of a Q4_K/Q5_K super-block.
#[inline(always)]
pub(super) fn scale_min_k4(j: usize, s: &[u8]) -> (u8, u8) {
    if j < 4 {
        (s[j] & 63, s[j + 4] & 63)
    } else {
        (
            (s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4),
            (s[j + 4] >> 4) | ((s[j] >> 6) << 4),
        )
    }
}

/// One block to f32, as ggml defines the format.
pub fn dequantize_block(kind: QType, b: &[u8], y: &mut [f32]) {
    match kind {
        QType::Q8_0 => {
            let d = read_f16(b, 0);
            for (y, &q) in y.iter_mut().zip(&b[2..34]) {
                *y = d * f32::from(q as i8);
            }
        }
        QType::Q4K | QType::Q5K => {
            let (d, dmin) = (read_f16(b, 0), read_f16(b, 2));
            let scales = &b[4..16];
            let (qh, qs) = if kind == QType::Q5K {
                (Some(&b[16..48]), &b[48..176])
            } else {
                (None, &b[16..144])
            };
            for j in 0..8 {
                let (sc, m) = scale_min_k4(j, scales);
                let (dj, mj) = (d * f32::from(sc), dmin * f32::from(m));
                let src = &qs[32 * (j / 2)..32 * (j / 2) + 32];
                for l in 0..32 {
                    let mut q = if j % 2 == 0 {
                        src[l] & 0x0F
                    } else {
                        src[l] >> 4
                    };
                    if let Some(qh) = qh {
                        q |= ((qh[l] >> j) & 1) << 4;
                    }
                    y[32 * j + l] = dj * f32::from(q) - mj;
                }
            }
        }
        QType::Q6K => {
            let d = read_f16(b, 208);
            for h in 0..2 {
                let ql = &b[64 * h..64 * h + 64];
                let qh = &b[128 + 32 * h..128 + 32 * h + 32];
                let sc = &b[192 + 8 * h..192 + 8 * h + 8];
                let y = &mut y[128 * h..128 * h + 128];
                for l in 0..32 {
                    let is = l / 16;
                    let q1 = (ql[l] & 0xF) | ((qh[l] & 3) << 4);
                    let q2 = (ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4);
                    let q3 = (ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4);
                    let q4 = (ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4);
                    let s = |k: usize| d * f32::from(sc[k] as i8);
                    y[l] = s(is) * (f32::from(q1) - 32.0);
                    y[l + 32] = s(is + 2) * (f32::from(q2) - 32.0);
                    y[l + 64] = s(is + 4) * (f32::from(q3) - 32.0);
                    y[l + 96] = s(is + 6) * (f32::from(q4) - 32.0);
                }
            }
        }
    }
}

/// Activations `[n, cols]` quantized to int8 in blocks of 32 or 256.
#[derive(Debug, Default)]
pub struct QActs {
    n: usize,
    cols: usize,
    block: usize,
    qs: Vec<i8>,
    /// One scale per block.
    d: Vec<f32>,
    /// Sums of each 16 quants (blocks of 256 only).
    bsums: Vec<i16>,
    /// Sums of each 32 quants (blocks of 256 only; the packed Q4_K kernel's mins).
    sums32: Vec<i16>,
    /// 32 times the sums of each 16 (blocks of 256 only; the packed Q6_K kernel's offset).
    sums16x32: Vec<i32>,
}

impl QActs {
    /// Quantizes `x` (`n` rows of `cols`) in blocks of `block` (32 or 256), reusing buffers.
    pub fn quantize(&mut self, x: &[f32], n: usize, cols: usize, block: usize) {
        assert!(block == QK8_0 || block == QK_K, "block size {block}");
        assert_eq!(x.len(), n * cols, "activation length");
        assert_eq!(cols % block, 0, "columns are whole blocks");
        self.n = n;
        self.cols = cols;
        self.block = block;
        self.qs.resize(n * cols, 0);
        self.d.resize(n * cols / block, 0.0);
        let sums = if block == QK_K { n * cols / 16 } else { 0 };
        self.bsums.resize(sums, 0);
        let qs = QuantSlices {
            qs: self.qs.as_mut_ptr(),
            d: self.d.as_mut_ptr(),
            bsums: self.bsums.as_mut_ptr(),
        };
        self.sums32.resize(sums / 2, 0);
        self.sums16x32.resize(sums, 0);
        let blocks = n * cols / block;
        let work = |range: Range<usize>| {
            for b in range {
                let src = &x[b * block..(b + 1) * block];
                // SAFETY: block b owns these ranges of the three buffers.
                let (q, d, bsums) = unsafe { qs.block(b, block) };
                *d = quantize_block(src, q);
                if let Some(s) = bsums {
                    for (s, q) in s.iter_mut().zip(q.chunks_exact(16)) {
                        *s = q.iter().map(|&v| i16::from(v)).sum();
                    }
                }
            }
        };
        if blocks >= 256 {
            par_ranges(blocks, work);
        } else {
            work(0..blocks);
        }
        if block == QK_K {
            for (i, pair) in self.bsums.chunks_exact(2).enumerate() {
                self.sums32[i] = pair[0] + pair[1];
                self.sums16x32[2 * i] = 32 * i32::from(pair[0]);
                self.sums16x32[2 * i + 1] = 32 * i32::from(pair[1]);
            }
        }
    }

    /// Token `t`'s activations as the packed kernels read them (blocks of 256).
    fn packed_row(&self, t: usize) -> packed::PackedAct {
        let bpr = self.cols / self.block;
        packed::PackedAct {
            qs: self.qs[t * self.cols..].as_ptr(),
            d: self.d[t * bpr..].as_ptr(),
            sums32: self.sums32[t * bpr * 8..].as_ptr(),
            sums16x32: self.sums16x32[t * bpr * 16..].as_ptr(),
        }
    }

    fn row(&self, t: usize) -> ActRow {
        let bpr = self.cols / self.block;
        ActRow {
            qs: self.qs[t * self.cols..].as_ptr(),
            d: self.d[t * bpr..].as_ptr(),
            bsums: if self.block == QK_K {
                self.bsums[t * self.cols / 16..].as_ptr()
            } else {
                std::ptr::null()
            },
        }
    }
}

#[derive(Clone, Copy)]
struct QuantSlices {
    qs: *mut i8,
    d: *mut f32,
    bsums: *mut i16,
}
// SAFETY: workers write disjoint blocks.
unsafe impl Send for QuantSlices {}
unsafe impl Sync for QuantSlices {}

impl QuantSlices {
    /// Block `b`'s quants, scale and (blocks of 256) 16-value sums.
    ///
    /// # Safety
    /// No other thread may use block `b` at the same time.
    #[allow(clippy::mut_from_ref)]
    unsafe fn block(&self, b: usize, block: usize) -> (&mut [i8], &mut f32, Option<&mut [i16]>) {
        let sums =
            (block == QK_K).then(|| std::slice::from_raw_parts_mut(self.bsums.add(b * 16), 16));
        (
            std::slice::from_raw_parts_mut(self.qs.add(b * block), block),
            &mut *self.d.add(b),
            sums,
        )
    }
}

/// Symmetric int8 quantization of one block; returns its scale.
fn quantize_block(x: &[f32], q: &mut [i8]) -> f32 {
    let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
    let d = amax / 127.0;
    let id = if d > 0.0 { 1.0 / d } else { 0.0 };
    for (q, v) in q.iter_mut().zip(x) {
        *q = (v * id).round() as i8;
    }
    d
}

/// Pointers to one token's quantized activations.
#[derive(Clone, Copy)]
struct ActRow {
    qs: *const i8,
    d: *const f32,
    bsums: *const i16,
}

/// Reusable activation buffers of [`matmul`].
#[derive(Debug, Default)]
pub struct Scratch {
    a32: QActs,
    a256: QActs,
}

/// The reference: one output, the integer sums written out plainly.
///
/// # Safety
/// `a` must point at a whole row of activations quantized for `kind` matching `w`.
unsafe fn dot_scalar(kind: QType, w: &[u8], a: ActRow) -> f32 {
    let bb = kind.block_bytes();
    let mut total = 0f32;
    for (sb, b) in w.chunks_exact(bb).enumerate() {
        let da = *a.d.add(sb);
        let aq =
            std::slice::from_raw_parts(a.qs.add(sb * kind.block_values()), kind.block_values());
        match kind {
            QType::Q8_0 => {
                let dot: i32 = b[2..34]
                    .iter()
                    .zip(aq)
                    .map(|(&w, &a)| i32::from(w as i8) * i32::from(a))
                    .sum();
                total += read_f16(b, 0) * da * dot as f32;
            }
            QType::Q4K | QType::Q5K => {
                let bs = std::slice::from_raw_parts(a.bsums.add(sb * 16), 16);
                let (qh, qs) = if kind == QType::Q5K {
                    (Some(&b[16..48]), &b[48..176])
                } else {
                    (None, &b[16..144])
                };
                let (mut sumi, mut summ) = (0i32, 0i32);
                for j in 0..8 {
                    let (sc, m) = scale_min_k4(j, &b[4..16]);
                    let src = &qs[32 * (j / 2)..32 * (j / 2) + 32];
                    let mut dot = 0i32;
                    for l in 0..32 {
                        let mut q = if j % 2 == 0 {
                            src[l] & 0x0F
                        } else {
                            src[l] >> 4
                        };
                        if let Some(qh) = qh {
                            q |= ((qh[l] >> j) & 1) << 4;
                        }
                        dot += i32::from(q) * i32::from(aq[32 * j + l]);
                    }
                    sumi += i32::from(sc) * dot;
                    summ += i32::from(m) * (i32::from(bs[2 * j]) + i32::from(bs[2 * j + 1]));
                }
                total += read_f16(b, 0) * da * sumi as f32 - read_f16(b, 2) * da * summ as f32;
            }
            QType::Q6K => {
                let bs = std::slice::from_raw_parts(a.bsums.add(sb * 16), 16);
                let mut sumi = 0i32;
                for h in 0..2 {
                    let ql = &b[64 * h..];
                    let qh = &b[128 + 32 * h..];
                    for i in 0..4 {
                        for l in 0..32 {
                            let q = match i {
                                0 => (ql[l] & 0xF) | ((qh[l] & 3) << 4),
                                1 => (ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4),
                                2 => (ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4),
                                _ => (ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4),
                            };
                            let k = 8 * h + 2 * i + l / 16;
                            let sc = i32::from(b[192 + k] as i8);
                            sumi += sc * i32::from(q) * i32::from(aq[128 * h + 32 * i + l]);
                        }
                    }
                }
                let off: i32 = (0..16)
                    .map(|k| i32::from(b[192 + k] as i8) * i32::from(bs[k]))
                    .sum();
                total += read_f16(b, 208) * da * (sumi - 32 * off) as f32;
            }
        }
    }
    total
}

/// Rows per work unit handed to a thread.
const ROWS_PER_UNIT: usize = 16;
/// Rows and tokens of a register tile.
const TILE_R: usize = 4;
const TILE_T: usize = 4;

/// `out[t * stride + offset_i + r] = Σ_c W_i[r][c] · x[t][c]` for every part `(W_i, offset_i)`,
/// all over the same input `x` (`n` rows of the parts' common `cols`), on the fastest path this
/// CPU has. Several parts (q/k/v, gate/up) share one quantization of `x` and one parallel region.
pub fn matmul(
    parts: &[(&QMatrix, usize)],
    x: &[f32],
    n: usize,
    out: &mut [f32],
    stride: usize,
    scratch: &mut Scratch,
) {
    matmul_with(Isa::detect(), parts, x, n, out, stride, scratch)
}

/// [`matmul`] on a given path (tests compare every path with [`Isa::Scalar`]).
pub fn matmul_with(
    isa: Isa,
    parts: &[(&QMatrix, usize)],
    x: &[f32],
    n: usize,
    out: &mut [f32],
    stride: usize,
    scratch: &mut Scratch,
) {
    let Some(cols) = parts.first().map(|(m, _)| m.cols) else {
        return;
    };
    assert_eq!(x.len(), n * cols, "input length");
    assert!(out.len() >= n * stride, "output length");
    for (m, off) in parts {
        assert_eq!(m.cols, cols, "parts share the input width");
        assert!(off + m.rows <= stride, "part fits the output row");
    }
    if parts.iter().any(|(m, _)| m.kind.act_block() == QK8_0) {
        scratch.a32.quantize(x, n, cols, QK8_0);
    }
    if parts.iter().any(|(m, _)| m.kind.act_block() == QK_K) {
        scratch.a256.quantize(x, n, cols, QK_K);
    }
    let mut starts = Vec::with_capacity(parts.len());
    let mut units = 0;
    for (m, _) in parts {
        starts.push(units);
        units += m.rows.div_ceil(ROWS_PER_UNIT);
    }
    let dst = SharedOut::new(out);
    let scratch = &*scratch;
    let run = |range: Range<usize>| {
        for unit in range {
            let p = starts.partition_point(|&s| s <= unit) - 1;
            let (m, off) = parts[p];
            let first = (unit - starts[p]) * ROWS_PER_UNIT;
            let rows = first..(first + ROWS_PER_UNIT).min(m.rows);
            let acts = if m.kind.act_block() == QK8_0 {
                &scratch.a32
            } else {
                &scratch.a256
            };
            // SAFETY: units cover disjoint rows, so disjoint output entries.
            unsafe { run_rows(isa, m, rows, acts, n, dst, stride, off) };
        }
    };
    if units > 1 && (n > 1 || parts.iter().map(|(m, _)| m.rows * m.cols).sum::<usize>() > 1 << 16) {
        par_ranges(units, run);
    } else {
        run(0..units);
    }
}

/// Tokens per pass over a unit's rows: their activations stay in L2 while the rows are read.
fn token_block(cols: usize) -> usize {
    ((192 * 1024) / cols).clamp(TILE_T, 512) / TILE_T * TILE_T
}

/// # Safety
/// `acts` holds `n` rows quantized for `m.kind`, and no other thread writes these rows' outputs.
#[allow(clippy::too_many_arguments)]
unsafe fn run_rows(
    isa: Isa,
    m: &QMatrix,
    rows: Range<usize>,
    acts: &QActs,
    n: usize,
    dst: SharedOut,
    stride: usize,
    off: usize,
) {
    let nb = m.cols / m.kind.block_values();
    if m.packed {
        run_packed(isa, m, rows, acts, n, dst, stride, off);
        return;
    }
    if isa == Isa::Scalar {
        for t in 0..n {
            let a = acts.row(t);
            for r in rows.clone() {
                dst.write(t * stride + off + r, dot_scalar(m.kind, m.row(r), a));
            }
        }
        return;
    }
    let tb = token_block(m.cols);
    let mut metas = Vec::new();
    for t0 in (0..n).step_by(tb) {
        let t1 = (t0 + tb).min(n);
        for r0 in rows.clone().step_by(TILE_R) {
            let w: [*const u8; TILE_R] =
                std::array::from_fn(|i| m.row((r0 + i).min(rows.end - 1)).as_ptr());
            let live_r = (rows.end - r0).min(TILE_R);
            if n == 1 {
                let a = [acts.row(0)];
                let sums = x86::tile::<TILE_R, 1>(isa, m.kind, w, a, nb, &[]);
                for (i, s) in sums.iter().take(live_r).enumerate() {
                    dst.write(off + r0 + i, s[0]);
                }
                continue;
            }
            if m.kind != QType::Q8_0 {
                x86::k_metas::<TILE_R>(m.kind, w, nb, &mut metas);
            }
            for tt in (t0..t1).step_by(TILE_T) {
                let a: [ActRow; TILE_T] = std::array::from_fn(|j| acts.row((tt + j).min(t1 - 1)));
                let live_t = (t1 - tt).min(TILE_T);
                let sums = x86::tile::<TILE_R, TILE_T>(isa, m.kind, w, a, nb, &metas);
                for (i, s) in sums.iter().take(live_r).enumerate() {
                    for (j, v) in s.iter().take(live_t).enumerate() {
                        dst.write((tt + j) * stride + off + r0 + i, *v);
                    }
                }
            }
        }
    }
}

/// [`run_rows`] for a packed matrix: `rows` are whole groups of 8.
///
/// # Safety
/// As [`run_rows`].
#[allow(clippy::too_many_arguments)]
unsafe fn run_packed(
    isa: Isa,
    m: &QMatrix,
    rows: Range<usize>,
    acts: &QActs,
    n: usize,
    dst: SharedOut,
    stride: usize,
    off: usize,
) {
    const G: usize = packed::GROUP;
    let nsb = m.cols / QK_K;
    let groups = rows.start / G..rows.end.div_ceil(G);
    if isa == Isa::Scalar {
        let bpr = m.cols / QK_K;
        for t in 0..n {
            let qs = &acts.qs[t * m.cols..(t + 1) * m.cols];
            let d = &acts.d[t * bpr..(t + 1) * bpr];
            for g in groups.clone() {
                for r in 0..G {
                    let v = packed::dot_scalar(m.kind, m.group(g), nsb, r, qs, d);
                    dst.write(t * stride + off + g * G + r, v);
                }
            }
        }
        return;
    }
    let write = |t: usize, g: usize, v: &[f32; G]| {
        for (r, v) in v.iter().enumerate() {
            dst.write(t * stride + off + g * G + r, *v);
        }
    };
    if n == 1 {
        let a = [acts.packed_row(0)];
        for g in groups {
            let [v] = packed::x86::group::<1>(isa, m.kind, m.group(g).as_ptr(), nsb, a);
            write(0, g, &v);
        }
        return;
    }
    const T: usize = 4;
    let tb = token_block(m.cols);
    for t0 in (0..n).step_by(tb) {
        let t1 = (t0 + tb).min(n);
        let mut groups = groups.clone();
        if isa == Isa::Avx512Vnni {
            while groups.len() >= 2 {
                let g = groups.start;
                let (w0, w1) = (m.group(g).as_ptr(), m.group(g + 1).as_ptr());
                for tt in (t0..t1).step_by(T) {
                    let a: [packed::PackedAct; T] =
                        std::array::from_fn(|j| acts.packed_row((tt + j).min(t1 - 1)));
                    let sums = packed::x86::group_pair::<T>(m.kind, w0, w1, nsb, a);
                    for (j, v) in sums.iter().enumerate().take((t1 - tt).min(T)) {
                        for (r, v) in v.iter().enumerate() {
                            dst.write((tt + j) * stride + off + g * G + r, *v);
                        }
                    }
                }
                groups.start += 2;
            }
        }
        for g in groups {
            let w = m.group(g).as_ptr();
            for tt in (t0..t1).step_by(T) {
                let a: [packed::PackedAct; T] =
                    std::array::from_fn(|j| acts.packed_row((tt + j).min(t1 - 1)));
                let sums = packed::x86::group::<T>(isa, m.kind, w, nsb, a);
                for (j, v) in sums.iter().enumerate().take((t1 - tt).min(T)) {
                    write(tt + j, g, v);
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{ActRow, QType};
    use crate::kernels::Isa;
    use std::arch::x86_64::*;

    /// The integer dot products, per instruction set.
    trait Ops {
        /// `acc + Σ (w·a)·s` over pairs of bytes, per i32 lane (`w` unsigned, `a` signed, `s`
        /// one i16 per pair).
        unsafe fn dot_scaled(acc: __m256i, w: __m256i, a: __m256i, s: __m256i) -> __m256i;
        /// `acc + Σ u·s` over quads of bytes, per i32 lane (`u` unsigned at most 128, `s` signed).
        unsafe fn dot_quads(acc: __m256i, u: __m256i, s: __m256i) -> __m256i;
    }

    struct Avx2;
    impl Ops for Avx2 {
        #[inline(always)]
        unsafe fn dot_scaled(acc: __m256i, w: __m256i, a: __m256i, s: __m256i) -> __m256i {
            _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(w, a), s))
        }
        #[inline(always)]
        unsafe fn dot_quads(acc: __m256i, u: __m256i, s: __m256i) -> __m256i {
            let pairs = _mm256_maddubs_epi16(u, s);
            _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)))
        }
    }

    struct Vnni512;
    impl Ops for Vnni512 {
        #[inline(always)]
        unsafe fn dot_scaled(acc: __m256i, w: __m256i, a: __m256i, s: __m256i) -> __m256i {
            _mm256_dpwssd_epi32(acc, _mm256_maddubs_epi16(w, a), s)
        }
        #[inline(always)]
        unsafe fn dot_quads(acc: __m256i, u: __m256i, s: __m256i) -> __m256i {
            _mm256_dpbusd_epi32(acc, u, s)
        }
    }

    struct AvxVnni;
    impl Ops for AvxVnni {
        #[inline(always)]
        unsafe fn dot_scaled(acc: __m256i, w: __m256i, a: __m256i, s: __m256i) -> __m256i {
            _mm256_dpwssd_avx_epi32(acc, _mm256_maddubs_epi16(w, a), s)
        }
        #[inline(always)]
        unsafe fn dot_quads(acc: __m256i, u: __m256i, s: __m256i) -> __m256i {
            _mm256_dpbusd_avx_epi32(acc, u, s)
        }
    }

    #[inline(always)]
    unsafe fn hsum_ps(v: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_movehdup_ps(s));
        _mm_cvtss_f32(s)
    }

    #[inline(always)]
    unsafe fn load(p: *const u8) -> __m256i {
        _mm256_loadu_si256(p as *const __m256i)
    }

    /// Two consecutive halves at `p` as f32 (F16C).
    #[inline(always)]
    unsafe fn f16x2(p: *const u8) -> (f32, f32) {
        let v = _mm_cvtph_ps(_mm_cvtsi32_si128((p as *const i32).read_unaligned()));
        (_mm_cvtss_f32(v), _mm_cvtss_f32(_mm_movehdup_ps(v)))
    }

    #[inline(always)]
    unsafe fn f16x1(p: *const u8) -> f32 {
        let h = (p as *const u16).read_unaligned();
        _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(i32::from(h))))
    }

    /// A K-format super-block's scales, ready for the dot products: one i16 vector per 32-value
    /// vector (Q6_K: its two 16-value halves' scales), the 16 factors of the offset sum against
    /// the activations' 16-value sums, and the float factors of both sums.
    #[derive(Clone, Copy)]
    pub(super) struct KMeta {
        sc: [__m256i; 8],
        off: __m256i,
        d: f32,
        doff: f32,
    }

    const ZERO: __m256i = unsafe { std::mem::transmute::<[u8; 32], __m256i>([0; 32]) };
    const EMPTY_META: KMeta = KMeta {
        sc: [ZERO; 8],
        off: ZERO,
        d: 0.0,
        doff: 0.0,
    };

    /// The 8 scales and 8 mins of a Q4_K/Q5_K super-block from its 12 packed bytes (ggml's
    /// layout), as two u64 of bytes.
    #[inline(always)]
    pub(super) fn unpack_scales_k4(s: &[u8]) -> (u64, u64) {
        const K1: u32 = 0x3f3f_3f3f;
        const K2: u32 = 0x0f0f_0f0f;
        const K3: u32 = 0x0303_0303;
        let w = |i: usize| u32::from_le_bytes([s[4 * i], s[4 * i + 1], s[4 * i + 2], s[4 * i + 3]]);
        let (u0, u1, u2) = (w(0), w(1), w(2));
        let m_hi = ((u2 >> 4) & K2) | (((u1 >> 6) & K3) << 4);
        let m_lo = u1 & K1;
        let s_hi = (u2 & K2) | (((u0 >> 6) & K3) << 4);
        let s_lo = u0 & K1;
        (
            u64::from(s_lo) | u64::from(s_hi) << 32,
            u64::from(m_lo) | u64::from(m_hi) << 32,
        )
    }

    #[inline(always)]
    unsafe fn k_meta(kind: QType, b: *const u8) -> KMeta {
        let mut sc = [_mm256_setzero_si256(); 8];
        if kind == QType::Q6K {
            let d = f16x1(b.add(208));
            let s = _mm_loadu_si128(b.add(192) as *const __m128i);
            for (v, out) in sc.iter_mut().enumerate() {
                let lo = (8 * (v / 4) + 2 * (v % 4)) as u64;
                let spread = 0x0101_0101_0101_0101u64;
                let mask = _mm_set_epi64x(((lo + 1) * spread) as i64, (lo * spread) as i64);
                *out = _mm256_cvtepi8_epi16(_mm_shuffle_epi8(s, mask));
            }
            return KMeta {
                sc,
                off: _mm256_cvtepi8_epi16(s),
                d,
                doff: 32.0 * d,
            };
        }
        let (d, dmin) = f16x2(b);
        let (scales, mins) = unpack_scales_k4(std::slice::from_raw_parts(b.add(4), 12));
        let s8 = _mm_cvtepu8_epi16(_mm_cvtsi64_si128(scales as i64));
        let s2 = _mm256_broadcastsi128_si256(s8);
        for (j, out) in sc.iter_mut().enumerate() {
            let pick = (((2 * j + 1) << 8) | (2 * j)) as i16;
            *out = _mm256_shuffle_epi8(s2, _mm256_set1_epi16(pick));
        }
        let m8 = _mm_cvtepu8_epi16(_mm_cvtsi64_si128(mins as i64));
        let m2 = _mm256_broadcastsi128_si256(m8);
        let dup = _mm256_setr_epi8(
            0, 1, 0, 1, 2, 3, 2, 3, 4, 5, 4, 5, 6, 7, 6, 7, 8, 9, 8, 9, 10, 11, 10, 11, 12, 13, 12,
            13, 14, 15, 14, 15,
        );
        KMeta {
            sc,
            off: _mm256_shuffle_epi8(m2, dup),
            d,
            doff: dmin,
        }
    }

    /// A K-format super-block's 32-value vector `v` (0..8) of the block at `b`, as unsigned
    /// bytes in element order.
    #[inline(always)]
    unsafe fn k_vector<const K: u8>(b: *const u8, v: usize) -> __m256i {
        let m4 = _mm256_set1_epi8(0x0F);
        match kind_of(K) {
            QType::Q4K => {
                let q = load(b.add(16 + 32 * (v / 2)));
                if v.is_multiple_of(2) {
                    _mm256_and_si256(q, m4)
                } else {
                    _mm256_and_si256(_mm256_srli_epi16(q, 4), m4)
                }
            }
            QType::Q5K => {
                let q = load(b.add(48 + 32 * (v / 2)));
                let low = if v.is_multiple_of(2) {
                    _mm256_and_si256(q, m4)
                } else {
                    _mm256_and_si256(_mm256_srli_epi16(q, 4), m4)
                };
                // Bit v of each qh byte, moved to bit 4 (16-bit shifts: the mask drops what
                // crosses from the neighbouring byte).
                let qh = load(b.add(16));
                let moved = match v {
                    0..=3 => _mm256_sll_epi16(qh, _mm_cvtsi32_si128(4 - v as i32)),
                    4 => qh,
                    _ => _mm256_srl_epi16(qh, _mm_cvtsi32_si128(v as i32 - 4)),
                };
                _mm256_or_si256(low, _mm256_and_si256(moved, _mm256_set1_epi8(0x10)))
            }
            QType::Q6K => {
                let (h, i) = (v / 4, v % 4);
                let ql = load(b.add(64 * h + 32 * (i % 2)));
                let low = if i < 2 {
                    _mm256_and_si256(ql, m4)
                } else {
                    _mm256_and_si256(_mm256_srli_epi16(ql, 4), m4)
                };
                // Bits 2i and 2i + 1 of each qh byte, moved to bits 4 and 5.
                let qh = load(b.add(128 + 32 * h));
                let moved = match i {
                    0 => _mm256_slli_epi16(qh, 4),
                    1 => _mm256_slli_epi16(qh, 2),
                    2 => qh,
                    _ => _mm256_srli_epi16(qh, 2),
                };
                _mm256_or_si256(low, _mm256_and_si256(moved, _mm256_set1_epi8(0x30)))
            }
            QType::Q8_0 => unreachable!("not a K format"),
        }
    }

    /// Scales of `R` rows' super-blocks, `[r][sb]`, computed once for a row tile and used by
    /// every token tile.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn k_metas<const R: usize>(
        kind: QType,
        w: [*const u8; R],
        nsb: usize,
        out: &mut Vec<KMeta>,
    ) {
        out.clear();
        for row in w {
            for sb in 0..nsb {
                out.push(k_meta(kind, row.add(sb * kind.block_bytes())));
            }
        }
    }

    /// The format a const generic stands for (const generics over enums are not stable).
    #[inline(always)]
    const fn kind_of(k: u8) -> QType {
        match k {
            0 => QType::Q4K,
            1 => QType::Q5K,
            2 => QType::Q6K,
            _ => QType::Q8_0,
        }
    }

    /// Row tiles ahead that [`prefetch_next_tile`] asks for.
    const PREFETCH_TILES: usize = 4;

    /// Asks for the bytes `at..at + len` of each row of a row tile ahead (the rows right after
    /// these: a matrix's rows are contiguous). Decoding streams the whole model from memory once
    /// per token, and the hardware prefetcher stops at every 4 KB page of the mapped file; a
    /// prefetch does not fault, so one past the matrix's end is harmless.
    #[inline(always)]
    unsafe fn prefetch_next_tile<const R: usize>(
        w: [*const u8; R],
        at: usize,
        len: usize,
        row_bytes: usize,
    ) {
        for row in w {
            let p = row.wrapping_add(PREFETCH_TILES * R * row_bytes + at);
            let mut off = 0;
            while off < len {
                _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(off) as *const i8);
                off += 64;
            }
        }
    }

    /// A K-format tile: `R` rows by `T` tokens over `nsb` super-blocks of format `K`. With
    /// `PRE`, `metas` holds the rows' scales (`[r][sb]`); without, they are computed here.
    #[inline(always)]
    unsafe fn tile_k<O: Ops, const K: u8, const PRE: bool, const R: usize, const T: usize>(
        w: [*const u8; R],
        a: [ActRow; T],
        nsb: usize,
        metas: &[KMeta],
    ) -> [[f32; T]; R] {
        let kind = kind_of(K);
        let bb = kind.block_bytes();
        let mut facc = [[_mm256_setzero_ps(); T]; R];
        let mut local = [EMPTY_META; R];
        for sb in 0..nsb {
            prefetch_next_tile::<R>(w, sb * bb, bb, nsb * bb);
            // Plain loops: closures here would not inherit the caller's target features.
            let mut meta: [*const KMeta; R] = [std::ptr::null(); R];
            for r in 0..R {
                if PRE {
                    meta[r] = metas.as_ptr().add(r * nsb + sb);
                } else {
                    local[r] = k_meta(kind, w[r].add(sb * bb));
                    meta[r] = &local[r];
                }
            }
            let mut acc = [[_mm256_setzero_si256(); T]; R];
            for v in 0..8 {
                let mut wv = [_mm256_setzero_si256(); R];
                for r in 0..R {
                    wv[r] = k_vector::<K>(w[r].add(sb * bb), v);
                }
                for t in 0..T {
                    let av = load(a[t].qs.add(sb * 256 + 32 * v) as *const u8);
                    for r in 0..R {
                        acc[r][t] = O::dot_scaled(acc[r][t], wv[r], av, (*meta[r]).sc[v]);
                    }
                }
            }
            if T == 4 {
                // Four tokens' sums reduced together: two levels of horizontal adds leave, in
                // each 128-bit half, one lane per token, so one conversion and one multiply-add
                // serve four tokens (the halves are added at the end).
                let (a0, a1, a2, a3) = (a[0], a[1], a[T.min(2)], a[T.min(3)]);
                let da4 = _mm_setr_ps(*a0.d.add(sb), *a1.d.add(sb), *a2.d.add(sb), *a3.d.add(sb));
                let da = _mm256_set_m128(da4, da4);
                let bs: [__m256i; 4] = [
                    _mm256_loadu_si256(a0.bsums.add(sb * 16) as *const __m256i),
                    _mm256_loadu_si256(a1.bsums.add(sb * 16) as *const __m256i),
                    _mm256_loadu_si256(a2.bsums.add(sb * 16) as *const __m256i),
                    _mm256_loadu_si256(a3.bsums.add(sb * 16) as *const __m256i),
                ];
                for r in 0..R {
                    let meta = &*meta[r];
                    let sums = _mm256_hadd_epi32(
                        _mm256_hadd_epi32(acc[r][0], acc[r][1 % T]),
                        _mm256_hadd_epi32(acc[r][2 % T], acc[r][3 % T]),
                    );
                    let offs = _mm256_hadd_epi32(
                        _mm256_hadd_epi32(
                            _mm256_madd_epi16(meta.off, bs[0]),
                            _mm256_madd_epi16(meta.off, bs[1]),
                        ),
                        _mm256_hadd_epi32(
                            _mm256_madd_epi16(meta.off, bs[2]),
                            _mm256_madd_epi16(meta.off, bs[3]),
                        ),
                    );
                    let f = &mut facc[r][0];
                    if K == 2 {
                        let exact = _mm256_sub_epi32(sums, _mm256_slli_epi32(offs, 5));
                        let scale = _mm256_mul_ps(_mm256_set1_ps(meta.d), da);
                        *f = _mm256_fmadd_ps(_mm256_cvtepi32_ps(exact), scale, *f);
                    } else {
                        let scale = _mm256_mul_ps(_mm256_set1_ps(meta.d), da);
                        let min = _mm256_mul_ps(_mm256_set1_ps(meta.doff), da);
                        *f = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums), scale, *f);
                        *f = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(offs), min, *f);
                    }
                }
                continue;
            }
            for t in 0..T {
                let da = _mm256_set1_ps(*a[t].d.add(sb));
                let bs = _mm256_loadu_si256(a[t].bsums.add(sb * 16) as *const __m256i);
                for r in 0..R {
                    let meta = &*meta[r];
                    let off_i = _mm256_madd_epi16(meta.off, bs);
                    if K == 2 {
                        // (q - 32)·a summed exactly: the two sums nearly cancel.
                        let exact = _mm256_sub_epi32(acc[r][t], _mm256_slli_epi32(off_i, 5));
                        let sum = _mm256_mul_ps(_mm256_cvtepi32_ps(exact), _mm256_set1_ps(meta.d));
                        facc[r][t] = _mm256_fmadd_ps(sum, da, facc[r][t]);
                        continue;
                    }
                    let off = _mm256_cvtepi32_ps(off_i);
                    let sum = _mm256_fmsub_ps(
                        _mm256_cvtepi32_ps(acc[r][t]),
                        _mm256_set1_ps(meta.d),
                        _mm256_mul_ps(off, _mm256_set1_ps(meta.doff)),
                    );
                    facc[r][t] = _mm256_fmadd_ps(sum, da, facc[r][t]);
                }
            }
        }
        lanes_out(facc)
    }

    /// A Q8_0 tile over `nb` blocks of 32.
    #[inline(always)]
    unsafe fn tile_q8_0<O: Ops, const R: usize, const T: usize>(
        w: [*const u8; R],
        a: [ActRow; T],
        nb: usize,
    ) -> [[f32; T]; R] {
        let mut facc = [[_mm256_setzero_ps(); T]; R];
        for b in 0..nb {
            if b % 2 == 0 {
                prefetch_next_tile::<R>(w, b * 34, 68, nb * 34);
            }
            let mut dw = [_mm256_setzero_ps(); R];
            let mut wabs = [_mm256_setzero_si256(); R];
            let mut wsgn = [_mm256_setzero_si256(); R];
            for r in 0..R {
                let p = w[r].add(b * 34);
                dw[r] = _mm256_set1_ps(f16x1(p));
                wsgn[r] = load(p.add(2));
                wabs[r] = _mm256_sign_epi8(wsgn[r], wsgn[r]);
            }
            if T == 4 {
                // As in `tile_k`: one lane per token after two levels of horizontal adds.
                let mut av = [_mm256_setzero_si256(); 4];
                for (t, v) in av.iter_mut().enumerate() {
                    *v = load(a[t % T].qs.add(b * 32) as *const u8);
                }
                let da4 = _mm_setr_ps(
                    *a[0].d.add(b),
                    *a[1 % T].d.add(b),
                    *a[2 % T].d.add(b),
                    *a[3 % T].d.add(b),
                );
                let da = _mm256_set_m128(da4, da4);
                for r in 0..R {
                    let mut dots = [_mm256_setzero_si256(); 4];
                    for t in 0..4 {
                        let signed = _mm256_sign_epi8(av[t], wsgn[r]);
                        dots[t] = O::dot_quads(_mm256_setzero_si256(), wabs[r], signed);
                    }
                    let sums = _mm256_hadd_epi32(
                        _mm256_hadd_epi32(dots[0], dots[1]),
                        _mm256_hadd_epi32(dots[2], dots[3]),
                    );
                    let f = &mut facc[r][0];
                    *f = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums), _mm256_mul_ps(dw[r], da), *f);
                }
                continue;
            }
            for t in 0..T {
                let av = load(a[t].qs.add(b * 32) as *const u8);
                let da = _mm256_set1_ps(*a[t].d.add(b));
                for r in 0..R {
                    let signed = _mm256_sign_epi8(av, wsgn[r]);
                    let dot = O::dot_quads(_mm256_setzero_si256(), wabs[r], signed);
                    facc[r][t] = _mm256_fmadd_ps(
                        _mm256_cvtepi32_ps(dot),
                        _mm256_mul_ps(dw[r], da),
                        facc[r][t],
                    );
                }
            }
        }
        lanes_out(facc)
    }

    /// Each row's sums: with four tokens, one lane per token in each 128-bit half of the first
    /// accumulator; otherwise one accumulator per token.
    #[inline(always)]
    unsafe fn lanes_out<const R: usize, const T: usize>(facc: [[__m256; T]; R]) -> [[f32; T]; R] {
        let mut out = [[0f32; T]; R];
        for r in 0..R {
            if T == 4 {
                let f = facc[r][0];
                let both = _mm_add_ps(_mm256_castps256_ps128(f), _mm256_extractf128_ps(f, 1));
                let mut lanes = [0f32; 4];
                _mm_storeu_ps(lanes.as_mut_ptr(), both);
                out[r].copy_from_slice(&lanes[..T]);
                continue;
            }
            for t in 0..T {
                out[r][t] = hsum_ps(facc[r][t]);
            }
        }
        out
    }

    #[inline(always)]
    unsafe fn tile_any<O: Ops, const R: usize, const T: usize>(
        kind: QType,
        w: [*const u8; R],
        a: [ActRow; T],
        nb: usize,
        metas: &[KMeta],
    ) -> [[f32; T]; R] {
        // Tiles of several tokens come with their rows' scales computed once.
        match (kind, T > 1) {
            (QType::Q8_0, _) => tile_q8_0::<O, R, T>(w, a, nb),
            (QType::Q4K, true) => tile_k::<O, 0, true, R, T>(w, a, nb, metas),
            (QType::Q4K, false) => tile_k::<O, 0, false, R, T>(w, a, nb, metas),
            (QType::Q5K, true) => tile_k::<O, 1, true, R, T>(w, a, nb, metas),
            (QType::Q5K, false) => tile_k::<O, 1, false, R, T>(w, a, nb, metas),
            (QType::Q6K, true) => tile_k::<O, 2, true, R, T>(w, a, nb, metas),
            (QType::Q6K, false) => tile_k::<O, 2, false, R, T>(w, a, nb, metas),
        }
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn tile_avx2<const R: usize, const T: usize>(
        kind: QType,
        w: [*const u8; R],
        a: [ActRow; T],
        nb: usize,
        metas: &[KMeta],
    ) -> [[f32; T]; R] {
        tile_any::<Avx2, R, T>(kind, w, a, nb, metas)
    }

    #[target_feature(enable = "avx2,fma,f16c,avxvnni")]
    unsafe fn tile_avxvnni<const R: usize, const T: usize>(
        kind: QType,
        w: [*const u8; R],
        a: [ActRow; T],
        nb: usize,
        metas: &[KMeta],
    ) -> [[f32; T]; R] {
        tile_any::<AvxVnni, R, T>(kind, w, a, nb, metas)
    }

    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
    unsafe fn tile_vnni512<const R: usize, const T: usize>(
        kind: QType,
        w: [*const u8; R],
        a: [ActRow; T],
        nb: usize,
        metas: &[KMeta],
    ) -> [[f32; T]; R] {
        tile_any::<Vnni512, R, T>(kind, w, a, nb, metas)
    }

    /// One tile on the chosen path.
    ///
    /// # Safety
    /// `isa` must be available on this CPU (see [`Isa::available`]); `w` rows hold `nb` blocks of
    /// `kind`, `a` rows the matching quantized activations, `metas` is empty or `k_metas` of `w`.
    #[inline(always)]
    pub(super) unsafe fn tile<const R: usize, const T: usize>(
        isa: Isa,
        kind: QType,
        w: [*const u8; R],
        a: [ActRow; T],
        nb: usize,
        metas: &[KMeta],
    ) -> [[f32; T]; R] {
        match isa {
            Isa::Avx512Vnni => tile_vnni512::<R, T>(kind, w, a, nb, metas),
            Isa::AvxVnni => tile_avxvnni::<R, T>(kind, w, a, nb, metas),
            Isa::Avx2 | Isa::Scalar => tile_avx2::<R, T>(kind, w, a, nb, metas),
        }
    }

    #[cfg(test)]
    mod tests {
        use super::super::scale_min_k4;
        use super::unpack_scales_k4;

        #[test]
        fn unpacked_scales_match_the_definition() {
            let mut state = 0x9E37_79B9_7F4A_7C15u64;
            for _ in 0..2000 {
                let s: Vec<u8> = (0..12)
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        (state >> 32) as u8
                    })
                    .collect();
                let (sc, m) = unpack_scales_k4(&s);
                for j in 0..8 {
                    let (want_s, want_m) = scale_min_k4(j, &s);
                    assert_eq!((sc >> (8 * j)) as u8, want_s, "scale {j} of {s:?}");
                    assert_eq!((m >> (8 * j)) as u8, want_m, "min {j} of {s:?}");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::quantized::{GgmlDType, QStorage, QTensor};
    use candle_core::Device;

    /// A deterministic generator (xorshift), so failures reproduce.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn byte(&mut self) -> u8 {
            (self.next() >> 24) as u8
        }
        fn unit(&mut self) -> f32 {
            (self.next() >> 40) as f32 / (1u64 << 24) as f32
        }
    }

    /// Random but valid blocks: quants uniformly random, scales small positive halves.
    fn random_matrix(kind: QType, rows: usize, cols: usize, seed: u64) -> QMatrix {
        let mut rng = Rng(seed | 1);
        let blocks = rows * cols / kind.block_values();
        let mut bytes = Vec::with_capacity(blocks * kind.block_bytes());
        for _ in 0..blocks {
            let mut b: Vec<u8> = (0..kind.block_bytes()).map(|_| rng.byte()).collect();
            let mut half = |at: usize, rng: &mut Rng| {
                let v = f32_to_f16(0.001 + 0.01 * rng.unit()).to_le_bytes();
                b[at..at + 2].copy_from_slice(&v);
            };
            match kind {
                QType::Q8_0 => half(0, &mut rng),
                QType::Q4K | QType::Q5K => {
                    half(0, &mut rng);
                    half(2, &mut rng);
                }
                QType::Q6K => half(208, &mut rng),
            }
            bytes.extend_from_slice(&b);
        }
        QMatrix::new(kind, rows, cols, WeightBytes::Owned(bytes)).expect("valid matrix")
    }

    fn random_acts(n: usize, cols: usize, seed: u64) -> Vec<f32> {
        let mut rng = Rng(seed | 1);
        (0..n * cols).map(|_| 4.0 * rng.unit() - 2.0).collect()
    }

    fn ggml(kind: QType) -> GgmlDType {
        match kind {
            QType::Q4K => GgmlDType::Q4K,
            QType::Q5K => GgmlDType::Q5K,
            QType::Q6K => GgmlDType::Q6K,
            QType::Q8_0 => GgmlDType::Q8_0,
        }
    }

    const KINDS: [QType; 4] = [QType::Q4K, QType::Q5K, QType::Q6K, QType::Q8_0];

    #[test]
    fn dequantize_matches_candle() {
        for kind in KINDS {
            let (rows, cols) = (3, 512);
            let m = random_matrix(kind, rows, cols, 7);
            let storage = QStorage::from_data(
                std::borrow::Cow::Borrowed(m.bytes.as_slice()),
                &Device::Cpu,
                ggml(kind),
            )
            .expect("storage");
            let t = QTensor::new(storage, (rows, cols)).expect("tensor");
            let reference: Vec<f32> = t
                .dequantize(&Device::Cpu)
                .and_then(|t| t.flatten_all()?.to_vec1())
                .expect("dequantize");
            let mut mine = vec![0f32; cols];
            for r in 0..rows {
                m.dequantize_row(r, &mut mine);
                for (c, (a, b)) in mine.iter().zip(&reference[r * cols..]).enumerate() {
                    assert!(
                        (a - b).abs() <= 1e-6 * b.abs().max(1.0),
                        "{kind:?} [{r},{c}]: {a} vs {b}"
                    );
                }
            }
        }
    }

    /// The integer reference agrees with f32 arithmetic on the dequantized operands.
    #[test]
    fn scalar_reference_matches_float_dot() {
        for kind in KINDS {
            let (rows, cols, n) = (5, 1536, 3);
            let m = random_matrix(kind, rows, cols, 11);
            let x = random_acts(n, cols, 5);
            let mut acts = QActs::default();
            acts.quantize(&x, n, cols, kind.act_block());
            let mut w = vec![0f32; cols];
            for r in 0..rows {
                m.dequantize_row(r, &mut w);
                for t in 0..n {
                    let bpr = cols / acts.block;
                    let a: Vec<f32> = (0..cols)
                        .map(|c| acts.qs[t * cols + c] as f32 * acts.d[t * bpr + c / acts.block])
                        .collect();
                    let want: f64 = w.iter().zip(&a).map(|(x, y)| f64::from(x * y)).sum();
                    // SAFETY: acts were quantized for this kind and width.
                    let got = unsafe { dot_scalar(kind, m.row(r), acts.row(t)) };
                    let tol = 1e-4 * w.iter().map(|v| v.abs()).sum::<f32>().max(1.0);
                    assert!(
                        (f64::from(got) - want).abs() < f64::from(tol),
                        "{kind:?}: {got} vs {want}"
                    );
                }
            }
        }
    }

    /// Every SIMD path gives the reference's sums, on odd shapes and token counts.
    #[test]
    fn every_path_matches_scalar() {
        let paths = Isa::available();
        assert!(paths.contains(&Isa::Scalar));
        for kind in KINDS {
            let widths: &[usize] = if kind == QType::Q8_0 {
                &[896, 1536, 384]
            } else {
                &[1536, 256, 8960]
            };
            for &cols in widths {
                for (rows, n) in [(13, 1), (7, 5), (33, 9), (4, 4)] {
                    let m = random_matrix(kind, rows, cols, (rows * cols + n) as u64);
                    let x = random_acts(n, cols, 3 + n as u64);
                    let mut s = Scratch::default();
                    let mut want = vec![0f32; n * rows];
                    matmul_with(Isa::Scalar, &[(&m, 0)], &x, n, &mut want, rows, &mut s);
                    // Outputs are sums of large terms that can nearly cancel: the tolerance
                    // scales with their typical size, far below what a wrong quant would move.
                    let typical = want.iter().map(|v| v.abs()).sum::<f32>() / want.len() as f32;
                    for &isa in paths.iter().filter(|&&p| p != Isa::Scalar) {
                        let mut got = vec![0f32; n * rows];
                        matmul_with(isa, &[(&m, 0)], &x, n, &mut got, rows, &mut s);
                        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                            assert!(
                                (g - w).abs() <= 1e-5 * w.abs().max(typical).max(1.0),
                                "{isa:?} {kind:?} cols {cols} rows {rows} n {n} at {i}: {g} vs {w}"
                            );
                        }
                    }
                }
            }
        }
    }

    /// Packed Q4_K and Q6_K matrices (rows interleaved by 8) give the row layout's products on
    /// every path, scalar included, and the same values when dequantized.
    #[test]
    fn packed_matches_row_layout() {
        for kind in [QType::Q4K, QType::Q6K] {
            for cols in [1536, 256, 8960] {
                for (rows, n) in [(8, 1), (24, 3), (40, 5), (16, 9), (8, 4)] {
                    let seed = (rows * cols + n) as u64;
                    let m = random_matrix(kind, rows, cols, seed);
                    let p = random_matrix(kind, rows, cols, seed).packed();
                    assert!(p.is_packed());
                    let mut a = vec![0f32; cols];
                    let mut b = vec![0f32; cols];
                    for r in [0, rows / 2 + 1, rows - 1] {
                        m.dequantize_row(r, &mut a);
                        p.dequantize_row(r, &mut b);
                        assert_eq!(a, b, "{kind:?} cols {cols} row {r}");
                    }
                    let x = random_acts(n, cols, 7 + n as u64);
                    let mut s = Scratch::default();
                    let mut want = vec![0f32; n * rows];
                    matmul_with(Isa::Scalar, &[(&m, 0)], &x, n, &mut want, rows, &mut s);
                    let typical = want.iter().map(|v| v.abs()).sum::<f32>() / want.len() as f32;
                    for isa in Isa::available() {
                        let mut got = vec![0f32; n * rows];
                        matmul_with(isa, &[(&p, 0)], &x, n, &mut got, rows, &mut s);
                        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                            assert!(
                                (g - w).abs() <= 1e-5 * w.abs().max(typical).max(1.0),
                                "{isa:?} packed {kind:?} cols {cols} rows {rows} n {n} at {i}: \
                                 {g} vs {w}"
                            );
                        }
                    }
                }
            }
        }
    }

    /// A packed matrix shares an output row with row-layout parts.
    #[test]
    fn packed_and_row_parts_share_one_output() {
        let cols = 512;
        let a = random_matrix(QType::Q4K, 16, cols, 11).packed();
        let b = random_matrix(QType::Q8_0, 5, cols, 12);
        let c = random_matrix(QType::Q6K, 8, cols, 13).packed();
        let x = random_acts(2, cols, 5);
        let stride = 16 + 5 + 8;
        let mut s = Scratch::default();
        let mut want = vec![0f32; 2 * stride];
        let parts = [(&a, 0), (&b, 16), (&c, 21)];
        matmul_with(Isa::Scalar, &parts, &x, 2, &mut want, stride, &mut s);
        let mut got = vec![0f32; 2 * stride];
        matmul(&parts, &x, 2, &mut got, stride, &mut s);
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() <= 1e-4 * w.abs().max(1.0), "{g} vs {w}");
        }
    }

    /// Parts write their own columns of a shared output row, mixed formats included.
    #[test]
    fn parts_share_one_output() {
        let cols = 512;
        let a = random_matrix(QType::Q4K, 6, cols, 1);
        let b = random_matrix(QType::Q6K, 3, cols, 2);
        let c = random_matrix(QType::Q8_0, 5, cols, 3);
        let n = 6;
        let x = random_acts(n, cols, 9);
        let stride = 14;
        let mut s = Scratch::default();
        let mut all = vec![0f32; n * stride];
        matmul(
            &[(&a, 0), (&b, 6), (&c, 9)],
            &x,
            n,
            &mut all,
            stride,
            &mut s,
        );
        for (m, off) in [(&a, 0), (&b, 6), (&c, 9)] {
            let mut one = vec![0f32; n * m.rows()];
            matmul(&[(m, 0)], &x, n, &mut one, m.rows(), &mut s);
            for t in 0..n {
                assert_eq!(
                    &all[t * stride + off..][..m.rows()],
                    &one[t * m.rows()..][..m.rows()]
                );
            }
        }
    }

    #[test]
    fn q8_0_from_f32_round_trips() {
        let (rows, cols) = (3, 96);
        let w = random_acts(rows, cols, 4);
        let m = QMatrix::quantize_q8_0(&w, rows, cols).expect("quantize");
        let mut back = vec![0f32; cols];
        for r in 0..rows {
            m.dequantize_row(r, &mut back);
            for (a, b) in back.iter().zip(&w[r * cols..]) {
                assert!((a - b).abs() <= 2.0 / 127.0, "{a} vs {b}");
            }
        }
    }

    #[test]
    fn bad_shapes_are_errors() {
        assert!(matches!(
            QMatrix::new(QType::Q4K, 2, 300, WeightBytes::Owned(vec![])),
            Err(QuantError::PartialBlock { .. })
        ));
        assert!(matches!(
            QMatrix::new(QType::Q8_0, 2, 64, WeightBytes::Owned(vec![0; 10])),
            Err(QuantError::Size { .. })
        ));
    }
}
