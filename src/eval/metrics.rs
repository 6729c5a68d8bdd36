//! Pure metric functions.
