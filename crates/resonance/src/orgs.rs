//! Operator commands for organizations' plans: `resonance orgs set-plan|clear-plan|show-plan`.

use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use resonance_db::{Database, Plan};
use resonance_domain::OrgId;
use resonance_service::billing::Period;
use time::OffsetDateTime;

use crate::config::{Config, Limit, SettingsArgs};
use crate::serve::connect_db;

#[derive(Subcommand)]
pub enum OrgsCommand {
    /// Give an organization its own plan; limits not given keep their current value
    #[command(name = "set-plan")]
    Set(SetPlanArgs),
    /// Return an organization to the instance default plan
    #[command(name = "clear-plan")]
    Clear(OrgArgs),
    /// Show an organization's plan and this month's usage
    #[command(name = "show-plan")]
    Show(OrgArgs),
}

#[derive(Args)]
pub struct SetPlanArgs {
    /// The organization's id
    org_id: String,
    /// Characters per calendar month (UTC), or `unlimited`
    #[arg(long)]
    characters_per_month: Option<Limit>,
    /// Custom voices it may keep, or `unlimited`
    #[arg(long)]
    voice_slots: Option<Limit>,
    /// Generations queued or running at once, or `unlimited`
    #[arg(long)]
    max_concurrent_jobs: Option<Limit>,
}

#[derive(Args)]
pub struct OrgArgs {
    /// The organization's id
    org_id: String,
}

fn org_id(raw: &str) -> anyhow::Result<OrgId> {
    OrgId::parse(raw).with_context(|| format!("{raw:?} is not an organization id"))
}

pub async fn run(args: &SettingsArgs, command: OrgsCommand) -> anyhow::Result<ExitCode> {
    let config = Config::load(args)?;
    let db = connect_db(&config).await?;
    db.migrate().await.context("applying database migrations")?;
    let default_plan = config.billing.default_plan;
    match command {
        OrgsCommand::Set(set) => {
            let org = org_id(&set.org_id)?;
            let name = organization_name(db.as_ref(), &org).await?;
            let current = db.org_plan(&org).await?.unwrap_or(default_plan);
            let pick = |given: Option<Limit>, current| given.map_or(current, |limit| limit.0);
            let plan = Plan {
                characters_per_month: pick(set.characters_per_month, current.characters_per_month),
                voice_slots: pick(set.voice_slots, current.voice_slots),
                max_concurrent_jobs: pick(set.max_concurrent_jobs, current.max_concurrent_jobs),
            };
            db.set_org_plan(&org, &plan)
                .await
                .with_context(|| format!("setting the plan of {org}"))?;
            println!("{org} ({name}) now has its own plan:");
            print_plan(&plan);
        }
        OrgsCommand::Clear(clear) => {
            let org = org_id(&clear.org_id)?;
            let name = organization_name(db.as_ref(), &org).await?;
            db.clear_org_plan(&org).await?;
            println!("{org} ({name}) now follows the default plan:");
            print_plan(&default_plan);
        }
        OrgsCommand::Show(show) => {
            let org = org_id(&show.org_id)?;
            let name = organization_name(db.as_ref(), &org).await?;
            let (plan, whose) = match db.org_plan(&org).await? {
                Some(plan) => (plan, "its own plan"),
                None => (default_plan, "the default plan"),
            };
            println!("{org} ({name}) follows {whose}:");
            print_plan(&plan);
            let period = Period::containing(OffsetDateTime::now_utc());
            let days = db.daily_usage(&org, period.start, period.end).await?;
            println!(
                "this month ({} to {}): {} characters, {} custom voices kept",
                period.start.date(),
                period
                    .end
                    .date()
                    .previous_day()
                    .unwrap_or(period.end.date()),
                days.iter().map(|d| d.characters).sum::<u64>(),
                db.custom_voice_count(&org).await?
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn organization_name(db: &dyn Database, org: &OrgId) -> anyhow::Result<String> {
    let organization = db
        .get_organization(org)
        .await
        .with_context(|| format!("looking up organization {org}"))?;
    Ok(organization.name.as_str().to_string())
}

fn print_plan(plan: &Plan) {
    let limit = |value: Option<u64>| value.map_or("unlimited".to_string(), |n| n.to_string());
    println!(
        "  characters per month: {}",
        limit(plan.characters_per_month)
    );
    println!("  voice slots: {}", limit(plan.voice_slots));
    println!("  max concurrent jobs: {}", limit(plan.max_concurrent_jobs));
}
