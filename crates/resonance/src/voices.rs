//! Operator commands: `resonance voices import|remove --system` and
//! `resonance storage reconcile`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use resonance_db::VoiceConsent;
use resonance_domain::{Language, VoiceDescription, VoiceId, VoiceName, VoiceOwner};
use resonance_service::voices::{self as library, Upload, VoiceChanges, VoiceDetails};
use serde::Deserialize;
use time::OffsetDateTime;

use crate::config::{Config, SettingsArgs};
use crate::serve::{connect_db, open_storage};

#[derive(Subcommand)]
pub enum VoicesCommand {
    /// Import voices from audio files listed in a TOML manifest
    Import(ImportArgs),
    /// Rename or redescribe a voice; its audio stays
    Edit(EditArgs),
    /// Remove a voice and its audio
    Remove(RemoveArgs),
}

#[derive(Args)]
pub struct EditArgs {
    /// Edit a SYSTEM voice (the only kind the CLI edits)
    #[arg(long, required = true)]
    system: bool,
    /// The voice's id
    voice_id: String,
    /// New name, 1-100 characters
    #[arg(long)]
    name: Option<String>,
    /// New description; empty removes it
    #[arg(long)]
    description: Option<String>,
    /// New category, like NARRATIVE or PODCAST
    #[arg(long)]
    category: Option<String>,
    /// New language, a BCP-47 tag with a region like en-GB
    #[arg(long)]
    language: Option<String>,
}

#[derive(Args)]
pub struct ImportArgs {
    /// Import them as SYSTEM voices, shared by every organization (the only kind the CLI imports)
    #[arg(long, required = true)]
    system: bool,
    /// Confirm that every speaker in the manifest agreed to having their voice cloned and
    /// used here; recorded with each voice as given by `cli`, now (required)
    #[arg(long, required = true)]
    speakers_consented: bool,
    /// The manifest: `[[voice]]` tables with file, name, description, category, language;
    /// files are relative to the manifest
    manifest: PathBuf,
}

#[derive(Args)]
pub struct RemoveArgs {
    /// Remove a SYSTEM voice (the only kind the CLI removes)
    #[arg(long, required = true)]
    system: bool,
    /// The voice's id
    voice_id: String,
}

#[derive(Subcommand)]
pub enum StorageCommand {
    /// Report voice rows without audio and voice audio without rows, and remove them
    Reconcile(ReconcileArgs),
}

#[derive(Args)]
pub struct ReconcileArgs {
    /// Only report; remove nothing
    #[arg(long)]
    dry_run: bool,
    /// Leave objects younger than this many seconds alone (uploads in progress)
    #[arg(long, default_value_t = 3600)]
    grace_secs: u64,
}

/// Who confirmed the speakers' consent to voices imported here: the operator, on the
/// command line.
const CLI_CONSENT: &str = "cli";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    voice: Vec<ManifestVoice>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestVoice {
    file: PathBuf,
    name: String,
    description: Option<String>,
    category: Option<String>,
    language: Option<String>,
}

/// One manifest entry, checked before anything is imported.
struct ImportItem {
    file: PathBuf,
    details: VoiceDetails,
}

fn read_manifest(path: &Path) -> anyhow::Result<Vec<ImportItem>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the manifest {}", path.display()))?;
    let manifest: Manifest = toml::from_str(&text)
        .with_context(|| format!("the manifest {} is invalid", path.display()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    manifest
        .voice
        .into_iter()
        .enumerate()
        .map(|(index, entry)| {
            let context = || format!("voice #{} ({:?}) in the manifest", index + 1, entry.name);
            let file = base.join(&entry.file);
            if !file.is_file() {
                bail!("{}: no file {}", context(), file.display());
            }
            let details = VoiceDetails {
                name: VoiceName::parse(&entry.name).with_context(context)?,
                description: entry
                    .description
                    .as_deref()
                    .map(VoiceDescription::parse)
                    .transpose()
                    .with_context(context)?,
                category: entry
                    .category
                    .as_deref()
                    .map(str::parse)
                    .transpose()
                    .with_context(context)?
                    .unwrap_or_default(),
                language: entry
                    .language
                    .as_deref()
                    .map(Language::parse)
                    .transpose()
                    .with_context(context)?
                    .unwrap_or_default(),
                consent: Some(VoiceConsent {
                    by: CLI_CONSENT.to_string(),
                    at: OffsetDateTime::now_utc(),
                }),
            };
            Ok(ImportItem { file, details })
        })
        .collect()
}

/// A Content-Type for a file, from its extension; decoding also sniffs the content.
fn content_type_for(path: &Path) -> &'static str {
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match extension.as_deref() {
        Some("wav") => "audio/wav",
        Some("mp3") => "audio/mpeg",
        Some("flac") => "audio/flac",
        Some("ogg" | "oga" | "opus") => "audio/ogg",
        Some("m4a" | "mp4" | "aac") => "audio/mp4",
        Some("webm") => "audio/webm",
        _ => "application/octet-stream",
    }
}

pub async fn voices(args: &SettingsArgs, command: VoicesCommand) -> anyhow::Result<ExitCode> {
    let config = Config::load(args)?;
    let db = connect_db(&config).await?;
    db.migrate().await.context("applying database migrations")?;
    let storage = open_storage(&config)?;
    match command {
        VoicesCommand::Import(import) => {
            let items = read_manifest(&import.manifest)?;
            for item in items {
                let bytes = std::fs::read(&item.file)
                    .with_context(|| format!("cannot read {}", item.file.display()))?;
                let upload = Upload {
                    bytes: bytes.into(),
                    content_type: content_type_for(&item.file).to_string(),
                };
                let name = item.details.name.as_str().to_string();
                let voice = library::create_voice(
                    db.as_ref(),
                    &storage,
                    VoiceOwner::System,
                    item.details,
                    upload,
                    None,
                )
                .await
                .with_context(|| format!("importing {}", item.file.display()))?;
                println!("imported {} {name}", voice.id);
            }
        }
        VoicesCommand::Edit(edit) => {
            let id = VoiceId::parse(&edit.voice_id)
                .with_context(|| format!("{:?} is not a voice id", edit.voice_id))?;
            let changes = VoiceChanges {
                name: edit.name.as_deref().map(VoiceName::parse).transpose()?,
                description: edit
                    .description
                    .as_deref()
                    .map(VoiceDescription::parse_optional)
                    .transpose()?,
                category: edit.category.as_deref().map(str::parse).transpose()?,
                language: edit.language.as_deref().map(Language::parse).transpose()?,
            };
            let voice = db
                .system_voices()
                .await?
                .into_iter()
                .find(|voice| voice.id == id)
                .with_context(|| format!("no system voice has the id {id}"))?;
            let edited = db
                .edit_voice(&VoiceOwner::System, &id, &changes.applied_to(&voice))
                .await
                .with_context(|| format!("editing system voice {id}"))?;
            println!("edited {id} {}", edited.name.as_str());
        }
        VoicesCommand::Remove(remove) => {
            let id = VoiceId::parse(&remove.voice_id)
                .with_context(|| format!("{:?} is not a voice id", remove.voice_id))?;
            library::delete_voice(db.as_ref(), &storage, &VoiceOwner::System, &id)
                .await
                .with_context(|| format!("removing system voice {id}"))?;
            println!("removed {id}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn storage(args: &SettingsArgs, command: StorageCommand) -> anyhow::Result<ExitCode> {
    let StorageCommand::Reconcile(reconcile) = command;
    let config = Config::load(args)?;
    let db = connect_db(&config).await?;
    db.migrate().await.context("applying database migrations")?;
    let storage = open_storage(&config)?;
    let report = library::reconcile(
        db.as_ref(),
        &storage,
        Duration::from_secs(reconcile.grace_secs),
        reconcile.dry_run,
    )
    .await
    .context("reconciling voices with object storage")?;
    let verb = if reconcile.dry_run {
        "would remove"
    } else {
        "removed"
    };
    for voice in &report.rows_without_objects {
        println!(
            "{verb} voice row {} ({}): its audio {} is missing",
            voice.id,
            voice.name.as_str(),
            voice.object_key.as_deref().unwrap_or("(none)")
        );
    }
    for key in &report.objects_without_rows {
        println!("{verb} object {key}: no voice refers to it");
    }
    println!(
        "{} voice rows without audio, {} objects without a voice",
        report.rows_without_objects.len(),
        report.objects_without_rows.len()
    );
    Ok(ExitCode::SUCCESS)
}
