//! `resonance model download`: fetches a model's official checkpoint from Hugging
//! Face into the model folder, resuming partial files, and installs each file
//! only once it has the expected layout. Files the folder already holds (those the
//! models share) are not fetched again.

use std::path::{Path, PathBuf};

use anyhow::Context;
use chatterbox::checkpoint::{self, Checkpoint};
use chatterbox::conditionals::Conditionals;
use chatterbox::text::TextTokenizer;
use chatterbox::weights::CheckpointManifest;
use hf_hub::Cache;
use hf_hub::api::tokio::ApiBuilder;

pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";
/// Bytes per ranged request; a resumed download restarts at the first chunk
/// not yet complete.
pub const DEFAULT_CHUNK_BYTES: usize = 10 << 20;
/// Partial downloads live here, inside the model folder, until complete.
const PARTIAL_DIR: &str = ".download";

pub struct DownloadOptions {
    /// Hugging Face base URL (`HF_ENDPOINT`).
    pub endpoint: String,
    /// Access token (`HF_TOKEN`); the official repository is public.
    pub token: Option<String>,
    pub chunk_bytes: usize,
    pub progress: bool,
}

impl DownloadOptions {
    /// From `HF_ENDPOINT` and `HF_TOKEN`, with a progress bar.
    pub fn from_env() -> Self {
        let var = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
        Self {
            endpoint: var("HF_ENDPOINT").unwrap_or_else(|| DEFAULT_ENDPOINT.into()),
            token: var("HF_TOKEN"),
            chunk_bytes: DEFAULT_CHUNK_BYTES,
            progress: true,
        }
    }
}

/// URL of one file of `model`'s checkpoint.
pub fn file_url(endpoint: &str, model: &Checkpoint, file: &str) -> String {
    format!(
        "{}/{}/resolve/main/{file}",
        endpoint.trim_end_matches('/'),
        model.repo_id
    )
}

/// How to get `model`'s checkpoint without `resonance model download`.
pub fn manual_instructions(endpoint: &str, model: &Checkpoint, model_dir: &Path) -> String {
    let urls: Vec<String> = model
        .files()
        .iter()
        .map(|f| format!("  {}", file_url(endpoint, model, f)))
        .collect();
    format!(
        "download these files by hand:\n{}\ninto {} (or put them in any folder and point \
         RESONANCE_MODEL_DIR or model_dir in resonance.toml at it)",
        urls.join("\n"),
        model_dir.display()
    )
}

/// Downloads every missing or invalid file of `model`'s checkpoint into `model_dir`.
/// `layout` is what the safetensors files must hold (the official layout in
/// production). Returns the files it downloaded.
pub async fn download(
    model_dir: &Path,
    model: &Checkpoint,
    layout: &CheckpointManifest,
    options: &DownloadOptions,
) -> anyhow::Result<Vec<&'static str>> {
    std::fs::create_dir_all(model_dir)
        .with_context(|| format!("cannot create the model folder {}", model_dir.display()))?;
    let partial_dir = model_dir.join(PARTIAL_DIR);
    let api = ApiBuilder::from_cache(Cache::new(partial_dir.clone()))
        .with_endpoint(options.endpoint.clone())
        .with_token(options.token.clone())
        .with_chunk_size(Some(options.chunk_bytes))
        .with_progress(options.progress)
        .build()
        .context("cannot set up the Hugging Face client")?;
    let repo = api.model(model.repo_id.to_string());
    let mut downloaded = Vec::new();
    for file in model.files() {
        let target = model_dir.join(file);
        if target.exists() && verify(layout, file, &target).is_ok() {
            continue;
        }
        let url = file_url(&options.endpoint, model, file);
        let pointer = repo.download(file).await.map_err(|e| {
            anyhow::anyhow!(
                "cannot download {url}: {e}\n{}",
                manual_instructions(&options.endpoint, model, model_dir)
            )
        })?;
        let blob = std::fs::canonicalize(&pointer)
            .with_context(|| format!("downloaded {file} is missing"))?;
        match verify(layout, file, &blob) {
            Ok(warnings) => {
                for warning in warnings {
                    eprintln!("warning: {warning}");
                }
            }
            Err(e) => {
                std::fs::remove_file(&blob).ok();
                anyhow::bail!("{url} is not the expected checkpoint file: {e:#}");
            }
        }
        std::fs::rename(&blob, &target)
            .with_context(|| format!("cannot move {file} into {}", model_dir.display()))?;
        downloaded.push(file);
    }
    std::fs::remove_dir_all(&partial_dir).ok();
    Ok(downloaded)
}

/// Checks one checkpoint file: safetensors against `layout` (returning what it
/// accepted but did not expect), the tokenizer and the built-in voice by loading
/// them.
pub fn verify(layout: &CheckpointManifest, file: &str, path: &Path) -> anyhow::Result<Vec<String>> {
    match file {
        checkpoint::TOKENIZER => TextTokenizer::from_file(path).map(|_| ())?,
        checkpoint::BUILTIN_VOICE => {
            Conditionals::from_torch_file(path, &candle_core::Device::Cpu)?
                .validate(&chatterbox::ChatterboxConfig::default())?
        }
        _ => return Ok(layout.verify_file(file, path)?),
    }
    Ok(Vec::new())
}

/// Files of `model`'s checkpoint missing from `model_dir`.
pub fn missing_files(model_dir: &Path, model: &Checkpoint) -> Vec<PathBuf> {
    model
        .files()
        .iter()
        .map(|f| model_dir.join(f))
        .filter(|p| !p.exists())
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    use axum::extract::{Path as UrlPath, State};
    use axum::http::{HeaderMap, StatusCode, header};
    use axum::response::{IntoResponse, Response};
    use sha2::{Digest, Sha256};

    use super::*;
    use chatterbox::checkpoint::{NANO, NANO_T3_WEIGHTS, TURBO};

    /// A Hugging Face file server as hf-hub sees it: `/{repo}/resolve/main/{file}`
    /// answering ranged GETs with `x-repo-commit`, `etag` and `content-range`.
    #[derive(Default)]
    struct FakeHub {
        files: HashMap<String, Vec<u8>>,
        /// (file, first byte): answer the ranged request starting there with a
        /// 500, once.
        fail_once: Mutex<Option<(String, usize)>>,
        /// Every ranged request: (file, first byte, last byte).
        requests: Mutex<Vec<(String, usize, usize)>>,
        /// Every file asked for, as `{repo}/{file}`.
        asked: Mutex<Vec<String>>,
    }

    impl FakeHub {
        fn body_bytes_served(&self, file: &str) -> usize {
            self.requests
                .lock()
                .unwrap()
                .iter()
                .filter(|(f, start, end)| f == file && !(*start == 0 && *end == 0))
                .map(|(_, start, end)| end - start + 1)
                .sum()
        }
    }

    async fn serve_file(
        State(hub): State<Arc<FakeHub>>,
        UrlPath(path): UrlPath<String>,
        headers: HeaderMap,
    ) -> Response {
        // The models' repositories hold the same shared files.
        let Some(bytes) = checkpoint::CHECKPOINTS
            .iter()
            .find_map(|c| path.strip_prefix(&format!("{}/resolve/main/", c.repo_id)))
            .and_then(|file| hub.files.get(file).map(|b| (file.to_string(), b)))
        else {
            return StatusCode::NOT_FOUND.into_response();
        };
        hub.asked.lock().unwrap().push(path.clone());
        let (file, bytes) = bytes;
        let range = headers
            .get(header::RANGE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("bytes="))
            .and_then(|v| v.split_once('-'))
            .and_then(|(a, b)| Some((a.parse::<usize>().ok()?, b.parse::<usize>().ok()?)));
        let Some((start, end)) = range else {
            return StatusCode::BAD_REQUEST.into_response();
        };
        let end = end.min(bytes.len() - 1);
        hub.requests
            .lock()
            .unwrap()
            .push((file.clone(), start, end));
        {
            let mut fail = hub.fail_once.lock().unwrap();
            if fail.as_ref() == Some(&(file.clone(), start)) {
                *fail = None;
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            }
        }
        let etag = hex::encode(Sha256::digest(bytes));
        (
            StatusCode::PARTIAL_CONTENT,
            [
                (
                    "x-repo-commit",
                    "0123456789abcdef0123456789abcdef01234567".to_string(),
                ),
                ("etag", format!("\"{etag}\"")),
                (
                    header::CONTENT_RANGE.as_str(),
                    format!("bytes {start}-{end}/{}", bytes.len()),
                ),
            ],
            bytes[start..=end].to_vec(),
        )
            .into_response()
    }

    async fn start(hub: Arc<FakeHub>) -> String {
        let app = axum::Router::new()
            .route("/{*path}", axum::routing::get(serve_file))
            .with_state(hub);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{addr}")
    }

    /// The tiny checkpoint's files with a tiny Nano T3, and the layout of its
    /// safetensors files.
    fn tiny_checkpoint() -> (HashMap<String, Vec<u8>>, CheckpointManifest) {
        let dir = tempfile::tempdir().unwrap();
        chatterbox::testing::write_tiny_checkpoint(dir.path()).unwrap();
        chatterbox::testing::write_tiny_nano_t3(dir.path()).unwrap();
        let weights = [NANO_T3_WEIGHTS]
            .into_iter()
            .chain(checkpoint::WEIGHT_FILES);
        let layout = CheckpointManifest::read(dir.path(), &weights.collect::<Vec<_>>()).unwrap();
        let files = checkpoint::FILES
            .into_iter()
            .chain([NANO_T3_WEIGHTS])
            .map(|f| (f.to_string(), std::fs::read(dir.path().join(f)).unwrap()))
            .collect();
        (files, layout)
    }

    fn options(endpoint: String, chunk_bytes: usize) -> DownloadOptions {
        DownloadOptions {
            endpoint,
            token: None,
            chunk_bytes,
            progress: false,
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_failed_download_resumes_where_it_stopped() {
        let (files, layout) = tiny_checkpoint();
        let t3_len = files[checkpoint::T3_WEIGHTS].len();
        let chunk = 64 << 10;
        assert!(t3_len > 6 * chunk, "T3 file too small to chunk: {t3_len}");
        let hub = Arc::new(FakeHub {
            files: files.clone(),
            fail_once: Mutex::new(Some((checkpoint::T3_WEIGHTS.into(), 5 * chunk))),
            ..FakeHub::default()
        });
        let endpoint = start(hub.clone()).await;
        let model_dir = tempfile::tempdir().unwrap();

        let err = download(
            model_dir.path(),
            &TURBO,
            &layout,
            &options(endpoint.clone(), chunk),
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains(checkpoint::T3_WEIGHTS), "{err:#}");
        assert!(!model_dir.path().join(checkpoint::T3_WEIGHTS).exists());
        let first_try = hub.body_bytes_served(checkpoint::T3_WEIGHTS);

        let done = download(model_dir.path(), &TURBO, &layout, &options(endpoint, chunk))
            .await
            .unwrap();
        assert_eq!(done, vec![checkpoint::T3_WEIGHTS]);
        assert!(first_try > 0);
        // The second attempt starts with a probe (bytes 0-0), then resumes at the chunk that
        // failed: nothing before it is fetched again. (hf-hub leaves the first attempt's
        // other chunk requests running, so they interleave.)
        let t3_requests: Vec<(usize, usize)> = hub
            .requests
            .lock()
            .unwrap()
            .iter()
            .filter(|(f, _, _)| f == checkpoint::T3_WEIGHTS)
            .map(|(_, start, end)| (*start, *end))
            .collect();
        let second_probe = t3_requests
            .iter()
            .rposition(|r| *r == (0, 0))
            .expect("a second attempt");
        let resumed = &t3_requests[second_probe + 1..];
        assert!(
            resumed.contains(&(5 * chunk, 6 * chunk - 1)),
            "{t3_requests:?}"
        );
        assert!(resumed.iter().all(|r| r.0 >= 5 * chunk), "{t3_requests:?}");
        for file in checkpoint::FILES {
            assert_eq!(
                std::fs::read(model_dir.path().join(file)).unwrap(),
                files[file],
                "{file}"
            );
        }
        assert!(!model_dir.path().join(PARTIAL_DIR).exists());
    }

    #[tokio::test]
    async fn nano_beside_turbo_fetches_only_its_t3_from_its_repository() {
        let (files, layout) = tiny_checkpoint();
        let hub = Arc::new(FakeHub {
            files: files.clone(),
            ..FakeHub::default()
        });
        let endpoint = start(hub.clone()).await;
        let model_dir = tempfile::tempdir().unwrap();
        let options = options(endpoint, 1 << 20);
        let turbo = download(model_dir.path(), &TURBO, &layout, &options)
            .await
            .unwrap();
        assert_eq!(turbo, checkpoint::FILES);
        assert!(missing_files(model_dir.path(), &TURBO).is_empty());
        assert_eq!(
            missing_files(model_dir.path(), &NANO),
            [model_dir.path().join(NANO_T3_WEIGHTS)]
        );
        hub.asked.lock().unwrap().clear();

        let nano = download(model_dir.path(), &NANO, &layout, &options)
            .await
            .unwrap();
        assert_eq!(nano, [NANO_T3_WEIGHTS]);
        let asked = hub.asked.lock().unwrap().clone();
        assert!(
            !asked.is_empty()
                && asked
                    .iter()
                    .all(|p| p == "ResembleAI/chatterbox-nano/resolve/main/t3_nano_v1.safetensors"),
            "{asked:?}"
        );
        for (file, bytes) in &files {
            assert_eq!(
                &std::fs::read(model_dir.path().join(file)).unwrap(),
                bytes,
                "{file}"
            );
        }
        assert!(
            download(model_dir.path(), &NANO, &layout, &options)
                .await
                .unwrap()
                .is_empty()
        );
    }

    #[tokio::test]
    async fn a_misshapen_checkpoint_is_refused() {
        let (mut files, layout) = tiny_checkpoint();
        // The voice encoder's file served under T3's name.
        files.insert(
            checkpoint::T3_WEIGHTS.into(),
            files[checkpoint::VOICE_ENCODER_WEIGHTS].clone(),
        );
        let hub = Arc::new(FakeHub {
            files,
            ..FakeHub::default()
        });
        let endpoint = start(hub).await;
        let model_dir = tempfile::tempdir().unwrap();
        let err = download(
            model_dir.path(),
            &TURBO,
            &layout,
            &options(endpoint, 1 << 20),
        )
        .await
        .unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains("t3_turbo_v1.safetensors"), "{text}");
        assert!(
            text.contains("tensor speech_emb.weight is missing"),
            "{text}"
        );
        assert!(!model_dir.path().join(checkpoint::T3_WEIGHTS).exists());
        assert!(model_dir.path().join(checkpoint::TOKENIZER).exists());
    }

    #[tokio::test]
    async fn a_half_precision_file_with_extra_tensors_is_kept() {
        let (mut files, layout) = tiny_checkpoint();
        // T3's file in bfloat16, with a buffer the official layout does not list.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(checkpoint::T3_WEIGHTS);
        std::fs::write(&path, &files[checkpoint::T3_WEIGHTS]).unwrap();
        let device = candle_core::Device::Cpu;
        let mut tensors = candle_core::safetensors::load(&path, &device).unwrap();
        for tensor in tensors.values_mut().filter(|t| t.dtype().is_float()) {
            *tensor = tensor.to_dtype(candle_core::DType::BF16).unwrap();
        }
        let mask = candle_core::Tensor::ones((1, 1, 4, 4), candle_core::DType::U8, &device);
        tensors.insert("tfmr.h.0.attn.bias".into(), mask.unwrap());
        candle_core::safetensors::save(&tensors, &path).unwrap();
        let published = std::fs::read(&path).unwrap();
        files.insert(checkpoint::T3_WEIGHTS.into(), published.clone());

        let hub = Arc::new(FakeHub {
            files,
            ..FakeHub::default()
        });
        let endpoint = start(hub).await;
        let model_dir = tempfile::tempdir().unwrap();
        let done = download(
            model_dir.path(),
            &TURBO,
            &layout,
            &options(endpoint, 1 << 20),
        )
        .await
        .unwrap();
        assert!(done.contains(&checkpoint::T3_WEIGHTS), "{done:?}");
        let installed = std::fs::read(model_dir.path().join(checkpoint::T3_WEIGHTS)).unwrap();
        assert!(installed == published, "the installed T3 file differs");
        let warnings = verify(
            &layout,
            checkpoint::T3_WEIGHTS,
            &model_dir.path().join(checkpoint::T3_WEIGHTS),
        )
        .unwrap();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains("tfmr.h.0.attn.bias"),
            "{}",
            warnings[0]
        );
    }

    #[tokio::test]
    async fn without_network_the_error_says_what_to_fetch_and_where() {
        // A port nothing listens on.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let model_dir = tempfile::tempdir().unwrap();
        let err = download(
            model_dir.path(),
            &TURBO,
            &CheckpointManifest::official(),
            &options(endpoint.clone(), 1 << 20),
        )
        .await
        .unwrap_err()
        .to_string();
        for file in checkpoint::FILES {
            assert!(
                err.contains(&format!(
                    "{endpoint}/ResembleAI/chatterbox-turbo/resolve/main/{file}"
                )),
                "{err}"
            );
        }
        assert!(
            err.contains(&model_dir.path().display().to_string()),
            "{err}"
        );
        assert!(err.contains("RESONANCE_MODEL_DIR"), "{err}");
    }
}
