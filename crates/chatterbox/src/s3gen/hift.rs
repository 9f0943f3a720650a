//! HiFTGenerator vocoder: mel to waveform, with the F0 predictor and sine source.
