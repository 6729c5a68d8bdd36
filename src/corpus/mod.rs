//! corpus stage (filled in by its owner).
