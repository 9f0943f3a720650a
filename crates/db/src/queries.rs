//! The storage traits of `lib.rs`, implemented once for every [`Backend`]. Both dialects
//! accept the SQL: `$N` placeholders, `RETURNING`, `LIMIT/OFFSET` and `LIKE ... ESCAPE`.

use std::time::Duration;

use async_trait::async_trait;
use resonance_domain::{
    GenerationId, GenerationStatus, OrgId, OrganizationName, VoiceId, VoiceName, VoiceOwner,
};
use sqlx::{AssertSqlSafe, ColumnIndex, Encode, Executor, Type};

use crate::backend::{Backend, ConnectionOf, RowOf, RowsAffected, Stored};
use crate::billing::queries::{CUSTOM_VOICE_COUNT, generation_usage};
use crate::model::{
    GenerationRow, OrganizationRow, UsageEventRow, VoiceRow, contains_pattern, fold, millis,
    now_millis, to_millis,
};
use crate::{
    Database, DbError, Generation, GenerationFilter, GenerationJobs, Generations, MAX_ATTEMPTS,
    NewGeneration, NewVoice, Organization, Organizations, Page, Paged, Plan, Quota, Usage,
    UsageEvent, UsageKind, Voice, VoiceConsent, VoiceEdit, VoiceFilter, Voices,
};

const VOICE_COLUMNS: &str = "id, org_id, name, description, category, language, variant, \
     object_key, consent_by, consent_at, created_at, updated_at";

const GENERATION_COLUMNS: &str = "id, org_id, voice_id, voice_name, text, temperature, top_p, \
     top_k, repetition_penalty, seed, status, progress, failure_reason, attempts, object_key, \
     created_at, updated_at, finished_at, model";

pub(crate) const USAGE_EVENT_COLUMNS: &str =
    "e.id, e.org_id, e.kind, e.quantity, e.generation_id, e.voice_id, e.created_at";

/// Voices visible to organization $1, narrowed by category $2, language $3, variant $4 and
/// name pattern $5 (each NULL for no filter).
const VISIBLE_VOICES: &str = "FROM voices \
     WHERE (variant = 'SYSTEM' OR org_id = $1) \
     AND ($2 IS NULL OR category = $2) \
     AND ($3 IS NULL OR language = $3) \
     AND ($4 IS NULL OR variant = $4) \
     AND ($5 IS NULL OR name_folded LIKE $5 ESCAPE '\\')";

/// Generations of organization $1, made with voice $2 (NULL for any).
const ORG_GENERATIONS: &str =
    "FROM generations WHERE org_id = $1 AND ($2 IS NULL OR voice_id = $2)";

/// In `conn`'s transaction: records that `org` consumed `quantity` of `kind` (for
/// `generation` or `voice`) at `now`, and queues the event for the billing provider.
async fn record_usage<B>(
    conn: &mut ConnectionOf<B>,
    org: &OrgId,
    kind: UsageKind,
    quantity: i64,
    generation: Option<&str>,
    voice: Option<&str>,
    now: i64,
) -> Result<(), sqlx::Error>
where
    B: Backend,
    for<'c> &'c mut ConnectionOf<B>: Executor<'c, Database = B::Db>,
    for<'q> &'q str: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> Option<&'q str>: Encode<'q, B::Db>,
    i64: Stored<B::Db>,
    usize: ColumnIndex<RowOf<B>>,
{
    let event_id: i64 = sqlx::query_scalar(
        "INSERT INTO usage_events (org_id, kind, quantity, generation_id, voice_id, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(org.as_str())
    .bind(kind.as_str())
    .bind(quantity)
    .bind(generation)
    .bind(voice)
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query("INSERT INTO usage_outbox (usage_event_id, next_attempt_at) VALUES ($1, $2)")
        .bind(event_id)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

#[async_trait]
impl<B> Organizations for B
where
    B: Backend,
    for<'c> &'c mut ConnectionOf<B>: Executor<'c, Database = B::Db>,
    for<'q> &'q str: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> Option<&'q str>: Encode<'q, B::Db>,
    String: Stored<B::Db>,
    i64: Stored<B::Db>,
    Option<i64>: Stored<B::Db>,
    i32: Stored<B::Db>,
    f64: Stored<B::Db>,
    bool: Stored<B::Db>,
    usize: ColumnIndex<RowOf<B>>,
    for<'n> &'n str: ColumnIndex<RowOf<B>>,
{
    async fn create_organization(&self, name: &OrganizationName) -> Result<Organization, DbError> {
        sqlx::query_as::<_, OrganizationRow>(
            "INSERT INTO organizations (id, name, created_at, updated_at) \
             VALUES ($1, $2, $3, $3) RETURNING id, name, created_at, updated_at",
        )
        .bind(OrgId::new().as_str())
        .bind(name.as_str())
        .bind(now_millis())
        .fetch_one(self.pool())
        .await
        .map_err(|e| self.error(e))?
        .try_into()
    }

    async fn get_organization(&self, id: &OrgId) -> Result<Organization, DbError> {
        sqlx::query_as::<_, OrganizationRow>(
            "SELECT id, name, created_at, updated_at FROM organizations WHERE id = $1",
        )
        .bind(id.as_str())
        .fetch_optional(self.pool())
        .await
        .map_err(|e| self.error(e))?
        .ok_or(DbError::NotFound("organization"))?
        .try_into()
    }
}

#[async_trait]
impl<B> Voices for B
where
    B: Backend,
    for<'c> &'c mut ConnectionOf<B>: Executor<'c, Database = B::Db>,
    for<'q> &'q str: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> Option<&'q str>: Encode<'q, B::Db>,
    String: Stored<B::Db>,
    i64: Stored<B::Db>,
    Option<i64>: Stored<B::Db>,
    i32: Stored<B::Db>,
    f64: Stored<B::Db>,
    bool: Stored<B::Db>,
    usize: ColumnIndex<RowOf<B>>,
    for<'n> &'n str: ColumnIndex<RowOf<B>>,
{
    async fn create_voice(&self, voice: &NewVoice) -> Result<Voice, DbError> {
        self.create_voice_within(voice, None).await
    }

    async fn create_voice_within(
        &self,
        voice: &NewVoice,
        voice_slots: Option<u64>,
    ) -> Result<Voice, DbError> {
        let now = now_millis();
        let mut tx = match voice.owner.org_id() {
            Some(org) => self.begin_for_org(org).await?,
            None => self.pool().begin().await.map_err(|e| self.error(e))?,
        };
        if let Some(org) = voice.owner.org_id()
            && voice_slots.is_some()
        {
            let kept: i64 = sqlx::query_scalar(CUSTOM_VOICE_COUNT)
                .bind(org.as_str())
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| self.error(e))?;
            Plan {
                voice_slots,
                ..Plan::default()
            }
            // COUNT(*) is never negative.
            .check_voice_slots(kept as u64)
            .map_err(DbError::OverLimit)?;
        }
        let created: Voice = sqlx::query_as::<_, VoiceRow>(AssertSqlSafe(format!(
            "INSERT INTO voices (id, org_id, name, name_folded, description, category, \
             language, variant, object_key, consent_by, consent_at, created_at, \
             updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12) \
             RETURNING {VOICE_COLUMNS}"
        )))
        .bind(voice.id.as_str())
        .bind(voice.owner.org_id().map(|org| org.as_str()))
        .bind(voice.name.as_str())
        .bind(fold(voice.name.as_str()))
        .bind(voice.description.as_ref().map(|d| d.as_str()))
        .bind(voice.category.as_str())
        .bind(voice.language.as_str())
        .bind(voice.owner.variant().as_str())
        .bind(voice.object_key.as_deref())
        .bind(voice.consent.as_ref().map(|consent| consent.by.as_str()))
        .bind(voice.consent.as_ref().map(|consent| to_millis(consent.at)))
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| self.error(e))?
        .try_into()?;
        // SYSTEM voices belong to no organization and are charged to none.
        if let Some(org) = voice.owner.org_id() {
            record_usage::<Self>(
                &mut tx,
                org,
                UsageKind::VoiceCreation,
                1,
                None,
                Some(voice.id.as_str()),
                now,
            )
            .await
            .map_err(|e| self.error(e))?;
        }
        tx.commit().await.map_err(|e| self.error(e))?;
        Ok(created)
    }

    async fn get_voice(&self, org: &OrgId, id: &VoiceId) -> Result<Voice, DbError> {
        sqlx::query_as::<_, VoiceRow>(AssertSqlSafe(format!(
            "SELECT {VOICE_COLUMNS} FROM voices \
             WHERE id = $1 AND (variant = 'SYSTEM' OR org_id = $2)"
        )))
        .bind(id.as_str())
        .bind(org.as_str())
        .fetch_optional(self.pool())
        .await
        .map_err(|e| self.error(e))?
        .ok_or(DbError::NotFound("voice"))?
        .try_into()
    }

    async fn list_voices(
        &self,
        org: &OrgId,
        filter: &VoiceFilter,
        page: Page,
    ) -> Result<Paged<Voice>, DbError> {
        let category = filter.category.map(|c| c.as_str());
        let language = filter.language.as_ref().map(|l| l.as_str());
        let variant = filter.variant.map(|v| v.as_str());
        if filter
            .name_contains
            .as_deref()
            .is_some_and(|needle| needle.chars().count() > VoiceName::MAX_CHARS)
        {
            // No name is that long; nor may a LIKE pattern be (SQLite's limit).
            return Ok(Paged {
                items: Vec::new(),
                total: 0,
            });
        }
        let name_pattern = filter.name_contains.as_deref().map(contains_pattern);
        let rows = sqlx::query_as::<_, VoiceRow>(AssertSqlSafe(format!(
            "SELECT {VOICE_COLUMNS} {VISIBLE_VOICES} ORDER BY name_folded, id LIMIT $6 OFFSET $7"
        )))
        .bind(org.as_str())
        .bind(category)
        .bind(language)
        .bind(variant)
        .bind(name_pattern.as_deref())
        .bind(i64::from(page.limit()))
        .bind(i64::from(page.offset()))
        .fetch_all(self.pool())
        .await
        .map_err(|e| self.error(e))?;
        let total: i64 =
            sqlx::query_scalar(AssertSqlSafe(format!("SELECT COUNT(*) {VISIBLE_VOICES}")))
                .bind(org.as_str())
                .bind(category)
                .bind(language)
                .bind(variant)
                .bind(name_pattern.as_deref())
                .fetch_one(self.pool())
                .await
                .map_err(|e| self.error(e))?;
        Ok(Paged {
            items: rows
                .into_iter()
                .map(TryInto::try_into)
                .collect::<Result<_, _>>()?,
            // COUNT(*) is never negative.
            total: total as u64,
        })
    }

    async fn all_voices(&self) -> Result<Vec<Voice>, DbError> {
        sqlx::query_as::<_, VoiceRow>(AssertSqlSafe(format!(
            "SELECT {VOICE_COLUMNS} FROM voices ORDER BY id"
        )))
        .fetch_all(self.pool())
        .await
        .map_err(|e| self.error(e))?
        .into_iter()
        .map(TryInto::try_into)
        .collect()
    }

    async fn system_voices(&self) -> Result<Vec<Voice>, DbError> {
        sqlx::query_as::<_, VoiceRow>(AssertSqlSafe(format!(
            "SELECT {VOICE_COLUMNS} FROM voices WHERE variant = 'SYSTEM' ORDER BY name_folded, id"
        )))
        .fetch_all(self.pool())
        .await
        .map_err(|e| self.error(e))?
        .into_iter()
        .map(TryInto::try_into)
        .collect()
    }

    async fn replace_voice_sample(
        &self,
        owner: &VoiceOwner,
        id: &VoiceId,
        object_key: &str,
        consent: &VoiceConsent,
    ) -> Result<Voice, DbError> {
        sqlx::query_as::<_, VoiceRow>(AssertSqlSafe(format!(
            "UPDATE voices SET object_key = $1, consent_by = $2, consent_at = $3, updated_at = $4 \
             WHERE id = $5 AND variant = $6 AND ($7 IS NULL OR org_id = $7) \
             RETURNING {VOICE_COLUMNS}"
        )))
        .bind(object_key)
        .bind(consent.by.as_str())
        .bind(to_millis(consent.at))
        .bind(now_millis())
        .bind(id.as_str())
        .bind(owner.variant().as_str())
        .bind(owner.org_id().map(|org| org.as_str()))
        .fetch_optional(self.pool())
        .await
        .map_err(|e| self.error(e))?
        .ok_or(DbError::NotFound("voice"))?
        .try_into()
    }

    async fn edit_voice(
        &self,
        owner: &VoiceOwner,
        id: &VoiceId,
        edit: &VoiceEdit,
    ) -> Result<Voice, DbError> {
        sqlx::query_as::<_, VoiceRow>(AssertSqlSafe(format!(
            "UPDATE voices SET name = $1, name_folded = $2, description = $3, category = $4, \
             language = $5, updated_at = $6 \
             WHERE id = $7 AND variant = $8 AND ($9 IS NULL OR org_id = $9) \
             RETURNING {VOICE_COLUMNS}"
        )))
        .bind(edit.name.as_str())
        .bind(fold(edit.name.as_str()))
        .bind(edit.description.as_ref().map(|d| d.as_str()))
        .bind(edit.category.as_str())
        .bind(edit.language.as_str())
        .bind(now_millis())
        .bind(id.as_str())
        .bind(owner.variant().as_str())
        .bind(owner.org_id().map(|org| org.as_str()))
        .fetch_optional(self.pool())
        .await
        .map_err(|e| self.error(e))?
        .ok_or(DbError::NotFound("voice"))?
        .try_into()
    }

    async fn delete_voice(
        &self,
        owner: &VoiceOwner,
        id: &VoiceId,
    ) -> Result<Option<String>, DbError> {
        sqlx::query_scalar::<_, Option<String>>(
            "DELETE FROM voices \
             WHERE id = $1 AND variant = $2 AND ($3 IS NULL OR org_id = $3) \
             RETURNING object_key",
        )
        .bind(id.as_str())
        .bind(owner.variant().as_str())
        .bind(owner.org_id().map(|org| org.as_str()))
        .fetch_optional(self.pool())
        .await
        .map_err(|e| self.error(e))?
        .ok_or(DbError::NotFound("voice"))
    }
}

#[async_trait]
impl<B> Generations for B
where
    B: Backend,
    for<'c> &'c mut ConnectionOf<B>: Executor<'c, Database = B::Db>,
    for<'q> &'q str: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> Option<&'q str>: Encode<'q, B::Db>,
    String: Stored<B::Db>,
    i64: Stored<B::Db>,
    Option<i64>: Stored<B::Db>,
    i32: Stored<B::Db>,
    f64: Stored<B::Db>,
    bool: Stored<B::Db>,
    usize: ColumnIndex<RowOf<B>>,
    for<'n> &'n str: ColumnIndex<RowOf<B>>,
{
    async fn create_generation(&self, generation: &NewGeneration) -> Result<Generation, DbError> {
        self.create_generation_within(generation, &Quota::UNLIMITED)
            .await
    }

    async fn create_generation_within(
        &self,
        generation: &NewGeneration,
        quota: &Quota,
    ) -> Result<Generation, DbError> {
        let params = &generation.params;
        let mut tx = self.begin_for_org(&generation.org_id).await?;
        if quota.plan != Plan::default() {
            let usage = generation_usage(
                self,
                &mut *tx,
                &generation.org_id,
                quota.period_start,
                quota.period_end,
            )
            .await?;
            quota
                .plan
                .check_generation(&usage, generation.text.char_count() as u64)
                .map_err(DbError::OverLimit)?;
        }
        // Copies the voice's name, and inserts nothing unless the voice is visible
        // to the organization.
        let created: Generation = sqlx::query_as::<_, GenerationRow>(AssertSqlSafe(format!(
            "INSERT INTO generations (id, org_id, voice_id, voice_name, text, \
                 temperature, top_p, top_k, repetition_penalty, created_at, updated_at, seed, \
                 model) \
                 SELECT $1, $2, v.id, v.name, $4, $5, $6, $7, $8, $9, $9, $10, $11 FROM voices v \
                 WHERE v.id = $3 AND (v.variant = 'SYSTEM' OR v.org_id = $2) \
                 RETURNING {GENERATION_COLUMNS}"
        )))
        .bind(generation.id.as_str())
        .bind(generation.org_id.as_str())
        .bind(generation.voice_id.as_str())
        .bind(generation.text.as_str())
        .bind(params.temperature())
        .bind(params.top_p())
        // top_k is at most 10000.
        .bind(params.top_k() as i32)
        .bind(params.repetition_penalty())
        .bind(now_millis())
        .bind(generation.seed.map(i64::from))
        .bind(params.model().name())
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| self.error(e))?
        .ok_or(DbError::NotFound("voice"))?
        .try_into()?;
        tx.commit().await.map_err(|e| self.error(e))?;
        Ok(created)
    }

    async fn get_generation(&self, org: &OrgId, id: &GenerationId) -> Result<Generation, DbError> {
        sqlx::query_as::<_, GenerationRow>(AssertSqlSafe(format!(
            "SELECT {GENERATION_COLUMNS} FROM generations WHERE id = $1 AND org_id = $2"
        )))
        .bind(id.as_str())
        .bind(org.as_str())
        .fetch_optional(self.pool())
        .await
        .map_err(|e| self.error(e))?
        .ok_or(DbError::NotFound("generation"))?
        .try_into()
    }

    async fn list_generations(
        &self,
        org: &OrgId,
        filter: &GenerationFilter,
        page: Page,
    ) -> Result<Paged<Generation>, DbError> {
        let voice_id = filter.voice_id.as_ref().map(|v| v.as_str());
        let rows = sqlx::query_as::<_, GenerationRow>(AssertSqlSafe(format!(
            "SELECT {GENERATION_COLUMNS} {ORG_GENERATIONS} \
             ORDER BY created_at DESC, {insertion} DESC LIMIT $3 OFFSET $4",
            insertion = Self::INSERTION_ORDER,
        )))
        .bind(org.as_str())
        .bind(voice_id)
        .bind(i64::from(page.limit()))
        .bind(i64::from(page.offset()))
        .fetch_all(self.pool())
        .await
        .map_err(|e| self.error(e))?;
        let total: i64 =
            sqlx::query_scalar(AssertSqlSafe(format!("SELECT COUNT(*) {ORG_GENERATIONS}")))
                .bind(org.as_str())
                .bind(voice_id)
                .fetch_one(self.pool())
                .await
                .map_err(|e| self.error(e))?;
        Ok(Paged {
            items: rows
                .into_iter()
                .map(TryInto::try_into)
                .collect::<Result<_, _>>()?,
            // COUNT(*) is never negative.
            total: total as u64,
        })
    }

    async fn set_generation_object_key(
        &self,
        org: &OrgId,
        id: &GenerationId,
        object_key: &str,
    ) -> Result<Generation, DbError> {
        sqlx::query_as::<_, GenerationRow>(AssertSqlSafe(format!(
            "UPDATE generations SET object_key = $1, updated_at = $2 \
             WHERE id = $3 AND org_id = $4 RETURNING {GENERATION_COLUMNS}"
        )))
        .bind(object_key)
        .bind(now_millis())
        .bind(id.as_str())
        .bind(org.as_str())
        .fetch_optional(self.pool())
        .await
        .map_err(|e| self.error(e))?
        .ok_or(DbError::NotFound("generation"))?
        .try_into()
    }

    async fn delete_generation(
        &self,
        org: &OrgId,
        id: &GenerationId,
    ) -> Result<Option<String>, DbError> {
        sqlx::query_scalar::<_, Option<String>>(
            "DELETE FROM generations WHERE id = $1 AND org_id = $2 RETURNING object_key",
        )
        .bind(id.as_str())
        .bind(org.as_str())
        .fetch_optional(self.pool())
        .await
        .map_err(|e| self.error(e))?
        .ok_or(DbError::NotFound("generation"))
    }
}

#[async_trait]
impl<B> GenerationJobs for B
where
    B: Backend,
    for<'c> &'c mut ConnectionOf<B>: Executor<'c, Database = B::Db>,
    for<'q> &'q str: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> Option<&'q str>: Encode<'q, B::Db>,
    String: Stored<B::Db>,
    i64: Stored<B::Db>,
    Option<i64>: Stored<B::Db>,
    i32: Stored<B::Db>,
    f64: Stored<B::Db>,
    bool: Stored<B::Db>,
    usize: ColumnIndex<RowOf<B>>,
    for<'n> &'n str: ColumnIndex<RowOf<B>>,
{
    async fn claim_generation(
        &self,
        worker: &str,
        lease: Duration,
    ) -> Result<Option<Generation>, DbError> {
        let now = now_millis();
        sqlx::query(
            "UPDATE generations SET status = 'failed', failure_reason = $1, \
             lease_owner = NULL, lease_expires_at = NULL, finished_at = $2, updated_at = $2 \
             WHERE status = 'running' AND lease_expires_at < $2 AND attempts >= $3",
        )
        .bind("the generation was interrupted too many times; please try again")
        .bind(now)
        .bind(MAX_ATTEMPTS as i32)
        .execute(self.pool())
        .await
        .map_err(|e| self.error(e))?;
        sqlx::query_as::<_, GenerationRow>(AssertSqlSafe(format!(
            "UPDATE generations SET status = 'running', lease_owner = $1, \
             lease_expires_at = $2, attempts = attempts + 1, progress = 0, updated_at = $3 \
             WHERE id = (SELECT id FROM generations \
             WHERE status = 'queued' OR (status = 'running' AND lease_expires_at < $3) \
             ORDER BY created_at, {insertion} LIMIT 1 {row_lock}) RETURNING {GENERATION_COLUMNS}",
            row_lock = Self::ROW_LOCK,
            insertion = Self::INSERTION_ORDER,
        )))
        .bind(worker)
        .bind(now + millis(lease))
        .bind(now)
        .fetch_optional(self.pool())
        .await
        .map_err(|e| self.error(e))?
        .map(TryInto::try_into)
        .transpose()
    }

    async fn heartbeat_generation(
        &self,
        id: &GenerationId,
        worker: &str,
        lease: Duration,
        progress: u8,
    ) -> Result<bool, DbError> {
        let now = now_millis();
        let result = sqlx::query(
            "UPDATE generations SET lease_expires_at = $1, progress = $2, updated_at = $3 \
             WHERE id = $4 AND lease_owner = $5 AND status = 'running'",
        )
        .bind(now + millis(lease))
        .bind(i32::from(progress.min(100)))
        .bind(now)
        .bind(id.as_str())
        .bind(worker)
        .execute(self.pool())
        .await
        .map_err(|e| self.error(e))?;
        Ok(result.rows_affected() == 1)
    }

    async fn complete_generation(
        &self,
        id: &GenerationId,
        worker: &str,
        object_key: &str,
    ) -> Result<Option<Generation>, DbError> {
        let now = now_millis();
        let mut tx = self.pool().begin().await.map_err(|e| self.error(e))?;
        let Some(row) = sqlx::query_as::<_, GenerationRow>(AssertSqlSafe(format!(
            "UPDATE generations SET status = 'succeeded', progress = 100, \
             object_key = $1, lease_owner = NULL, lease_expires_at = NULL, \
             finished_at = $2, updated_at = $2 \
             WHERE id = $3 AND lease_owner = $4 AND status = 'running' \
             RETURNING {GENERATION_COLUMNS}"
        )))
        .bind(object_key)
        .bind(now)
        .bind(id.as_str())
        .bind(worker)
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| self.error(e))?
        else {
            return Ok(None);
        };
        let generation: Generation = row.try_into()?;
        record_usage::<Self>(
            &mut tx,
            &generation.org_id,
            UsageKind::TtsGeneration,
            // At most 5000 characters.
            generation.text.char_count() as i64,
            Some(generation.id.as_str()),
            None,
            now,
        )
        .await
        .map_err(|e| self.error(e))?;
        tx.commit().await.map_err(|e| self.error(e))?;
        Ok(Some(generation))
    }

    async fn fail_generation(
        &self,
        id: &GenerationId,
        worker: &str,
        reason: &str,
    ) -> Result<bool, DbError> {
        let now = now_millis();
        let result = sqlx::query(
            "UPDATE generations SET status = 'failed', failure_reason = $1, \
             lease_owner = NULL, lease_expires_at = NULL, finished_at = $2, updated_at = $2 \
             WHERE id = $3 AND lease_owner = $4 AND status = 'running'",
        )
        .bind(reason)
        .bind(now)
        .bind(id.as_str())
        .bind(worker)
        .execute(self.pool())
        .await
        .map_err(|e| self.error(e))?;
        Ok(result.rows_affected() == 1)
    }

    async fn cancel_generation(
        &self,
        org: &OrgId,
        id: &GenerationId,
    ) -> Result<Generation, DbError> {
        let now = now_millis();
        let cancelled = sqlx::query_as::<_, GenerationRow>(AssertSqlSafe(format!(
            "UPDATE generations SET status = 'cancelled', lease_owner = NULL, \
             lease_expires_at = NULL, finished_at = $1, updated_at = $1 \
             WHERE id = $2 AND org_id = $3 AND status IN ('queued', 'running') \
             RETURNING {GENERATION_COLUMNS}"
        )))
        .bind(now)
        .bind(id.as_str())
        .bind(org.as_str())
        .fetch_optional(self.pool())
        .await
        .map_err(|e| self.error(e))?;
        match cancelled {
            Some(row) => row.try_into(),
            None => {
                let existing = Generations::get_generation(self, org, id).await?;
                Err(DbError::Conflict(format!(
                    "the generation has already {}",
                    existing.status.as_str()
                )))
            }
        }
    }

    async fn generation_status_counts(&self) -> Result<Vec<(GenerationStatus, u64)>, DbError> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT status, COUNT(*) FROM generations GROUP BY status ORDER BY status",
        )
        .fetch_all(self.pool())
        .await
        .map_err(|e| self.error(e))?;
        rows.into_iter()
            .map(|(status, count)| {
                let status = status
                    .parse()
                    .map_err(|e| DbError::corrupt("generations", "status", e))?;
                // COUNT(*) is never negative.
                Ok((status, count as u64))
            })
            .collect()
    }
}

#[async_trait]
impl<B> Usage for B
where
    B: Backend,
    for<'c> &'c mut ConnectionOf<B>: Executor<'c, Database = B::Db>,
    for<'q> &'q str: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> Option<&'q str>: Encode<'q, B::Db>,
    String: Stored<B::Db>,
    i64: Stored<B::Db>,
    Option<i64>: Stored<B::Db>,
    i32: Stored<B::Db>,
    f64: Stored<B::Db>,
    bool: Stored<B::Db>,
    usize: ColumnIndex<RowOf<B>>,
    for<'n> &'n str: ColumnIndex<RowOf<B>>,
{
    async fn list_usage_events(&self, org: &OrgId) -> Result<Vec<UsageEvent>, DbError> {
        sqlx::query_as::<_, UsageEventRow>(AssertSqlSafe(format!(
            "SELECT {USAGE_EVENT_COLUMNS} FROM usage_events e WHERE e.org_id = $1 \
             ORDER BY e.created_at, e.id"
        )))
        .bind(org.as_str())
        .fetch_all(self.pool())
        .await
        .map_err(|e| self.error(e))?
        .into_iter()
        .map(TryInto::try_into)
        .collect()
    }
}

#[async_trait]
impl<B> Database for B
where
    B: Backend,
    for<'c> &'c mut ConnectionOf<B>: Executor<'c, Database = B::Db>,
    for<'q> &'q str: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> Option<&'q str>: Encode<'q, B::Db>,
    String: Stored<B::Db>,
    i64: Stored<B::Db>,
    Option<i64>: Stored<B::Db>,
    i32: Stored<B::Db>,
    f64: Stored<B::Db>,
    bool: Stored<B::Db>,
    usize: ColumnIndex<RowOf<B>>,
    for<'n> &'n str: ColumnIndex<RowOf<B>>,
{
    async fn migrate(&self) -> Result<(), DbError> {
        Self::MIGRATOR.run(self.pool()).await.map_err(|e| match e {
            sqlx::migrate::MigrateError::Execute(e) => self.error(e),
            other => DbError::Other(other.into()),
        })
    }

    async fn ping(&self) -> Result<(), DbError> {
        sqlx::query("SELECT 1")
            .execute(self.pool())
            .await
            .map_err(|e| self.error(e))?;
        Ok(())
    }
}
