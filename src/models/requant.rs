//! Re-encoding of GGUF tensors that candle runs slowly on x86 (Q4_0, Q4_1, Q5_0, Q5_1) as Q8_0.
//! Measured on Qwen2.5-Coder-0.5B with 2 threads: prefill 24 -> 49 tok/s, decode 17 -> 22 tok/s.
//!
//! The output is deterministic (tensors in file order, metadata sorted by key) so that its sha256
//! can be recorded in the model manifest and checked like a downloaded file.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::Device;

/// What the re-encoding changed.
#[derive(Debug, Clone, Default)]
pub struct RequantReport {
    pub tensors: usize,
    pub reencoded: usize,
}

fn is_slow(dtype: GgmlDType) -> bool {
    matches!(
        dtype,
        GgmlDType::Q4_0 | GgmlDType::Q4_1 | GgmlDType::Q5_0 | GgmlDType::Q5_1
    )
}

/// Reads the GGUF at `src` and writes a copy to `dst` with slow tensors re-encoded as Q8_0.
pub fn requantize_slow_tensors(src: &Path, dst: &Path) -> candle_core::Result<RequantReport> {
    let mut reader = File::open(src)?;
    let content = gguf_file::Content::read(&mut reader).map_err(|e| e.with_path(src))?;
    let mut infos: Vec<_> = content.tensor_infos.iter().collect();
    infos.sort_by_key(|(_, info)| info.offset);
    let mut report = RequantReport::default();
    let mut tensors = Vec::with_capacity(infos.len());
    for (name, info) in infos {
        let qt = content.tensor(&mut reader, name, &Device::Cpu)?;
        report.tensors += 1;
        let qt = if is_slow(info.ggml_dtype) {
            report.reencoded += 1;
            let t = qt.dequantize(&Device::Cpu)?;
            QTensor::quantize(&t, GgmlDType::Q8_0)?
        } else {
            qt
        };
        tensors.push((name.as_str(), qt));
    }
    let mut metadata: Vec<_> = content
        .metadata
        .iter()
        .map(|(k, v)| (k.as_str(), v))
        .collect();
    metadata.sort_by_key(|(k, _)| *k);
    let tensor_refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (*n, t)).collect();
    let mut out = BufWriter::new(File::create(dst)?);
    gguf_file::write(&mut out, &metadata, &tensor_refs)?;
    std::io::Write::flush(&mut out)?;
    out.get_ref().sync_all()?;
    Ok(report)
}
