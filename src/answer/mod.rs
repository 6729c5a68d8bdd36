//! answer stage (filled in by its owner).
