//! T3 Turbo parity with the reference fixture (prefill, KV-cached decoding,
//! sampled and greedy generations).

#[test]
fn t3_turbo_matches_reference() {
    chatterbox::verify::assert_module_passes("t3_turbo");
}
