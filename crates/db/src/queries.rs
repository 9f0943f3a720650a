//! The SQL both backends share, and the macro that implements the storage traits with it.
//! Both dialects accept `$N` placeholders, `RETURNING`, `LIMIT/OFFSET` and `LIKE ... ESCAPE`.

macro_rules! voice_columns {
    () => {
        "id, org_id, name, description, category, language, variant, object_key, consent_by, \
         consent_at, created_at, updated_at"
    };
}

macro_rules! generation_columns {
    () => {
        "id, org_id, voice_id, voice_name, text, temperature, top_p, top_k, repetition_penalty, \
         seed, status, progress, failure_reason, attempts, object_key, created_at, updated_at, \
         finished_at"
    };
}

pub(crate) const USAGE_EVENT_COLUMNS: &str =
    "e.id, e.org_id, e.kind, e.quantity, e.generation_id, e.voice_id, e.created_at";

/// In transaction `$tx` of `$db`: records that `$org` consumed `$quantity` of `$kind`
/// (for generation `$generation` or voice `$voice`, each an `Option<&str>`) at `$now`, and
/// queues the event for the billing provider.
macro_rules! record_usage {
    ($db:expr, $tx:expr, $org:expr, $kind:expr, $quantity:expr, $generation:expr, $voice:expr, $now:expr) => {{
        let event_id: i64 = sqlx::query_scalar(
            "INSERT INTO usage_events (org_id, kind, quantity, generation_id, voice_id, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind($org.as_str())
        .bind($kind.as_str())
        .bind($quantity)
        .bind($generation)
        .bind($voice)
        .bind($now)
        .fetch_one(&mut *$tx)
        .await
        .map_err(|e| $db.error(e))?;
        sqlx::query("INSERT INTO usage_outbox (usage_event_id, next_attempt_at) VALUES ($1, $2)")
            .bind(event_id)
            .bind($now)
            .execute(&mut *$tx)
            .await
            .map_err(|e| $db.error(e))?;
    }};
}

/// Voices visible to organization $1, narrowed by category $2, language $3, variant $4 and
/// name pattern $5 (each NULL for no filter).
macro_rules! visible_voices {
    () => {
        "FROM voices \
         WHERE (variant = 'SYSTEM' OR org_id = $1) \
         AND ($2 IS NULL OR category = $2) \
         AND ($3 IS NULL OR language = $3) \
         AND ($4 IS NULL OR variant = $4) \
         AND ($5 IS NULL OR name_folded LIKE $5 ESCAPE '\\')"
    };
}

/// Generations of organization $1, made with voice $2 (NULL for any).
macro_rules! org_generations {
    () => {
        "FROM generations WHERE org_id = $1 AND ($2 IS NULL OR voice_id = $2)"
    };
}

/// Implements the storage traits and `Database` for a backend struct with fields `pool` (its
/// sqlx pool) and `target` (where it is, for errors) and a method `begin_for_org` (a
/// transaction that parallel ones for the same organization wait on), migrating with the given
/// `sqlx::migrate!` migrator. `$row_lock` ends the claim's row selection: PostgreSQL's
/// `FOR UPDATE SKIP LOCKED`; SQLite needs none, as it runs one writer at a time.
macro_rules! impl_database {
    ($backend:ty, $migrator:expr, $row_lock:literal) => {
        impl $backend {
            fn error(&self, error: sqlx::Error) -> $crate::DbError {
                $crate::DbError::from_sqlx(&self.target, error)
            }
        }

        #[async_trait::async_trait]
        impl $crate::Organizations for $backend {
            async fn create_organization(
                &self,
                name: &resonance_domain::OrganizationName,
            ) -> Result<$crate::Organization, $crate::DbError> {
                sqlx::query_as::<_, $crate::model::OrganizationRow>(
                    "INSERT INTO organizations (id, name, created_at, updated_at) \
                     VALUES ($1, $2, $3, $3) RETURNING id, name, created_at, updated_at",
                )
                .bind(resonance_domain::OrgId::new().as_str())
                .bind(name.as_str())
                .bind($crate::model::now_millis())
                .fetch_one(&self.pool)
                .await
                .map_err(|e| self.error(e))?
                .try_into()
            }

            async fn get_organization(
                &self,
                id: &resonance_domain::OrgId,
            ) -> Result<$crate::Organization, $crate::DbError> {
                sqlx::query_as::<_, $crate::model::OrganizationRow>(
                    "SELECT id, name, created_at, updated_at FROM organizations WHERE id = $1",
                )
                .bind(id.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| self.error(e))?
                .ok_or($crate::DbError::NotFound("organization"))?
                .try_into()
            }
        }

        #[async_trait::async_trait]
        impl $crate::Voices for $backend {
            async fn create_voice(
                &self,
                voice: &$crate::NewVoice,
            ) -> Result<$crate::Voice, $crate::DbError> {
                self.create_voice_within(voice, None).await
            }

            async fn create_voice_within(
                &self,
                voice: &$crate::NewVoice,
                voice_slots: Option<u64>,
            ) -> Result<$crate::Voice, $crate::DbError> {
                let now = $crate::model::now_millis();
                let mut tx = match voice.owner.org_id() {
                    Some(org) => self.begin_for_org(org).await?,
                    None => self.pool.begin().await.map_err(|e| self.error(e))?,
                };
                if let Some(org) = voice.owner.org_id()
                    && voice_slots.is_some()
                {
                    let kept: i64 = sqlx::query_scalar($crate::billing::queries::CUSTOM_VOICE_COUNT)
                        .bind(org.as_str())
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(|e| self.error(e))?;
                    $crate::Plan {
                        voice_slots,
                        ..$crate::Plan::default()
                    }
                    // COUNT(*) is never negative.
                    .check_voice_slots(kept as u64)
                    .map_err($crate::DbError::OverLimit)?;
                }
                let created: $crate::Voice = sqlx::query_as::<_, $crate::model::VoiceRow>(concat!(
                    "INSERT INTO voices (id, org_id, name, name_folded, description, category, \
                     language, variant, object_key, consent_by, consent_at, created_at, \
                     updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12) RETURNING ",
                    voice_columns!()
                ))
                .bind(voice.id.as_str())
                .bind(voice.owner.org_id().map(|org| org.as_str()))
                .bind(voice.name.as_str())
                .bind($crate::model::fold(voice.name.as_str()))
                .bind(voice.description.as_ref().map(|d| d.as_str()))
                .bind(voice.category.as_str())
                .bind(voice.language.as_str())
                .bind(voice.owner.variant().as_str())
                .bind(voice.object_key.as_deref())
                .bind(voice.consent.as_ref().map(|consent| consent.by.as_str()))
                .bind(
                    voice
                        .consent
                        .as_ref()
                        .map(|consent| $crate::model::to_millis(consent.at)),
                )
                .bind(now)
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| self.error(e))?
                .try_into()?;
                // SYSTEM voices belong to no organization and are charged to none.
                if let Some(org) = voice.owner.org_id() {
                    record_usage!(
                        self,
                        tx,
                        org,
                        $crate::UsageKind::VoiceCreation,
                        1_i64,
                        None::<&str>,
                        Some(voice.id.as_str()),
                        now
                    );
                }
                tx.commit().await.map_err(|e| self.error(e))?;
                Ok(created)
            }

            async fn get_voice(
                &self,
                org: &resonance_domain::OrgId,
                id: &resonance_domain::VoiceId,
            ) -> Result<$crate::Voice, $crate::DbError> {
                sqlx::query_as::<_, $crate::model::VoiceRow>(concat!(
                    "SELECT ",
                    voice_columns!(),
                    " FROM voices WHERE id = $1 AND (variant = 'SYSTEM' OR org_id = $2)"
                ))
                .bind(id.as_str())
                .bind(org.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| self.error(e))?
                .ok_or($crate::DbError::NotFound("voice"))?
                .try_into()
            }

            async fn list_voices(
                &self,
                org: &resonance_domain::OrgId,
                filter: &$crate::VoiceFilter,
                page: $crate::Page,
            ) -> Result<$crate::Paged<$crate::Voice>, $crate::DbError> {
                let category = filter.category.map(|c| c.as_str());
                let language = filter.language.as_ref().map(|l| l.as_str());
                let variant = filter.variant.map(|v| v.as_str());
                if filter.name_contains.as_deref().is_some_and(|needle| {
                    needle.chars().count() > resonance_domain::VoiceName::MAX_CHARS
                }) {
                    // No name is that long; nor may a LIKE pattern be (SQLite's limit).
                    return Ok($crate::Paged {
                        items: Vec::new(),
                        total: 0,
                    });
                }
                let name_pattern = filter
                    .name_contains
                    .as_deref()
                    .map($crate::model::contains_pattern);
                let rows = sqlx::query_as::<_, $crate::model::VoiceRow>(concat!(
                    "SELECT ",
                    voice_columns!(),
                    " ",
                    visible_voices!(),
                    " ORDER BY name_folded, id LIMIT $6 OFFSET $7"
                ))
                .bind(org.as_str())
                .bind(category)
                .bind(language)
                .bind(variant)
                .bind(name_pattern.as_deref())
                .bind(i64::from(page.limit()))
                .bind(i64::from(page.offset()))
                .fetch_all(&self.pool)
                .await
                .map_err(|e| self.error(e))?;
                let total: i64 =
                    sqlx::query_scalar(concat!("SELECT COUNT(*) ", visible_voices!()))
                        .bind(org.as_str())
                        .bind(category)
                        .bind(language)
                        .bind(variant)
                        .bind(name_pattern.as_deref())
                        .fetch_one(&self.pool)
                        .await
                        .map_err(|e| self.error(e))?;
                Ok($crate::Paged {
                    items: rows
                        .into_iter()
                        .map(TryInto::try_into)
                        .collect::<Result<_, _>>()?,
                    // COUNT(*) is never negative.
                    total: total as u64,
                })
            }

            async fn all_voices(&self) -> Result<Vec<$crate::Voice>, $crate::DbError> {
                sqlx::query_as::<_, $crate::model::VoiceRow>(concat!(
                    "SELECT ",
                    voice_columns!(),
                    " FROM voices ORDER BY id"
                ))
                .fetch_all(&self.pool)
                .await
                .map_err(|e| self.error(e))?
                .into_iter()
                .map(TryInto::try_into)
                .collect()
            }

            async fn system_voices(&self) -> Result<Vec<$crate::Voice>, $crate::DbError> {
                sqlx::query_as::<_, $crate::model::VoiceRow>(concat!(
                    "SELECT ",
                    voice_columns!(),
                    " FROM voices WHERE variant = 'SYSTEM' ORDER BY name_folded, id"
                ))
                .fetch_all(&self.pool)
                .await
                .map_err(|e| self.error(e))?
                .into_iter()
                .map(TryInto::try_into)
                .collect()
            }

            async fn set_voice_object_key(
                &self,
                owner: &resonance_domain::VoiceOwner,
                id: &resonance_domain::VoiceId,
                object_key: &str,
            ) -> Result<$crate::Voice, $crate::DbError> {
                sqlx::query_as::<_, $crate::model::VoiceRow>(concat!(
                    "UPDATE voices SET object_key = $1, updated_at = $2 \
                     WHERE id = $3 AND variant = $4 AND ($5 IS NULL OR org_id = $5) RETURNING ",
                    voice_columns!()
                ))
                .bind(object_key)
                .bind($crate::model::now_millis())
                .bind(id.as_str())
                .bind(owner.variant().as_str())
                .bind(owner.org_id().map(|org| org.as_str()))
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| self.error(e))?
                .ok_or($crate::DbError::NotFound("voice"))?
                .try_into()
            }

            async fn delete_voice(
                &self,
                owner: &resonance_domain::VoiceOwner,
                id: &resonance_domain::VoiceId,
            ) -> Result<Option<String>, $crate::DbError> {
                sqlx::query_scalar::<_, Option<String>>(
                    "DELETE FROM voices \
                     WHERE id = $1 AND variant = $2 AND ($3 IS NULL OR org_id = $3) \
                     RETURNING object_key",
                )
                .bind(id.as_str())
                .bind(owner.variant().as_str())
                .bind(owner.org_id().map(|org| org.as_str()))
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| self.error(e))?
                .ok_or($crate::DbError::NotFound("voice"))
            }
        }

        #[async_trait::async_trait]
        impl $crate::Generations for $backend {
            async fn create_generation(
                &self,
                generation: &$crate::NewGeneration,
            ) -> Result<$crate::Generation, $crate::DbError> {
                self.create_generation_within(generation, &$crate::Quota::UNLIMITED)
                    .await
            }

            async fn create_generation_within(
                &self,
                generation: &$crate::NewGeneration,
                quota: &$crate::Quota,
            ) -> Result<$crate::Generation, $crate::DbError> {
                let params = &generation.params;
                let mut tx = self.begin_for_org(&generation.org_id).await?;
                if quota.plan != $crate::Plan::default() {
                    let usage = $crate::billing::queries::generation_usage(
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
                        .map_err($crate::DbError::OverLimit)?;
                }
                // Copies the voice's name, and inserts nothing unless the voice is visible
                // to the organization.
                let created: $crate::Generation =
                    sqlx::query_as::<_, $crate::model::GenerationRow>(concat!(
                        "INSERT INTO generations (id, org_id, voice_id, voice_name, text, \
                         temperature, top_p, top_k, repetition_penalty, created_at, updated_at, seed) \
                         SELECT $1, $2, v.id, v.name, $4, $5, $6, $7, $8, $9, $9, $10 FROM voices v \
                         WHERE v.id = $3 AND (v.variant = 'SYSTEM' OR v.org_id = $2) RETURNING ",
                        generation_columns!()
                    ))
                    .bind(generation.id.as_str())
                    .bind(generation.org_id.as_str())
                    .bind(generation.voice_id.as_str())
                    .bind(generation.text.as_str())
                    .bind(params.temperature())
                    .bind(params.top_p())
                    // top_k is at most 10000.
                    .bind(params.top_k() as i32)
                    .bind(params.repetition_penalty())
                    .bind($crate::model::now_millis())
                    .bind(generation.seed.map(i64::from))
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(|e| self.error(e))?
                    .ok_or($crate::DbError::NotFound("voice"))?
                    .try_into()?;
                tx.commit().await.map_err(|e| self.error(e))?;
                Ok(created)
            }

            async fn get_generation(
                &self,
                org: &resonance_domain::OrgId,
                id: &resonance_domain::GenerationId,
            ) -> Result<$crate::Generation, $crate::DbError> {
                sqlx::query_as::<_, $crate::model::GenerationRow>(concat!(
                    "SELECT ",
                    generation_columns!(),
                    " FROM generations WHERE id = $1 AND org_id = $2"
                ))
                .bind(id.as_str())
                .bind(org.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| self.error(e))?
                .ok_or($crate::DbError::NotFound("generation"))?
                .try_into()
            }

            async fn list_generations(
                &self,
                org: &resonance_domain::OrgId,
                filter: &$crate::GenerationFilter,
                page: $crate::Page,
            ) -> Result<$crate::Paged<$crate::Generation>, $crate::DbError> {
                let voice_id = filter.voice_id.as_ref().map(|v| v.as_str());
                let rows = sqlx::query_as::<_, $crate::model::GenerationRow>(concat!(
                    "SELECT ",
                    generation_columns!(),
                    " ",
                    org_generations!(),
                    " ORDER BY created_at DESC, id DESC LIMIT $3 OFFSET $4"
                ))
                .bind(org.as_str())
                .bind(voice_id)
                .bind(i64::from(page.limit()))
                .bind(i64::from(page.offset()))
                .fetch_all(&self.pool)
                .await
                .map_err(|e| self.error(e))?;
                let total: i64 =
                    sqlx::query_scalar(concat!("SELECT COUNT(*) ", org_generations!()))
                        .bind(org.as_str())
                        .bind(voice_id)
                        .fetch_one(&self.pool)
                        .await
                        .map_err(|e| self.error(e))?;
                Ok($crate::Paged {
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
                org: &resonance_domain::OrgId,
                id: &resonance_domain::GenerationId,
                object_key: &str,
            ) -> Result<$crate::Generation, $crate::DbError> {
                sqlx::query_as::<_, $crate::model::GenerationRow>(concat!(
                    "UPDATE generations SET object_key = $1, updated_at = $2 \
                     WHERE id = $3 AND org_id = $4 RETURNING ",
                    generation_columns!()
                ))
                .bind(object_key)
                .bind($crate::model::now_millis())
                .bind(id.as_str())
                .bind(org.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| self.error(e))?
                .ok_or($crate::DbError::NotFound("generation"))?
                .try_into()
            }

            async fn delete_generation(
                &self,
                org: &resonance_domain::OrgId,
                id: &resonance_domain::GenerationId,
            ) -> Result<Option<String>, $crate::DbError> {
                sqlx::query_scalar::<_, Option<String>>(
                    "DELETE FROM generations WHERE id = $1 AND org_id = $2 RETURNING object_key",
                )
                .bind(id.as_str())
                .bind(org.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| self.error(e))?
                .ok_or($crate::DbError::NotFound("generation"))
            }
        }

        #[async_trait::async_trait]
        impl $crate::GenerationJobs for $backend {
            async fn claim_generation(
                &self,
                worker: &str,
                lease: std::time::Duration,
            ) -> Result<Option<$crate::Generation>, $crate::DbError> {
                let now = $crate::model::now_millis();
                sqlx::query(
                    "UPDATE generations SET status = 'failed', failure_reason = $1, \
                     lease_owner = NULL, lease_expires_at = NULL, finished_at = $2, updated_at = $2 \
                     WHERE status = 'running' AND lease_expires_at < $2 AND attempts >= $3",
                )
                .bind("the generation was interrupted too many times; please try again")
                .bind(now)
                .bind($crate::MAX_ATTEMPTS as i32)
                .execute(&self.pool)
                .await
                .map_err(|e| self.error(e))?;
                sqlx::query_as::<_, $crate::model::GenerationRow>(concat!(
                    "UPDATE generations SET status = 'running', lease_owner = $1, \
                     lease_expires_at = $2, attempts = attempts + 1, progress = 0, updated_at = $3 \
                     WHERE id = (SELECT id FROM generations \
                     WHERE status = 'queued' OR (status = 'running' AND lease_expires_at < $3) \
                     ORDER BY created_at, id LIMIT 1 ",
                    $row_lock,
                    ") RETURNING ",
                    generation_columns!()
                ))
                .bind(worker)
                .bind(now + $crate::model::millis(lease))
                .bind(now)
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| self.error(e))?
                .map(TryInto::try_into)
                .transpose()
            }

            async fn heartbeat_generation(
                &self,
                id: &resonance_domain::GenerationId,
                worker: &str,
                lease: std::time::Duration,
                progress: u8,
            ) -> Result<bool, $crate::DbError> {
                let now = $crate::model::now_millis();
                let result = sqlx::query(
                    "UPDATE generations SET lease_expires_at = $1, progress = $2, updated_at = $3 \
                     WHERE id = $4 AND lease_owner = $5 AND status = 'running'",
                )
                .bind(now + $crate::model::millis(lease))
                .bind(i32::from(progress.min(100)))
                .bind(now)
                .bind(id.as_str())
                .bind(worker)
                .execute(&self.pool)
                .await
                .map_err(|e| self.error(e))?;
                Ok(result.rows_affected() == 1)
            }

            async fn complete_generation(
                &self,
                id: &resonance_domain::GenerationId,
                worker: &str,
                object_key: &str,
            ) -> Result<Option<$crate::Generation>, $crate::DbError> {
                let now = $crate::model::now_millis();
                let mut tx = self.pool.begin().await.map_err(|e| self.error(e))?;
                let Some(row) = sqlx::query_as::<_, $crate::model::GenerationRow>(concat!(
                    "UPDATE generations SET status = 'succeeded', progress = 100, \
                     object_key = $1, lease_owner = NULL, lease_expires_at = NULL, \
                     finished_at = $2, updated_at = $2 \
                     WHERE id = $3 AND lease_owner = $4 AND status = 'running' RETURNING ",
                    generation_columns!()
                ))
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
                let generation: $crate::Generation = row.try_into()?;
                record_usage!(
                    self,
                    tx,
                    generation.org_id,
                    $crate::UsageKind::TtsGeneration,
                    // At most 5000 characters.
                    generation.text.char_count() as i64,
                    Some(generation.id.as_str()),
                    None::<&str>,
                    now
                );
                tx.commit().await.map_err(|e| self.error(e))?;
                Ok(Some(generation))
            }

            async fn fail_generation(
                &self,
                id: &resonance_domain::GenerationId,
                worker: &str,
                reason: &str,
            ) -> Result<bool, $crate::DbError> {
                let now = $crate::model::now_millis();
                let result = sqlx::query(
                    "UPDATE generations SET status = 'failed', failure_reason = $1, \
                     lease_owner = NULL, lease_expires_at = NULL, finished_at = $2, updated_at = $2 \
                     WHERE id = $3 AND lease_owner = $4 AND status = 'running'",
                )
                .bind(reason)
                .bind(now)
                .bind(id.as_str())
                .bind(worker)
                .execute(&self.pool)
                .await
                .map_err(|e| self.error(e))?;
                Ok(result.rows_affected() == 1)
            }

            async fn cancel_generation(
                &self,
                org: &resonance_domain::OrgId,
                id: &resonance_domain::GenerationId,
            ) -> Result<$crate::Generation, $crate::DbError> {
                let now = $crate::model::now_millis();
                let cancelled = sqlx::query_as::<_, $crate::model::GenerationRow>(concat!(
                    "UPDATE generations SET status = 'cancelled', lease_owner = NULL, \
                     lease_expires_at = NULL, finished_at = $1, updated_at = $1 \
                     WHERE id = $2 AND org_id = $3 AND status IN ('queued', 'running') RETURNING ",
                    generation_columns!()
                ))
                .bind(now)
                .bind(id.as_str())
                .bind(org.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| self.error(e))?;
                match cancelled {
                    Some(row) => row.try_into(),
                    None => {
                        let existing = $crate::Generations::get_generation(self, org, id).await?;
                        Err($crate::DbError::Conflict(format!(
                            "the generation has already {}",
                            existing.status.as_str()
                        )))
                    }
                }
            }

            async fn generation_status_counts(
                &self,
            ) -> Result<Vec<(resonance_domain::GenerationStatus, u64)>, $crate::DbError> {
                let rows: Vec<(String, i64)> = sqlx::query_as(
                    "SELECT status, COUNT(*) FROM generations GROUP BY status ORDER BY status",
                )
                .fetch_all(&self.pool)
                .await
                .map_err(|e| self.error(e))?;
                rows.into_iter()
                    .map(|(status, count)| {
                        let status = status
                            .parse()
                            .map_err(|e| $crate::DbError::corrupt("generations", "status", e))?;
                        // COUNT(*) is never negative.
                        Ok((status, count as u64))
                    })
                    .collect()
            }
        }

        #[async_trait::async_trait]
        impl $crate::Usage for $backend {
            async fn list_usage_events(
                &self,
                org: &resonance_domain::OrgId,
            ) -> Result<Vec<$crate::UsageEvent>, $crate::DbError> {
                sqlx::query_as::<_, $crate::model::UsageEventRow>(sqlx::AssertSqlSafe(format!(
                    "SELECT {} FROM usage_events e WHERE e.org_id = $1 \
                     ORDER BY e.created_at, e.id",
                    $crate::queries::USAGE_EVENT_COLUMNS
                )))
                .bind(org.as_str())
                .fetch_all(&self.pool)
                .await
                .map_err(|e| self.error(e))?
                .into_iter()
                .map(TryInto::try_into)
                .collect()
            }
        }

        #[async_trait::async_trait]
        impl $crate::Database for $backend {
            async fn migrate(&self) -> Result<(), $crate::DbError> {
                $migrator.run(&self.pool).await.map_err(|e| match e {
                    sqlx::migrate::MigrateError::Execute(e) => self.error(e),
                    other => $crate::DbError::Other(other.into()),
                })
            }

            async fn ping(&self) -> Result<(), $crate::DbError> {
                sqlx::query("SELECT 1")
                    .execute(&self.pool)
                    .await
                    .map_err(|e| self.error(e))?;
                Ok(())
            }
        }
    };
}
