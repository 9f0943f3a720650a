//! Text normalization and tokenization for T3.
