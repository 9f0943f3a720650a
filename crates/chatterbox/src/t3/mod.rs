//! T3 Turbo: text tokens to speech tokens (GPT-2 backbone).
