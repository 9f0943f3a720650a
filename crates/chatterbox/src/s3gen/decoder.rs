//! ConditionalDecoder U-Net and the meanflow integration (CFM).
