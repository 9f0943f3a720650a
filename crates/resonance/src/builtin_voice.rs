//! The checkpoint's built-in voice in the voice library: the SYSTEM voice
//! [`BUILTIN_VOICE_NAME`], installed the first time a server starts the native engine.

use anyhow::Context;
use bytes::Bytes;
use chatterbox::tts::BUILTIN_VOICE_NAME;
use resonance_audio::wav::encode_wav_pcm16;
use resonance_db::Database;
use resonance_domain::{Language, VoiceCategory, VoiceDescription, VoiceName};
use resonance_engine::SAMPLE_RATE;
use resonance_engine::native::NativeModel;
use resonance_service::voices::{self, EngineVoice, VoiceDetails};
use resonance_storage::Storage;

/// Installs the built-in voice unless the library has it (or the checkpoint has none).
pub async fn install(
    model: &NativeModel,
    db: &dyn Database,
    storage: &Storage,
) -> anyhow::Result<()> {
    let name = VoiceName::parse(BUILTIN_VOICE_NAME)?;
    if voices::has_system_voice(db, &name).await? {
        return Ok(());
    }
    let Some(builtin) = model.builtin_voice().await? else {
        return Ok(());
    };
    let voice = EngineVoice {
        details: VoiceDetails {
            name,
            description: Some(VoiceDescription::parse(
                "The built-in voice of the Chatterbox Turbo checkpoint.",
            )?),
            category: VoiceCategory::General,
            language: Language::default(),
            consent: None,
        },
        sample_wav: Bytes::from(encode_wav_pcm16(&builtin.sample, SAMPLE_RATE)),
        conditioning: Some(Bytes::from(builtin.conditioning)),
    };
    match voices::install_system_voice(db, storage, voice)
        .await
        .context("installing the built-in voice")?
    {
        Some(_) => tracing::info!(
            "installed the checkpoint's built-in voice as the system voice \"{BUILTIN_VOICE_NAME}\""
        ),
        None => tracing::info!("another server installed the built-in voice first"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use chatterbox::s3gen::S3GenPrecision;
    use chatterbox::t3::Precision;
    use resonance_engine::native::DeviceSetting;

    use super::*;

    /// One server's start-up: its own model from `checkpoint`, installing the built-in voice
    /// into the shared `db` and `storage`.
    async fn start_server(checkpoint: &std::path::Path, db: &dyn Database, storage: &Storage) {
        let model = NativeModel::load(
            checkpoint,
            &[resonance_domain::SpeechModel::ChatterboxTurbo],
            DeviceSetting::Cpu,
            Some(Precision::Fp32),
            S3GenPrecision::Fp32,
            storage.clone(),
        )
        .await
        .unwrap();
        install(&model, db, storage).await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_servers_on_one_new_database_install_the_builtin_voice_once() {
        let checkpoint = tempfile::tempdir().unwrap();
        chatterbox::testing::write_tiny_checkpoint(checkpoint.path()).unwrap();
        let postgres = resonance_testkit::postgres::TestPostgres::new()
            .await
            .unwrap();
        for postgres_url in [None, Some(postgres.url())] {
            let dir = tempfile::tempdir().unwrap();
            let url = postgres_url.map_or_else(
                || format!("sqlite://{}", dir.path().join("resonance.db").display()),
                str::to_string,
            );
            let db = resonance_db::connect(&url).await.unwrap();
            db.migrate().await.unwrap();
            let secret = resonance_storage::UrlSigningSecret::new(vec![7u8; 32]).unwrap();
            let storage = Storage::local(dir.path().join("objects"), secret).unwrap();
            tokio::join!(
                start_server(checkpoint.path(), db.as_ref(), &storage),
                start_server(checkpoint.path(), db.as_ref(), &storage),
            );
            let system = db.system_voices().await.unwrap();
            assert_eq!(system.len(), 1, "{url}");
            assert_eq!(system[0].name.as_str(), BUILTIN_VOICE_NAME);
            let stored = storage
                .list(&resonance_storage::KeyPrefix::everything())
                .await
                .unwrap();
            assert_eq!(
                stored.len(),
                2,
                "one sample and one set of conditionals: {stored:?}"
            );
        }
    }
}
