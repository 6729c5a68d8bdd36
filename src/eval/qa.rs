//! Q&A file format.
