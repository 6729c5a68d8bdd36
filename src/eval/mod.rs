//! Eval harness: Q&A file format, metrics, runner, reports and quality gates.

pub mod calibrate;
pub mod catalog;
pub mod compare;
pub mod gencache;
pub mod metrics;
pub mod qa;
pub mod report;
pub mod runner;
pub mod suite;
pub mod thresholds;
