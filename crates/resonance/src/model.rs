//! `resonance model ...`: the checkpoint and checks of the native Chatterbox
//! implementation.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use chatterbox::checkpoint::Checkpoint;
use chatterbox::parity::{ModuleOutcome, modules, run_module};
use chatterbox::weights::CheckpointManifest;
use clap::Subcommand;
use resonance_engine::native::checkpoint;

use crate::config::{Config, SettingsArgs};
use crate::download::{self, DownloadOptions};

#[derive(Subcommand)]
pub enum ModelCommand {
    /// Download the checkpoint of the model setting (--model chatterbox-turbo or
    /// chatterbox-nano) from Hugging Face into the model folder, skipping the files
    /// the folder already holds (resumes partial downloads; honours HF_ENDPOINT and
    /// HF_TOKEN)
    Download,
    /// Compare every implemented model module with reference fixtures
    Verify {
        /// A fixture directory made by make_fixtures.py (index.json + <module>.safetensors)
        #[arg(long)]
        fixtures: PathBuf,
    },
}

pub async fn run(cmd: ModelCommand, settings: &SettingsArgs) -> anyhow::Result<ExitCode> {
    match cmd {
        ModelCommand::Download => {
            let config = Config::load(settings)?;
            download_checkpoint(&config.model_dir, &checkpoint(config.model)).await
        }
        ModelCommand::Verify { fixtures } => verify(&fixtures),
    }
}

async fn download_checkpoint(model_dir: &Path, model: &Checkpoint) -> anyhow::Result<ExitCode> {
    let options = DownloadOptions::from_env();
    println!(
        "downloading {} from {} into {}",
        model.repo_id,
        options.endpoint,
        model_dir.display()
    );
    let fetched =
        download::download(model_dir, model, &CheckpointManifest::of(model), &options).await?;
    if fetched.is_empty() {
        println!("every file was already present and valid");
    } else {
        println!("downloaded and verified {}", fetched.join(", "));
    }
    Ok(ExitCode::SUCCESS)
}

fn verify(dir: &Path) -> anyhow::Result<ExitCode> {
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
    let mut checked = 0;
    for (module, _) in modules() {
        match run_module(dir, module) {
            ModuleOutcome::Checked(checks) => {
                checked += checks.len();
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
    if checked == 0 && !failed {
        anyhow::bail!(
            "no check ran: {} holds no reference fixture. Expected the files make_fixtures.py \
             writes: <module>.safetensors and <module>.json for at least one of {}",
            dir.display(),
            fixture_modules().join(", ")
        );
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The fixture files' module names (`turbo_e2e/conditionals` reads `turbo_e2e`).
fn fixture_modules() -> Vec<&'static str> {
    let mut names: Vec<&str> = Vec::new();
    for (module, _) in modules() {
        let file = module.split('/').next().unwrap_or(module);
        if !names.contains(&file) {
            names.push(file);
        }
    }
    names
}
