//! Billing: the plan an organization has by default and, when configured, Polar.

use resonance_db::Plan;
use resonance_service::billing::BillingSettings;
use resonance_service::billing::polar::{DEFAULT_API_URL, PolarSettings};
use serde::Deserialize;

use super::ConfigError;

/// A plan limit: a number, or `unlimited`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit(pub Option<u64>);

impl std::str::FromStr for Limit {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "unlimited" => Ok(Self(None)),
            number => number
                .parse()
                .map(|n| Self(Some(n)))
                .map_err(|_| format!("expected a whole number or `unlimited`, got {s:?}")),
        }
    }
}

impl<'de> Deserialize<'de> for Limit {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Number(n) => Ok(Self(Some(n))),
            Raw::Text(text) => text.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// The `[plan]` table: the default plan.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanTable {
    pub characters_per_month: Option<Limit>,
    pub voice_slots: Option<Limit>,
    pub max_concurrent_jobs: Option<Limit>,
}

/// The `[polar]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolarTable {
    pub access_token: Option<String>,
    pub product_ids: Option<Vec<String>>,
    pub api_url: Option<String>,
}

/// The default plan, unlimited in what it does not set, and Polar.
pub fn billing(plan: PlanTable, polar: PolarTable) -> Result<BillingSettings, ConfigError> {
    let default_plan = Plan {
        characters_per_month: plan.characters_per_month.and_then(|limit| limit.0),
        voice_slots: plan.voice_slots.and_then(|limit| limit.0),
        max_concurrent_jobs: plan.max_concurrent_jobs.and_then(|limit| limit.0),
    };
    Ok(BillingSettings {
        default_plan,
        polar: polar_settings(polar)?,
        ..BillingSettings::default()
    })
}

/// Polar when an access token is configured; it then needs product ids.
fn polar_settings(polar: PolarTable) -> Result<Option<PolarSettings>, ConfigError> {
    let Some(access_token) = polar.access_token else {
        return Ok(None);
    };
    let product_ids: Vec<String> = polar
        .product_ids
        .unwrap_or_default()
        .into_iter()
        .map(|id| id.trim().to_string())
        .filter(|id| !id.is_empty())
        .collect();
    if product_ids.is_empty() {
        return Err(ConfigError::Missing {
            key: "RESONANCE_POLAR_PRODUCT_IDS (polar.product_ids)",
            why: "required when a Polar access token is configured",
        });
    }
    let api_url = polar.api_url.unwrap_or_else(|| DEFAULT_API_URL.to_string());
    if !(api_url.starts_with("https://") || api_url.starts_with("http://")) {
        return Err(ConfigError::Invalid {
            key: "RESONANCE_POLAR_API_URL (polar.api_url)",
            expected: "an http:// or https:// URL",
            got: api_url,
        });
    }
    Ok(Some(PolarSettings {
        access_token,
        product_ids,
        api_url,
    }))
}

#[cfg(test)]
mod tests {
    use resonance_db::Plan;

    use super::Limit;
    use crate::config::tests::args;
    use crate::config::{Config, SettingsArgs};

    #[test]
    fn the_default_plan_is_unlimited_and_set_by_file_then_flags() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = Config::load(&SettingsArgs {
            data_dir: Some(dir.path().into()),
            ..args()
        })
        .unwrap();
        assert_eq!(cfg.billing.default_plan, Plan::default());
        assert!(cfg.billing.polar.is_none());

        let file = dir.path().join("resonance.toml");
        std::fs::write(
            &file,
            "[plan]\ncharacters_per_month = 100000\nvoice_slots = 3\nmax_concurrent_jobs = \"unlimited\"\n",
        )
        .unwrap();
        let cfg = Config::load(&SettingsArgs {
            config: Some(file),
            plan_voice_slots: Some("unlimited".parse().unwrap()),
            plan_max_concurrent_jobs: Some("2".parse().unwrap()),
            ..args()
        })
        .unwrap();
        assert_eq!(
            cfg.billing.default_plan,
            Plan {
                characters_per_month: Some(100_000),
                voice_slots: None,
                max_concurrent_jobs: Some(2),
            }
        );
        assert!("-3".parse::<Limit>().is_err());
    }

    #[test]
    fn polar_needs_product_ids_and_hides_its_token() {
        let err = Config::load(&SettingsArgs {
            polar_access_token: Some("polar_oat_secret".into()),
            ..args()
        })
        .unwrap_err();
        assert!(
            err.to_string().contains("RESONANCE_POLAR_PRODUCT_IDS"),
            "{err}"
        );
        let cfg = Config::load(&SettingsArgs {
            polar_access_token: Some("polar_oat_secret".into()),
            polar_product_ids: Some(vec!["prod_a".into(), " ".into()]),
            ..args()
        })
        .unwrap();
        let polar = cfg.billing.polar.as_ref().unwrap();
        assert_eq!(polar.product_ids, ["prod_a"]);
        assert_eq!(polar.api_url, "https://api.polar.sh");
        assert!(!format!("{cfg:?}").contains("polar_oat_secret"));
    }
}
