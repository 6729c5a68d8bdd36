//! Eval harness: Q&A file format, metrics, runner, reports.

pub mod metrics;
pub mod qa;
