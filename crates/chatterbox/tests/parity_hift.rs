//! Parity of `hift` with the Python reference.

use chatterbox::verify::{ModuleOutcome, assert_module_passes, run_module};

#[test]
fn hift_matches_reference() {
    let dir = chatterbox::fixtures::fixture_dir();
    if let ModuleOutcome::Checked(checks) = run_module(&dir, "hift") {
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
    assert_module_passes("hift");
}
