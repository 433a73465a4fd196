//! Synthetic, contract-legal landing trees (placeholder until the generator lands).
