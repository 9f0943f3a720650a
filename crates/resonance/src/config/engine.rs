//! Speech synthesis: the engine (native Chatterbox Turbo, a remote inference service or
//! none), the model's folder, device and precision, and how many syntheses and workers
//! run.

use std::path::{Path, PathBuf};

use chatterbox::s3gen::S3GenPrecision;
use chatterbox::t3::Precision;
use resonance_domain::SpeechModel;
use resonance_engine::native::{DeviceSetting, DeviceSettingError};

use super::ConfigError;

/// The folder holding the checkpoint: every model's T3 and the files they share.
pub fn model_dir(dir: Option<PathBuf>, data_dir: &Path) -> PathBuf {
    dir.unwrap_or_else(|| data_dir.join("models").join("chatterbox-turbo"))
}

/// The model spoken with when a request names none; `serve` and `worker` download it.
pub fn model(text: Option<String>) -> Result<SpeechModel, ConfigError> {
    match text {
        None => Ok(SpeechModel::default()),
        Some(text) => SpeechModel::parse(&text).ok_or(ConfigError::Invalid {
            key: "RESONANCE_MODEL (model)",
            expected: "chatterbox-turbo or chatterbox-nano",
            got: text,
        }),
    }
}

/// `None` when unset: the device's default ([`Precision::default_for`]).
pub fn precision(text: Option<String>) -> Result<Option<Precision>, ConfigError> {
    match text {
        None => Ok(None),
        Some(text) => text.parse().map(Some).map_err(|_| ConfigError::Invalid {
            key: "RESONANCE_PRECISION (precision)",
            expected: "fp32, bf16, fp16, int8 or int4",
            got: text,
        }),
    }
}

/// S3Gen's number format; unset: `bf16`.
pub fn s3gen_precision(text: Option<String>) -> Result<S3GenPrecision, ConfigError> {
    match text {
        None => Ok(S3GenPrecision::default()),
        Some(text) => text.parse().map_err(|_| ConfigError::Invalid {
            key: "RESONANCE_S3GEN_PRECISION (s3gen_precision)",
            expected: "fp32 or bf16",
            got: text,
        }),
    }
}

const DEVICE_KEY: &str = "RESONANCE_DEVICE (device)";

pub fn device(text: Option<String>) -> Result<DeviceSetting, ConfigError> {
    match text {
        None => Ok(DeviceSetting::default()),
        Some(text) => text.parse().map_err(|e| match e {
            DeviceSettingError::Unknown(got) => ConfigError::Invalid {
                key: DEVICE_KEY,
                expected: "auto, cpu, cuda or cuda:N",
                got,
            },
            DeviceSettingError::CudaNotBuilt(got) => ConfigError::Invalid {
                key: DEVICE_KEY,
                expected: "auto or cpu: this build has no cuda feature (docs/gpu.md)",
                got,
            },
        }),
    }
}

#[derive(Clone)]
pub enum EngineConfig {
    Chatterbox {
        concurrency: usize,
    },
    Remote {
        url: String,
        api_key: String,
        concurrency: usize,
    },
}

impl std::fmt::Debug for EngineConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Chatterbox { concurrency } => f
                .debug_struct("Chatterbox")
                .field("concurrency", concurrency)
                .finish(),
            Self::Remote {
                url, concurrency, ..
            } => f
                .debug_struct("Remote")
                .field("url", url)
                .field("concurrency", concurrency)
                .finish_non_exhaustive(),
        }
    }
}

/// The engine setting with what it needs: a remote engine its URL and API key. `None` for
/// `none`.
pub fn engine(
    engine: Option<&str>,
    remote_url: Option<String>,
    remote_api_key: Option<String>,
    concurrency: Option<usize>,
) -> Result<Option<EngineConfig>, ConfigError> {
    if concurrency == Some(0) {
        return Err(ConfigError::Invalid {
            key: "RESONANCE_ENGINE_CONCURRENCY (engine_concurrency)",
            expected: "at least 1",
            got: "0".into(),
        });
    }
    match engine {
        Some("none") => Ok(None),
        None | Some("chatterbox") => Ok(Some(EngineConfig::Chatterbox {
            concurrency: concurrency.unwrap_or(1),
        })),
        Some("remote") => {
            let url = remote_url.ok_or(ConfigError::Missing {
                key: "RESONANCE_REMOTE_URL (remote_url)",
                why: "required when RESONANCE_ENGINE=remote",
            })?;
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(ConfigError::Invalid {
                    key: "RESONANCE_REMOTE_URL (remote_url)",
                    expected: "an http:// or https:// URL",
                    got: url,
                });
            }
            let api_key = remote_api_key.ok_or(ConfigError::Missing {
                key: "RESONANCE_REMOTE_API_KEY (remote_api_key)",
                why: "required when RESONANCE_ENGINE=remote",
            })?;
            Ok(Some(EngineConfig::Remote {
                url,
                api_key,
                concurrency: concurrency.unwrap_or(4),
            }))
        }
        Some(other) => Err(ConfigError::Invalid {
            key: "RESONANCE_ENGINE (engine)",
            expected: "chatterbox, remote or none",
            got: other.to_string(),
        }),
    }
}

/// Generation workers `serve` runs in-process.
pub fn workers(workers: Option<usize>) -> usize {
    workers.unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use chatterbox::s3gen::S3GenPrecision;
    use chatterbox::t3::Precision;
    use resonance_domain::SpeechModel;
    use resonance_engine::native::DeviceSetting;

    use crate::config::tests::args;
    use crate::config::{Config, EngineConfig, SettingsArgs};

    #[test]
    fn remote_engine_needs_url_and_key_and_hides_the_key() {
        let err = Config::load(&SettingsArgs {
            engine: Some("remote".into()),
            ..args()
        })
        .unwrap_err();
        assert!(err.to_string().contains("RESONANCE_REMOTE_URL"), "{err}");
        let config = Config::load(&SettingsArgs {
            engine: Some("remote".into()),
            remote_url: Some("http://gpu:8000".into()),
            remote_api_key: Some("hunter2".into()),
            workers: Some(0),
            ..args()
        })
        .unwrap();
        assert_eq!(config.workers, 0);
        assert!(matches!(
            &config.engine,
            Some(EngineConfig::Remote { url, concurrency: 4, .. }) if url == "http://gpu:8000"
        ));
        assert!(!format!("{config:?}").contains("hunter2"));
        let err = Config::load(&SettingsArgs {
            engine: Some("gpt".into()),
            ..args()
        })
        .unwrap_err();
        assert!(
            err.to_string().contains("chatterbox, remote or none"),
            "{err}"
        );
        assert!(matches!(
            Config::load(&args()).unwrap().engine,
            Some(EngineConfig::Chatterbox { concurrency: 1 })
        ));
        let none = Config::load(&SettingsArgs {
            engine: Some("none".into()),
            ..args()
        });
        assert!(none.unwrap().engine.is_none());
    }

    #[test]
    fn model_defaults_to_turbo_and_is_set_by_file_then_flags() {
        let model = |file: &str, flag: Option<&str>| {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("resonance.toml");
            std::fs::write(&path, file).unwrap();
            Config::load(&SettingsArgs {
                config: Some(path),
                model: flag.map(str::to_string),
                ..args()
            })
            .map(|config| config.model)
        };
        assert_eq!(model("", None).unwrap(), SpeechModel::ChatterboxTurbo);
        let nano = "model = \"chatterbox-nano\"\n";
        assert_eq!(model(nano, None).unwrap(), SpeechModel::ChatterboxNano);
        assert_eq!(
            model(nano, Some("chatterbox-turbo")).unwrap(),
            SpeechModel::ChatterboxTurbo
        );
        let err = model("", Some("tts-1")).unwrap_err().to_string();
        assert!(
            err.contains("RESONANCE_MODEL") && err.contains("chatterbox-turbo or chatterbox-nano"),
            "{err}"
        );
    }

    #[test]
    fn s3gen_precision_defaults_to_bf16_and_is_set_by_file_then_flags() {
        assert_eq!(
            Config::load(&args()).unwrap().s3gen_precision,
            S3GenPrecision::Bf16
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("resonance.toml");
        std::fs::write(&file, "s3gen_precision = \"fp32\"\n").unwrap();
        let from_file = Config::load(&SettingsArgs {
            config: Some(file.clone()),
            ..args()
        });
        assert_eq!(from_file.unwrap().s3gen_precision, S3GenPrecision::Fp32);
        let from_flag = Config::load(&SettingsArgs {
            config: Some(file),
            s3gen_precision: Some("bf16".into()),
            ..args()
        });
        assert_eq!(from_flag.unwrap().s3gen_precision, S3GenPrecision::Bf16);
        let err = Config::load(&SettingsArgs {
            s3gen_precision: Some("int8".into()),
            ..args()
        })
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("RESONANCE_S3GEN_PRECISION") && err.contains("fp32 or bf16"),
            "{err}"
        );
    }

    #[test]
    fn precision_defaults_to_the_devices_and_is_set_by_file_then_flags() {
        assert_eq!(Config::load(&args()).unwrap().precision, None);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("resonance.toml");
        std::fs::write(&file, "precision = \"fp32\"\n").unwrap();
        let from_file = Config::load(&SettingsArgs {
            config: Some(file.clone()),
            ..args()
        });
        assert_eq!(from_file.unwrap().precision, Some(Precision::Fp32));
        let from_flag = Config::load(&SettingsArgs {
            config: Some(file),
            precision: Some("int4".into()),
            ..args()
        });
        assert_eq!(from_flag.unwrap().precision, Some(Precision::Int4));
        let err = Config::load(&SettingsArgs {
            precision: Some("fp8".into()),
            ..args()
        })
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("RESONANCE_PRECISION") && err.contains("fp32, bf16, fp16, int8 or int4"),
            "{err}"
        );
    }

    #[test]
    fn device_defaults_to_auto_and_is_set_by_file_then_flags() {
        assert_eq!(Config::load(&args()).unwrap().device, DeviceSetting::Auto);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("resonance.toml");
        std::fs::write(&file, "device = \"cpu\"\n").unwrap();
        let from_file = Config::load(&SettingsArgs {
            config: Some(file.clone()),
            ..args()
        });
        assert_eq!(from_file.unwrap().device, DeviceSetting::Cpu);
        let from_flag = Config::load(&SettingsArgs {
            config: Some(file),
            device: Some("auto".into()),
            ..args()
        });
        assert_eq!(from_flag.unwrap().device, DeviceSetting::Auto);
        let err = Config::load(&SettingsArgs {
            device: Some("gpu".into()),
            ..args()
        })
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("RESONANCE_DEVICE (device)") && err.contains("auto, cpu, cuda or cuda:N"),
            "{err}"
        );
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_device_without_the_feature_stops_startup_naming_the_setting() {
        for gpu in ["cuda", "cuda:1"] {
            let err = Config::load(&SettingsArgs {
                device: Some(gpu.into()),
                ..args()
            })
            .unwrap_err()
            .to_string();
            assert!(
                err.contains("RESONANCE_DEVICE (device)")
                    && err.contains("no cuda feature")
                    && err.contains(gpu),
                "{err}"
            );
        }
    }

    #[cfg(feature = "cuda")]
    #[test]
    fn cuda_device_names_its_gpu() {
        let config = Config::load(&SettingsArgs {
            device: Some("cuda:1".into()),
            ..args()
        });
        assert_eq!(config.unwrap().device, DeviceSetting::Cuda(1));
    }
}
