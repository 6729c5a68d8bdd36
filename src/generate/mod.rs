//! generate stage (filled in by its owner).
