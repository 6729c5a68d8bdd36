//! models stage (filled in by its owner).
