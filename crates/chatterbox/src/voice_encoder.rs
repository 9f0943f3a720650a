//! VoiceEncoder: the speaker embedding T3 is conditioned on.
