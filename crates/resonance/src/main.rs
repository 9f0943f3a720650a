//! `resonance`: serve the product, run migrations, manage the model.

mod builtin_voice;
mod config;
mod download;
mod model;
mod orgs;
mod say;
mod serve;
mod users;
mod voices;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::SettingsArgs;

#[derive(Parser)]
#[command(
    name = "resonance",
    version,
    about = "Self-hosted text-to-speech and voice cloning"
)]
struct Cli {
    #[command(flatten)]
    settings: SettingsArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the web app and API (the default)
    Serve,
    /// Run generation workers only (no web server), sharing the database and storage
    Worker,
    /// Apply database migrations and exit
    Migrate,
    /// Model maintenance
    #[command(subcommand)]
    Model(model::ModelCommand),
    /// Speak a text into a WAV file with the native model
    Say(say::SayArgs),
    /// Voice library maintenance (operator)
    #[command(subcommand)]
    Voices(voices::VoicesCommand),
    /// Object storage maintenance (operator)
    #[command(subcommand)]
    Storage(voices::StorageCommand),
    /// Organization plans (operator)
    #[command(subcommand)]
    Orgs(orgs::OrgsCommand),
    /// Accounts (operator)
    #[command(subcommand)]
    Users(users::UsersCommand),
}

fn main() -> ExitCode {
    // SAFETY: no other thread has started yet.
    unsafe { chatterbox::set_thread_defaults() };
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => serve::serve(&cli.settings).await,
            Command::Worker => serve::worker_only(&cli.settings).await,
            Command::Migrate => serve::migrate(&cli.settings).await,
            Command::Model(cmd) => model::run(cmd, &cli.settings).await,
            Command::Say(args) => say::run(args, &cli.settings).await,
            Command::Voices(cmd) => voices::voices(&cli.settings, cmd).await,
            Command::Storage(cmd) => voices::storage(&cli.settings, cmd).await,
            Command::Orgs(cmd) => orgs::run(&cli.settings, cmd).await,
            Command::Users(cmd) => users::run(&cli.settings, cmd).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
