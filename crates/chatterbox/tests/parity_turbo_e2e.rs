//! Whole-pipeline parity with the reference's `ChatterboxTurboTTS.generate`.

#[test]
fn turbo_e2e_matches_the_reference() {
    chatterbox::parity::assert_module_passes("turbo_e2e");
}
