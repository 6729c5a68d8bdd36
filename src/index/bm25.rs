//! BM25 over chunks.
