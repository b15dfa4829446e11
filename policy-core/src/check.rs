//! Type checker (placeholder).
