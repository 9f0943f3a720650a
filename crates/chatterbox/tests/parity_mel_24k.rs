//! Parity of `mel_24k` with the Python reference.

use chatterbox::parity::{ModuleOutcome, assert_module_passes, run_module};

#[test]
fn mel_24k_matches_reference() {
    let dir = chatterbox::parity::fixtures::fixture_dir();
    if let ModuleOutcome::Checked(checks) = run_module(&dir, "mel_24k") {
        for c in &checks {
            eprintln!(
                "{}: max abs err {:e} (tol {:e}) {}",
                c.tensor,
                c.max_abs_err,
                c.tolerance,
                c.note.as_deref().unwrap_or("")
            );
        }
    }
    assert_module_passes("mel_24k");
}
