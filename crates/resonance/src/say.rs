//! `resonance say`: text to a WAV file with the native engine, from the
//! command line.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use candle_core::Device;
use chatterbox::checkpoint::Checkpoint;
use chatterbox::conditionals::Conditionals;
use chatterbox::s3gen::S3GenPrecision;
use chatterbox::t3::Precision;
use chatterbox::tts::ChatterboxTurbo;
use chatterbox::voice_conditioner::VoiceConditioner;
use clap::Args;
use resonance_audio::{OutputFormat, StreamEncoder};
use resonance_domain::{GenerationParams, VoiceId};
use resonance_engine::native::{BuiltinVoices, ChatterboxSynthesizer, checkpoint};
use resonance_engine::{SAMPLE_RATE, VoiceRef, chunking};
use resonance_storage::ObjectKey;

use crate::config::{Config, SettingsArgs};
use crate::download::{DownloadOptions, manual_instructions, missing_files};

/// The voice name of the checkpoint's built-in voice on the command line.
const BUILTIN_VOICE: &str = "default";

#[derive(Debug, Args)]
pub struct SayArgs {
    /// Text to speak; paralinguistic tags like [chuckle] or [sigh] are voiced
    pub text: String,
    /// Voice to speak in: "default" (the checkpoint's built-in voice) or the name of a
    /// system voice of the library
    #[arg(long, default_value = BUILTIN_VOICE)]
    pub voice: String,
    /// Clone the voice of this recording instead (WAV, MP3, FLAC, Ogg, M4A; more than 5 s)
    #[arg(long, conflicts_with = "voice")]
    pub voice_file: Option<PathBuf>,
    /// WAV file to write (24 kHz mono, 16-bit); `-` streams it to standard output as
    /// it is spoken (e.g. `| aplay` or `| ffplay -`)
    #[arg(long, short, default_value = "out.wav")]
    pub out: PathBuf,
    /// Seed of every random draw; the same seed gives the same audio
    #[arg(long)]
    pub seed: Option<u64>,
    #[arg(long, default_value_t = GenerationParams::default().temperature())]
    pub temperature: f64,
    #[arg(long, default_value_t = GenerationParams::default().top_p())]
    pub top_p: f64,
    #[arg(long, default_value_t = GenerationParams::default().top_k())]
    pub top_k: u32,
    #[arg(long, default_value_t = GenerationParams::default().repetition_penalty())]
    pub repetition_penalty: f64,
}

pub async fn run(args: SayArgs, settings: &SettingsArgs) -> anyhow::Result<ExitCode> {
    let config = Config::load(settings)?;
    let params = GenerationParams::new(
        args.temperature,
        args.top_p,
        args.top_k,
        args.repetition_penalty,
    )?
    .with_model(config.model);
    let checkpoint = checkpoint(config.model);
    let library_voice = if args.voice.eq_ignore_ascii_case(BUILTIN_VOICE) {
        None
    } else {
        Some(system_voice_audio(&config, &args.voice).await?)
    };
    let started = Instant::now();
    let model_dir = config.model_dir.clone();
    let device = config
        .device
        .open()
        .with_context(|| format!("opening the device {}", config.device))?;
    let precision = config
        .precision
        .unwrap_or_else(|| Precision::default_for(&device));
    let s3gen_precision = config.s3gen_precision;
    let load_device = device.clone();
    let model = tokio::task::spawn_blocking(move || {
        load(
            &model_dir,
            &checkpoint,
            &load_device,
            precision,
            s3gen_precision,
        )
    })
    .await
    .context("model loading panicked")??;
    let voice = match (&args.voice_file, library_voice) {
        (Some(path), _) => {
            let bytes =
                std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            clone_voice(bytes, &config.model_dir, &checkpoint, &device)
                .await
                .with_context(|| format!("cannot clone the voice of {}", path.display()))?
        }
        (None, Some(audio)) => clone_voice(audio, &config.model_dir, &checkpoint, &device).await?,
        (None, None) => model.builtin_voice().with_context(|| {
            format!(
                "the checkpoint in {} has no built-in voice (conds.pt)",
                config.model_dir.display()
            )
        })?,
    };
    let loaded = started.elapsed();
    // The voice lives in memory only; its reference key is never read.
    let id = VoiceId::new();
    let voices = Arc::new(BuiltinVoices::default());
    voices.insert(&id, voice);
    let voice = VoiceRef {
        reference: ObjectKey::system_voice(&id),
        id,
    };
    let engine =
        ChatterboxSynthesizer::serving(vec![(config.model, Arc::new(model))], voices).start(1, 1);
    let seed = args.seed.unwrap_or_else(rand::random);
    let to_stdout = args.out.as_os_str() == "-";
    let mut stdout = std::io::stdout();
    let mut wav = StreamEncoder::new(OutputFormat::Wav {
        sample_rate: SAMPLE_RATE,
    });
    let mut written = Ok(());
    let speech = chunking::speak(&engine, &args.text, &voice, params, seed, |step| {
        if to_stdout && written.is_ok() {
            written = stdout
                .write_all(&wav.push(step.audio))
                .and_then(|()| stdout.flush());
        }
    })
    .await?;
    let spoken = started.elapsed() - loaded;
    let seconds = speech.samples.len() as f64 / f64::from(SAMPLE_RATE);
    let timing = format!(
        "{seconds:.2} s of audio; model loaded in {:.1} s, first audio after {:.1} s, spoken in \
         {:.1} s",
        loaded.as_secs_f64(),
        speech.first_audio.as_secs_f64(),
        spoken.as_secs_f64()
    );
    if to_stdout {
        written
            .and_then(|()| stdout.write_all(&wav.finish()))
            .context("cannot write the audio to standard output")?;
        eprintln!("streamed the speech to standard output ({timing})");
    } else {
        let wav = resonance_audio::wav::encode_wav_pcm16(&speech.samples, SAMPLE_RATE);
        std::fs::write(&args.out, wav)
            .with_context(|| format!("cannot write {}", args.out.display()))?;
        println!("wrote {} ({timing})", args.out.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// The reference audio of the library's SYSTEM voice called `name` (any case).
async fn system_voice_audio(config: &Config, name: &str) -> anyhow::Result<bytes::Bytes> {
    let db = crate::serve::connect_db(config).await?;
    let system = db.system_voices().await?;
    let Some(voice) = system
        .iter()
        .find(|v| v.name.as_str().eq_ignore_ascii_case(name))
    else {
        let names: Vec<&str> = system.iter().map(|v| v.name.as_str()).collect();
        anyhow::bail!(
            "no system voice is called {name:?}; the library has: {BUILTIN_VOICE} (built in){}",
            names.iter().map(|n| format!(", {n}")).collect::<String>()
        );
    };
    let key = voice
        .object_key
        .as_deref()
        .with_context(|| format!("the voice {name:?} has no audio yet"))?;
    let storage = crate::serve::open_storage(config)?;
    Ok(storage.get(&ObjectKey::parse(key)?).await?)
}

/// Computes a voice's conditioning from a reference recording.
async fn clone_voice(
    bytes: impl AsRef<[u8]>,
    model_dir: &Path,
    checkpoint: &Checkpoint,
    device: &Device,
) -> anyhow::Result<Conditionals> {
    let audio =
        resonance_audio::decode(bytes.as_ref(), None).context("cannot decode the recording")?;
    let model_dir = model_dir.to_path_buf();
    let device = device.clone();
    let checkpoint = *checkpoint;
    tokio::task::spawn_blocking(move || -> anyhow::Result<Conditionals> {
        let cfg = ChatterboxTurbo::config_for(&model_dir, &checkpoint)?;
        let conditioner = VoiceConditioner::load(&model_dir, &cfg, &device)?;
        Ok(conditioner.prepare(&audio.samples, audio.sample_rate)?)
    })
    .await
    .context("voice conditioning panicked")?
}

/// Loads `model` (on `device`, T3 in `precision`, S3Gen in `s3gen_precision`), saying
/// how to get it when files are missing.
fn load(
    model_dir: &Path,
    model: &Checkpoint,
    device: &Device,
    precision: Precision,
    s3gen_precision: S3GenPrecision,
) -> anyhow::Result<ChatterboxTurbo> {
    let missing = missing_files(model_dir, model);
    if !missing.is_empty() {
        let names: Vec<String> = missing.iter().map(|p| p.display().to_string()).collect();
        anyhow::bail!(
            "the model is not installed: {} missing.\nRun `resonance model download --model {}`, \
             or {}",
            names.join(", "),
            model.id,
            manual_instructions(&DownloadOptions::from_env().endpoint, model, model_dir)
        );
    }
    let cfg = ChatterboxTurbo::config_for(model_dir, model)?;
    let model = ChatterboxTurbo::load_with_precision(
        model_dir,
        model,
        &cfg,
        device,
        precision,
        s3gen_precision,
    )?;
    for warning in model.load_warnings() {
        eprintln!("warning: {warning}");
    }
    Ok(model)
}
