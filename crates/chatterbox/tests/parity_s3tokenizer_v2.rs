//! S3Tokenizer V2 against the reference fixture: log-mel, encoder, FSQ projections
//! within 1e-4, speech tokens exactly (with and without `max_len`).

#[test]
fn s3tokenizer_v2_matches_reference() {
    chatterbox::verify::assert_module_passes("s3tokenizer_v2");
}
