//! `junkrecon demo` (placeholder until the generator lands).
