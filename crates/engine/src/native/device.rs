//! Where the native engine computes: the `device` setting.

use candle_core::{Device, DeviceLocation};

/// Whether this build can run the model on NVIDIA GPUs (cargo feature `cuda`).
pub const CUDA_BUILT: bool = cfg!(feature = "cuda");

/// The `device` setting: `auto`, `cpu`, `cuda` (the first GPU) or `cuda:N`. A build
/// without the `cuda` feature parses only `auto` and `cpu`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceSetting {
    /// The first CUDA GPU when the build has the feature and the machine a GPU, else
    /// the CPU.
    #[default]
    Auto,
    Cpu,
    /// The CUDA GPU of this ordinal.
    Cuda(usize),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceSettingError {
    #[error("unknown device {0:?}: expected auto, cpu, cuda or cuda:N")]
    Unknown(String),
    #[error(
        "device {0:?} needs a build with the cuda feature (docs/gpu.md); this one runs on the CPU only: use auto or cpu"
    )]
    CudaNotBuilt(String),
}

impl std::str::FromStr for DeviceSetting {
    type Err = DeviceSettingError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let name = text.trim().to_ascii_lowercase();
        let setting = match name.as_str() {
            "auto" => Self::Auto,
            "cpu" => Self::Cpu,
            "cuda" => Self::Cuda(0),
            _ => match name.strip_prefix("cuda:").map(str::parse) {
                Some(Ok(ordinal)) => Self::Cuda(ordinal),
                _ => return Err(DeviceSettingError::Unknown(text.to_string())),
            },
        };
        if matches!(setting, Self::Cuda(_)) && !CUDA_BUILT {
            return Err(DeviceSettingError::CudaNotBuilt(text.to_string()));
        }
        Ok(setting)
    }
}

impl std::fmt::Display for DeviceSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Auto => f.write_str("auto"),
            Self::Cpu => f.write_str("cpu"),
            Self::Cuda(ordinal) => write!(f, "cuda:{ordinal}"),
        }
    }
}

impl DeviceSetting {
    /// Opens the device. `auto` falls back to the CPU when no GPU answers; an explicit
    /// `cuda` fails instead.
    pub fn open(self) -> candle_core::Result<Device> {
        match self {
            Self::Cpu => Ok(Device::Cpu),
            Self::Cuda(ordinal) => Device::new_cuda(ordinal),
            Self::Auto if CUDA_BUILT => Device::new_cuda(0).or_else(|e| {
                tracing::info!("no CUDA GPU ({e}); the model runs on the CPU");
                Ok(Device::Cpu)
            }),
            Self::Auto => Ok(Device::Cpu),
        }
    }
}

/// How a device reads in logs and benchmark reports.
pub fn describe(device: &Device) -> String {
    match device.location() {
        DeviceLocation::Cpu => "the CPU".to_string(),
        DeviceLocation::Cuda { gpu_id } => format!("CUDA GPU {gpu_id}"),
        DeviceLocation::Metal { gpu_id } => format!("Metal GPU {gpu_id}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse_and_unknown_ones_are_refused() {
        assert_eq!("auto".parse(), Ok(DeviceSetting::Auto));
        assert_eq!(" CPU ".parse(), Ok(DeviceSetting::Cpu));
        assert_eq!(DeviceSetting::default(), DeviceSetting::Auto);
        for bad in ["gpu", "cuda:", "cuda:x", "cuda:-1", ""] {
            assert_eq!(
                bad.parse::<DeviceSetting>(),
                Err(DeviceSettingError::Unknown(bad.into())),
                "{bad:?}"
            );
        }
        assert!(DeviceSetting::Auto.open().is_ok());
        assert!(matches!(DeviceSetting::Cpu.open(), Ok(Device::Cpu)));
    }

    #[cfg(feature = "cuda")]
    #[test]
    fn cuda_settings_name_their_gpu() {
        assert_eq!("cuda".parse(), Ok(DeviceSetting::Cuda(0)));
        assert_eq!("cuda:3".parse(), Ok(DeviceSetting::Cuda(3)));
        assert_eq!(DeviceSetting::Cuda(3).to_string(), "cuda:3");
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_settings_are_refused_without_the_feature() {
        for gpu in ["cuda", "cuda:1"] {
            let err = gpu.parse::<DeviceSetting>().unwrap_err();
            assert_eq!(err, DeviceSettingError::CudaNotBuilt(gpu.into()));
            assert!(err.to_string().contains("cuda feature"), "{err}");
        }
        assert!(matches!(DeviceSetting::Auto.open(), Ok(Device::Cpu)));
    }
}
