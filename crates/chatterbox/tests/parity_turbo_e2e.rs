//! Whole-pipeline parity with the reference's `ChatterboxTurboTTS.generate`.

#[test]
fn turbo_e2e_matches_the_reference() {
    chatterbox::verify::assert_module_passes("turbo_e2e");
}
