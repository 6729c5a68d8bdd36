//! docqa: answer questions about a folder of documents, offline on a CPU, with checked citations.
//!
//! The pipeline flows one way: corpus -> embed/BM25 -> index -> retrieve -> prompt -> generate ->
//! check citations -> answer; `eval` drives the same pipeline over a Q&A file.

pub mod answer;
pub mod corpus;
pub mod embed;
pub mod eval;
pub mod generate;
pub mod index;
pub mod kernels;
pub mod models;
pub mod pipeline;
pub mod served;
pub mod server;
pub mod session;

/// mimalloc keeps freed pages for reuse. With the system allocator every large tensor of a
/// forward pass was a fresh `mmap` whose pages faulted in and were zeroed again (measured: about
/// 10% of embedding time went to page faults), and the embedder and generator allocate such
/// tensors per layer.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
