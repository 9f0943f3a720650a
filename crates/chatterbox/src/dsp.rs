//! Short-time Fourier transforms and mel filter banks shared by the model.
