//! Text normalization and tokenization for T3: the reference's `punc_norm`
//! (`chatterbox/tts_turbo.py`) and the checkpoint's GPT-2 BPE tokenizer
//! (`tokenizer.json`), whose added tokens include the paralinguistic tags.

use std::path::Path;

/// Paralinguistic tags of Chatterbox Turbo; each is one added token of the
/// checkpoint's tokenizer.
pub const PARALINGUISTIC_TAGS: [&str; 9] = [
    "[clear throat]",
    "[sigh]",
    "[shush]",
    "[cough]",
    "[groan]",
    "[sniff]",
    "[gasp]",
    "[chuckle]",
    "[laugh]",
];

/// What the reference says for empty input.
const EMPTY_TEXT: &str = "You need to add some text for me to talk.";

/// The reference's `punc_norm`: capitalizes a lowercase first character,
/// collapses whitespace, replaces uncommon punctuation and adds a full stop when
/// the text has no final punctuation.
pub fn punc_norm(text: &str) -> String {
    let Some(first) = text.chars().next() else {
        return EMPTY_TEXT.to_string();
    };
    // Capitalized before whitespace is collapsed, as the reference does.
    let capitalized;
    let text = if first.is_lowercase() {
        capitalized = first.to_uppercase().chain(text[first.len_utf8()..].chars());
        capitalized.collect::<String>()
    } else {
        text.to_string()
    };
    let mut text = text
        .split(is_python_whitespace)
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    for (old, new) in [
        ("…", ", "),
        (":", ","),
        ("—", "-"),
        ("–", "-"),
        (" ,", ","),
        ("“", "\""),
        ("”", "\""),
        ("‘", "'"),
        ("’", "'"),
    ] {
        text = text.replace(old, new);
    }
    let mut text = text.trim_end_matches(' ').to_string();
    if !text.ends_with(['.', '!', '?', '-', ',']) {
        text.push('.');
    }
    text
}

/// Python's `str.split()` separators: Unicode whitespace plus the ASCII
/// information separators U+001C..U+001F.
fn is_python_whitespace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

#[derive(Debug, thiserror::Error)]
pub enum TextError {
    #[error("cannot read tokenizer {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid tokenizer: {0}")]
    Invalid(String),
    #[error("tokenizer has no single token for the tag {0}")]
    MissingTag(&'static str),
    #[error("cannot tokenize text: {0}")]
    Encode(String),
}

/// The GPT-2 BPE text tokenizer of the checkpoint.
pub struct TextTokenizer {
    inner: tokenizers::Tokenizer,
}

impl TextTokenizer {
    /// Loads the checkpoint's `tokenizer.json`.
    pub fn from_file(path: &Path) -> Result<Self, TextError> {
        let json = std::fs::read(path).map_err(|source| TextError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_bytes(&json)
    }

    /// Parses a `tokenizer.json`; every paralinguistic tag must be one token.
    pub fn from_bytes(json: &[u8]) -> Result<Self, TextError> {
        let inner = tokenizers::Tokenizer::from_bytes(json)
            .map_err(|e| TextError::Invalid(e.to_string()))?;
        if let Some(tag) = PARALINGUISTIC_TAGS
            .into_iter()
            .find(|tag| inner.token_to_id(tag).is_none())
        {
            return Err(TextError::MissingTag(tag));
        }
        Ok(Self { inner })
    }

    /// Token ids of `text` (already [`punc_norm`]ed), as the reference's
    /// `tokenizer(text).input_ids`: no start or stop tokens.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, TextError> {
        let encoding = self
            .inner
            .encode(text, true)
            .map_err(|e| TextError::Encode(e.to_string()))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// Id of one token (a tag, for instance).
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn punc_norm_matches_the_reference() {
        // Expected outputs produced by chatterbox-tts 0.1.7's `punc_norm`.
        let cases = [
            ("", "You need to add some text for me to talk."),
            ("hello world", "Hello world."),
            ("  hello   world  ", "hello world."),
            ("wait… what", "Wait,  what."),
            ("Note: this is it", "Note, this is it."),
            ("Dash — and – en", "Dash - and - en."),
            ("He said “hi” and ‘bye’", "He said \"hi\" and 'bye'."),
            ("Ends with comma ,", "Ends with comma,"),
            ("Question?", "Question?"),
            ("ßtraße", "SStraße."),
            (
                "tabs\tand\nnewlines\u{1c}file sep",
                "Tabs and newlines file sep.",
            ),
            ("already done!", "Already done!"),
            ("trailing ellipsis…", "Trailing ellipsis,"),
            ("   ", "."),
            ("Éclair [laugh] time", "Éclair [laugh] time."),
            ("x - ", "X -"),
        ];
        for (input, expected) in cases {
            assert_eq!(punc_norm(input), expected, "input {input:?}");
        }
    }

    #[test]
    fn tags_are_single_tokens_and_text_is_byte_level_bpe() {
        let tok =
            TextTokenizer::from_bytes(&crate::testing::byte_level_tokenizer_json(true)).unwrap();
        let laugh = tok.token_id("[laugh]").unwrap();
        let sigh = tok.token_id("[sigh]").unwrap();
        let clear = tok.token_id("[clear throat]").unwrap();
        let ids = tok.encode("Hi [laugh] the [clear throat][sigh]").unwrap();
        let the = tok.token_id("Ġthe").unwrap();
        let space = tok.token_id("Ġ").unwrap();
        let h = tok.token_id("H").unwrap();
        let i = tok.token_id("i").unwrap();
        assert_eq!(ids, vec![h, i, space, laugh, the, space, clear, sigh]);
    }

    #[test]
    fn tokenizer_without_tags_is_rejected() {
        let err = TextTokenizer::from_bytes(&crate::testing::byte_level_tokenizer_json(false))
            .err()
            .unwrap();
        assert!(
            matches!(err, TextError::MissingTag("[clear throat]")),
            "{err}"
        );
    }

    #[test]
    fn missing_tokenizer_file_is_named() {
        let err = TextTokenizer::from_file(Path::new("/nonexistent/tokenizer.json"))
            .err()
            .unwrap();
        assert!(
            err.to_string().contains("/nonexistent/tokenizer.json"),
            "{err}"
        );
    }
}
