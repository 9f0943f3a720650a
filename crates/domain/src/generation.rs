//! What a text-to-speech generation is made of: the text and the sampling parameters.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GenerationFieldError {
    #[error("text must be 1-{max} characters and not blank", max = GenerationText::MAX_CHARS)]
    Text,
    #[error("temperature must be greater than 0 and at most 2")]
    Temperature,
    #[error("topP must be greater than 0 and at most 1")]
    TopP,
    #[error("topK must be between 1 and 10000")]
    TopK,
    #[error("repetitionPenalty must be between 1 and 2")]
    RepetitionPenalty,
}

/// The text to speak: not blank, at most [`GenerationText::MAX_CHARS`] characters.
/// Kept as given (no trimming): leading pauses and emotion tags are the user's choice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct GenerationText(String);

impl GenerationText {
    pub const MAX_CHARS: usize = 5000;

    pub fn parse(s: &str) -> Result<Self, GenerationFieldError> {
        if s.trim().is_empty() || s.chars().count() > Self::MAX_CHARS {
            return Err(GenerationFieldError::Text);
        }
        Ok(Self(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn char_count(&self) -> usize {
        self.0.chars().count()
    }
}

/// Where a generation job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum GenerationStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl GenerationStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    /// Succeeded, failed and cancelled generations never change state again.
    pub fn is_finished(&self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown generation status {0:?}")]
pub struct UnknownGenerationStatus(String);

impl std::str::FromStr for GenerationStatus {
    type Err = UnknownGenerationStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            Self::Queued,
            Self::Running,
            Self::Succeeded,
            Self::Failed,
            Self::Cancelled,
        ]
        .into_iter()
        .find(|status| status.as_str() == s)
        .ok_or_else(|| UnknownGenerationStatus(s.to_string()))
    }
}

/// The speech model a generation is spoken with. Its name (`chatterbox-turbo`, ...)
/// is how settings and APIs spell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SpeechModel {
    #[default]
    ChatterboxTurbo,
    /// Turbo with a smaller T3 (GPT-2 small).
    ChatterboxNano,
}

impl SpeechModel {
    pub const ALL: [Self; 2] = [Self::ChatterboxTurbo, Self::ChatterboxNano];

    pub fn name(self) -> &'static str {
        match self {
            Self::ChatterboxTurbo => "chatterbox-turbo",
            Self::ChatterboxNano => "chatterbox-nano",
        }
    }

    /// The model named `name`, if there is one.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    /// What people read: `Chatterbox Turbo`.
    pub fn title(self) -> &'static str {
        match self {
            Self::ChatterboxTurbo => "Chatterbox Turbo",
            Self::ChatterboxNano => "Chatterbox Nano",
        }
    }
}

impl std::fmt::Display for SpeechModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Sampling parameters of one generation, each within the bounds the seed gives. Errors name
/// the fields as the API spells them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct GenerationParams {
    temperature: f64,
    top_p: f64,
    top_k: u32,
    repetition_penalty: f64,
    model: SpeechModel,
}

impl GenerationParams {
    pub fn new(
        temperature: f64,
        top_p: f64,
        top_k: u32,
        repetition_penalty: f64,
    ) -> Result<Self, GenerationFieldError> {
        // Written so that NaN fails every check.
        if !(temperature > 0.0 && temperature <= 2.0) {
            return Err(GenerationFieldError::Temperature);
        }
        if !(top_p > 0.0 && top_p <= 1.0) {
            return Err(GenerationFieldError::TopP);
        }
        if !(1..=10_000).contains(&top_k) {
            return Err(GenerationFieldError::TopK);
        }
        if !(1.0..=2.0).contains(&repetition_penalty) {
            return Err(GenerationFieldError::RepetitionPenalty);
        }
        Ok(Self {
            temperature,
            top_p,
            top_k,
            repetition_penalty,
            model: SpeechModel::default(),
        })
    }

    /// These parameters spoken with `model`.
    pub fn with_model(self, model: SpeechModel) -> Self {
        Self { model, ..self }
    }

    pub fn model(&self) -> SpeechModel {
        self.model
    }

    pub fn temperature(&self) -> f64 {
        self.temperature
    }

    pub fn top_p(&self) -> f64 {
        self.top_p
    }

    pub fn top_k(&self) -> u32 {
        self.top_k
    }

    pub fn repetition_penalty(&self) -> f64 {
        self.repetition_penalty
    }
}

/// Chatterbox Turbo's own defaults (`ChatterboxTurboTTS.generate`).
impl Default for GenerationParams {
    fn default() -> Self {
        Self {
            temperature: 0.8,
            top_p: 0.95,
            top_k: 1000,
            repetition_penalty: 1.2,
            model: SpeechModel::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speech_models_are_named_as_they_serialize() {
        for model in SpeechModel::ALL {
            let json = serde_json::to_value(model).unwrap();
            assert_eq!(json, model.name());
            assert_eq!(SpeechModel::parse(model.name()), Some(model));
        }
        assert_eq!(SpeechModel::parse("tts-1"), None);
    }

    #[test]
    fn params_bounds() {
        assert!(GenerationParams::new(2.0, 1.0, 10_000, 2.0).is_ok());
        assert!(GenerationParams::new(0.01, 0.01, 1, 1.0).is_ok());
        assert_eq!(
            GenerationParams::new(0.0, 0.5, 10, 1.0),
            Err(GenerationFieldError::Temperature)
        );
        assert_eq!(
            GenerationParams::new(f64::NAN, 0.5, 10, 1.0),
            Err(GenerationFieldError::Temperature)
        );
        assert_eq!(
            GenerationParams::new(1.0, 1.5, 10, 1.0),
            Err(GenerationFieldError::TopP)
        );
        assert_eq!(
            GenerationParams::new(1.0, 0.5, 0, 1.0),
            Err(GenerationFieldError::TopK)
        );
        assert_eq!(
            GenerationParams::new(1.0, 0.5, 10, 0.9),
            Err(GenerationFieldError::RepetitionPenalty)
        );
        let d = GenerationParams::default();
        assert_eq!(
            GenerationParams::new(
                d.temperature(),
                d.top_p(),
                d.top_k(),
                d.repetition_penalty()
            ),
            Ok(d)
        );
    }

    #[test]
    fn text_bounds() {
        assert!(GenerationText::parse(" \n ").is_err());
        assert!(GenerationText::parse(&"a".repeat(5001)).is_err());
        assert_eq!(
            GenerationText::parse(" Hi [sigh]").unwrap().as_str(),
            " Hi [sigh]"
        );
    }
}
