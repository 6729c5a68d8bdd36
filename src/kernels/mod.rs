//! Numeric kernels the models' forward passes share, behind one seam: each has a portable
//! scalar version it is tested against, and the fast path is chosen at run time for the CPU
//! (`is_x86_feature_detected!`), so callers never know which one runs.

// Element-wise and row kernels (GELU, softmax, layer norm), used by `embed::bert`.
pub mod elementwise;
