//! UpsampleConformerEncoder: speech-token embeddings to the 80-dim mel prior `mu`.
