//! Re-encoding of the GGUF tensor types that candle runs slowly on x86 (Q4_0, Q4_1, Q5_0, Q5_1)
//! as Q8_0. Called once per model file by whoever owns the cache; the caller writes to a temporary
//! path and renames it into place.
//!
//! Tensors are written in their original file order and metadata is sorted by key, so the output
//! is byte-for-byte reproducible and its sha256 can be recorded.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::Device;

use super::GenerateError;

/// What [`requantize_slow_tensors`] changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequantReport {
    /// Tensors in the file.
    pub tensors: usize,
    /// Tensors re-encoded as Q8_0.
    pub reencoded: usize,
    /// Size of the written file in bytes.
    pub bytes_written: u64,
}

/// Whether candle lacks a fast x86 kernel for `dtype`, so that Q8_0 is both faster and closer to
/// the original values than keeping it.
pub fn is_slow_dtype(dtype: GgmlDType) -> bool {
    matches!(
        dtype,
        GgmlDType::Q4_0 | GgmlDType::Q4_1 | GgmlDType::Q5_0 | GgmlDType::Q5_1
    )
}

/// Reads the GGUF at `src` and writes a copy to `dst` in which every Q4_0/Q4_1/Q5_0/Q5_1 tensor is
/// re-encoded as Q8_0 (dequantize, then quantize). Other tensors and all metadata are kept.
pub fn requantize_slow_tensors(src: &Path, dst: &Path) -> Result<RequantReport, GenerateError> {
    let gguf_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source: candle_core::Error| GenerateError::Gguf {
            path: path.clone(),
            source: Box::new(source),
        }
    };
    let mut reader = File::open(src).map_err(|source| GenerateError::Io {
        path: src.to_path_buf(),
        source,
    })?;
    let content = gguf_file::Content::read(&mut reader).map_err(gguf_err(src))?;

    let mut infos: Vec<_> = content.tensor_infos.iter().collect();
    infos.sort_by_key(|(_, info)| info.offset);
    let mut report = RequantReport::default();
    let mut tensors = Vec::with_capacity(infos.len());
    for (name, info) in infos {
        let tensor = content
            .tensor(&mut reader, name, &Device::Cpu)
            .map_err(gguf_err(src))?;
        report.tensors += 1;
        let tensor = if is_slow_dtype(info.ggml_dtype) {
            report.reencoded += 1;
            let values = tensor.dequantize(&Device::Cpu)?;
            QTensor::quantize(&values, GgmlDType::Q8_0)?
        } else {
            tensor
        };
        tensors.push((name.as_str(), tensor));
    }

    let mut metadata: Vec<(&str, &gguf_file::Value)> = content
        .metadata
        .iter()
        .map(|(k, v)| (k.as_str(), v))
        .collect();
    metadata.sort_by_key(|(k, _)| *k);
    let tensor_refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (*n, t)).collect();

    let io_err = |source: std::io::Error| GenerateError::Io {
        path: dst.to_path_buf(),
        source,
    };
    let file = File::create(dst).map_err(io_err)?;
    let mut out = BufWriter::new(file);
    gguf_file::write(&mut out, &metadata, &tensor_refs).map_err(gguf_err(dst))?;
    out.flush().map_err(io_err)?;
    let file = out.into_inner().map_err(|e| io_err(e.into_error()))?;
    file.sync_all().map_err(io_err)?;
    report.bytes_written = file.metadata().map_err(io_err)?.len();
    Ok(report)
}
