//! S3Tokenizer V2: 16 kHz audio to 25 Hz speech tokens.
