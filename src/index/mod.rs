//! On-disk index, BM25, vector search and rank fusion.

pub mod bm25;
pub mod fusion;
