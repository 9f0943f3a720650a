//! Text of any length spoken through an engine, the one way every caller does it (the
//! generation worker, hence every API and streaming route, and `resonance say`): split into
//! chunks Chatterbox handles well (it drifts past ~300 characters) at sentence boundaries
//! first, then clause boundaries, then words, never inside a paralinguistic tag like
//! `[chuckle]`; chunk `i` spoken with seed `seed + i`, its audio passed on in pieces as
//! the engine makes them; the chunks joined with a short crossfade. The same text, voice, parameters and seed give the same audio everywhere.

use std::time::{Duration, Instant};

use resonance_audio::crossfade::{DEFAULT_CROSSFADE, Joiner};
use resonance_domain::GenerationParams;

use crate::{EngineError, SAMPLE_RATE, SpeechEngine, SynthesisRequest, VoiceRef};

/// The longest chunk sent to the model in one call, in characters.
pub const MAX_CHUNK_CHARS: usize = 300;

/// The overlap between consecutive chunks.
pub const CHUNK_CROSSFADE: Duration = DEFAULT_CROSSFADE;

/// Audio that will not change any more, as [`speak`] makes it.
pub struct SpeechProgress<'a> {
    /// Samples that follow the ones reported before; together they are the whole speech.
    pub audio: &'a [f32],
    /// Chunks spoken completely so far.
    pub chunks_done: usize,
    pub chunks: usize,
}

/// Speech made by [`speak`], with how long it took.
pub struct Spoken {
    pub samples: Vec<f32>,
    /// Time spent in the engine.
    pub compute: Duration,
    /// From the start until the first audio was ready.
    pub first_audio: Duration,
}

/// Speaks `text` chunk by chunk, reporting each stretch of audio as soon as it is final:
/// the engine's pieces as they come, held back only by the crossfade into the next chunk.
pub async fn speak(
    engine: &dyn SpeechEngine,
    text: &str,
    voice: &VoiceRef,
    params: GenerationParams,
    seed: u64,
    mut on_progress: impl FnMut(SpeechProgress<'_>),
) -> Result<Spoken, EngineError> {
    let chunks = split_text(text, MAX_CHUNK_CHARS);
    if chunks.is_empty() {
        return Err(EngineError::InvalidRequest(
            "there is no text to speak".into(),
        ));
    }
    let mut joiner = Joiner::new(SAMPLE_RATE, CHUNK_CROSSFADE);
    let started = Instant::now();
    let mut compute = Duration::ZERO;
    let mut first_audio = None;
    for (i, chunk) in chunks.iter().enumerate() {
        let request = SynthesisRequest {
            text: chunk.clone(),
            voice: voice.clone(),
            params,
            seed: seed.wrapping_add(i as u64),
        };
        let chunk_started = Instant::now();
        if i + 1 == chunks.len() {
            joiner.next_chunk_is_last();
        }
        let (audio, mut pieces) = tokio::sync::mpsc::unbounded_channel();
        let mut started_chunk = false;
        let (result, ()) = tokio::join!(engine.synthesize_streaming(request, audio), async {
            while let Some(piece) = pieces.recv().await {
                first_audio.get_or_insert_with(|| started.elapsed());
                let released = if started_chunk {
                    joiner.extend(&piece)
                } else {
                    started_chunk = true;
                    joiner.push(&piece)
                };
                if !released.is_empty() {
                    on_progress(SpeechProgress {
                        audio: released,
                        chunks_done: i,
                        chunks: chunks.len(),
                    });
                }
            }
        });
        result?;
        compute += chunk_started.elapsed();
        let tail = if i + 1 == chunks.len() {
            joiner.pending()
        } else {
            &[]
        };
        on_progress(SpeechProgress {
            audio: tail,
            chunks_done: i + 1,
            chunks: chunks.len(),
        });
    }
    Ok(Spoken {
        samples: joiner.into_samples(),
        compute,
        first_audio: first_audio.unwrap_or_default(),
    })
}

/// Splits `text` into chunks of at most `max_chars` characters (a single word
/// longer than that becomes its own chunk). Whitespace is normalized.
pub fn split_text(text: &str, max_chars: usize) -> Vec<String> {
    let mut chunks = Vec::new();
    let mut current = String::new();
    for sentence in sentences(text) {
        let pieces = if char_len(&sentence) > max_chars {
            split_long_sentence(&sentence, max_chars)
        } else {
            vec![sentence]
        };
        for piece in pieces {
            let needed = char_len(&piece) + usize::from(!current.is_empty());
            if !current.is_empty() && char_len(&current) + needed > max_chars {
                chunks.push(std::mem::take(&mut current));
            }
            if !current.is_empty() {
                current.push(' ');
            }
            current.push_str(&piece);
        }
    }
    if !current.is_empty() {
        chunks.push(current);
    }
    chunks
}

fn char_len(s: &str) -> usize {
    s.chars().count()
}

/// Words, with bracketed tags kept as single words (`[clear throat]`).
fn words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut in_tag = false;
    for c in text.chars() {
        match c {
            '[' => {
                in_tag = true;
                current.push(c);
            }
            ']' => {
                in_tag = false;
                current.push(c);
            }
            c if c.is_whitespace() && !in_tag => {
                if !current.is_empty() {
                    words.push(std::mem::take(&mut current));
                }
            }
            c if c.is_whitespace() => {
                if !current.ends_with(' ') {
                    current.push(' ');
                }
            }
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

/// Sentences: words up to and including one ending in `.`, `!`, `?` or `…`
/// (optionally followed by closing quotes or brackets).
fn sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Vec<String> = Vec::new();
    for word in words(text) {
        let ends = ends_sentence(&word);
        current.push(word);
        if ends {
            out.push(current.join(" "));
            current.clear();
        }
    }
    if !current.is_empty() {
        out.push(current.join(" "));
    }
    out
}

fn ends_sentence(word: &str) -> bool {
    if word.starts_with('[') && word.ends_with(']') {
        return false;
    }
    let trimmed = word.trim_end_matches(['"', '\'', '”', '’', ')']);
    trimmed.ends_with(['.', '!', '?', '…'])
}

/// Splits a sentence longer than `max_chars` after commas, semicolons or colons
/// where possible, otherwise between words.
fn split_long_sentence(sentence: &str, max_chars: usize) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut current = String::new();
    let mut last_clause_end: Option<usize> = None;
    for word in words(sentence) {
        if !current.is_empty() && char_len(&current) + 1 + char_len(&word) > max_chars {
            match last_clause_end {
                Some(end) if end > 0 => {
                    let rest = current.split_off(end);
                    pieces.push(current.trim().to_string());
                    current = rest.trim().to_string();
                }
                _ => pieces.push(std::mem::take(&mut current)),
            }
            last_clause_end = None;
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(&word);
        if word.ends_with([',', ';', ':']) {
            last_clause_end = Some(current.len());
        }
    }
    if !current.is_empty() {
        pieces.push(current);
    }
    pieces.retain(|p| !p.is_empty());
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_one_chunk() {
        assert_eq!(
            split_text("Hello  there. How are you?", 300),
            vec!["Hello there. How are you?"]
        );
    }

    #[test]
    fn chunks_respect_the_limit_and_keep_every_word() {
        let sentence = "This sentence is about forty characters. ";
        let text = sentence.repeat(30);
        let chunks = split_text(&text, 300);
        assert!(chunks.len() >= 4);
        for c in &chunks {
            assert!(c.chars().count() <= 300, "{} chars", c.chars().count());
            assert!(c.ends_with('.'), "chunk does not end on a sentence: {c:?}");
        }
        assert_eq!(chunks.join(" "), text.trim());
    }

    #[test]
    fn tags_stay_whole() {
        let text = format!(
            "{} [clear throat] {}",
            "word ".repeat(55),
            "word ".repeat(10)
        );
        let chunks = split_text(&text, 60);
        assert!(chunks.iter().any(|c| c.contains("[clear throat]")));
        assert!(
            !chunks
                .iter()
                .any(|c| c.contains("[clear") && !c.contains("[clear throat]"))
        );
    }

    #[test]
    fn long_sentences_split_at_clauses() {
        let text = format!("{}, {}.", "a".repeat(20), "b ".repeat(30).trim());
        let chunks = split_text(&text, 40);
        assert_eq!(chunks[0], format!("{},", "a".repeat(20)));
        assert!(chunks.iter().all(|c| c.chars().count() <= 40));
    }
}
