//! `resonance model ...`: checks of the native Chatterbox implementation.

use std::path::PathBuf;
use std::process::ExitCode;

use chatterbox::verify::{ModuleOutcome, modules, run_module};
use clap::Subcommand;

#[derive(Subcommand)]
pub enum ModelCommand {
    /// Compare every implemented model module with reference fixtures
    Verify {
        /// A fixture directory made by make_fixtures.py (index.json + <module>.safetensors)
        #[arg(long)]
        fixtures: PathBuf,
    },
}

pub fn run(cmd: ModelCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ModelCommand::Verify { fixtures } => verify(&fixtures),
    }
}

fn verify(dir: &std::path::Path) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        dir.is_dir(),
        "fixture directory {} does not exist",
        dir.display()
    );
    println!(
        "{:<20} {:<28} {:>12} {:>10}  result",
        "module", "tensor", "max abs err", "tolerance"
    );
    let mut failed = false;
    for (module, _) in modules() {
        match run_module(dir, module) {
            ModuleOutcome::Checked(checks) => {
                for c in checks {
                    let result = if c.passed() { "pass" } else { "FAIL" };
                    failed |= !c.passed();
                    let note = c.note.map(|n| format!(" ({n})")).unwrap_or_default();
                    println!(
                        "{:<20} {:<28} {:>12.3e} {:>10.1e}  {result}{note}",
                        module, c.tensor, c.max_abs_err, c.tolerance
                    );
                }
            }
            ModuleOutcome::NotImplemented => println!("{module:<20} skipped: not implemented yet"),
            ModuleOutcome::MissingFixture => {
                println!("{module:<20} skipped: no fixture in this directory")
            }
            ModuleOutcome::Error(e) => {
                failed = true;
                println!("{module:<20} ERROR: {e}");
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
