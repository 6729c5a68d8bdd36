//! embed stage (filled in by its owner).
