//! Rank fusion.
