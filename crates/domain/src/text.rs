//! Rules shared by the names people give things.

/// Whether `c` may appear in a name: not a control character, and none of the invisible
/// characters that make a name look like another: zero-width characters and the Unicode
/// bidirectional controls (embeddings, overrides, isolates and marks, as in the "Trojan
/// Source" attack, CVE-2021-42574).
pub fn allowed_in_name(c: char) -> bool {
    !(c.is_control()
        || matches!(
            c,
            // Soft hyphen, Arabic letter mark, Mongolian vowel separator.
            '\u{00AD}' | '\u{061C}' | '\u{180E}'
            // Zero-width space, non-joiner and joiner; left-to-right and right-to-left marks.
            | '\u{200B}'..='\u{200F}'
            // Embeddings, pop and overrides.
            | '\u{202A}'..='\u{202E}'
            // Word joiner, invisible operators, isolates.
            | '\u{2060}'..='\u{2069}'
            // Zero-width no-break space (byte order mark).
            | '\u{FEFF}'
        ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invisible_and_direction_characters_are_refused() {
        for c in [
            '\u{202E}', '\u{202D}', '\u{2066}', '\u{2069}', '\u{200B}', '\u{200D}', '\u{200F}',
            '\u{FEFF}', '\u{2060}', '\t',
        ] {
            assert!(!allowed_in_name(c), "{:04X}", c as u32);
        }
        for c in ['a', 'É', 'ß', 'ж', 'ع', '中', '😀', ' ', '-'] {
            assert!(allowed_in_name(c), "{c}");
        }
    }
}
