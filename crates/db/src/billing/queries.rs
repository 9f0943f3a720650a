//! `Billing`, implemented once for every [`Backend`], and the usage queries that creating a
//! voice or a generation checks a plan with.

use async_trait::async_trait;
use resonance_domain::OrgId;
use sqlx::{AssertSqlSafe, ColumnIndex, Encode, Executor, Type};
use time::OffsetDateTime;

use crate::backend::{Backend, ConnectionOf, RowOf, RowsAffected, Stored};
use crate::model::{UsageEventRow, from_millis, now_millis, to_millis};
use crate::queries::USAGE_EVENT_COLUMNS;
use crate::{Billing, DailyUsage, DbError, GenerationUsage, PendingUsage, Plan};

/// How many custom voices organization $1 keeps.
pub(crate) const CUSTOM_VOICE_COUNT: &str =
    "SELECT COUNT(*) FROM voices WHERE org_id = $1 AND variant = 'CUSTOM'";

/// On `executor`: the `GenerationUsage` of organization `org` with succeeded generations
/// counted from `from` to `to`.
pub(crate) async fn generation_usage<'e, B, E>(
    db: &B,
    executor: E,
    org: &OrgId,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> Result<GenerationUsage, DbError>
where
    B: Backend,
    E: Executor<'e, Database = B::Db>,
    for<'q> &'q str: Encode<'q, B::Db> + Type<B::Db>,
    i64: Stored<B::Db>,
    usize: ColumnIndex<RowOf<B>>,
{
    let (active_jobs, in_flight, succeeded): (i64, i64, i64) = sqlx::query_as(
        "SELECT \
         (SELECT COUNT(*) FROM generations \
          WHERE org_id = $1 AND status IN ('queued', 'running')), \
         (SELECT CAST(COALESCE(SUM(LENGTH(text)), 0) AS BIGINT) FROM generations \
          WHERE org_id = $1 AND status IN ('queued', 'running')), \
         (SELECT CAST(COALESCE(SUM(quantity), 0) AS BIGINT) FROM usage_events \
          WHERE org_id = $1 AND kind = 'tts_generation' \
          AND created_at >= $2 AND created_at < $3)",
    )
    .bind(org.as_str())
    .bind(to_millis(from))
    .bind(to_millis(to))
    .fetch_one(executor)
    .await
    .map_err(|e| db.error(e))?;
    let corrupt = |e| DbError::corrupt("usage_events", "quantity", e);
    Ok(GenerationUsage {
        // COUNT(*) and lengths are never negative.
        active_jobs: active_jobs as u64,
        characters: (in_flight as u64).saturating_add(u64::try_from(succeeded).map_err(corrupt)?),
    })
}

#[async_trait]
impl<B> Billing for B
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
    async fn org_plan(&self, org: &OrgId) -> Result<Option<Plan>, DbError> {
        let row: Option<(Option<i64>, Option<i64>, Option<i64>)> = sqlx::query_as(
            "SELECT characters_per_month, voice_slots, max_concurrent_jobs \
             FROM org_plans WHERE org_id = $1",
        )
        .bind(org.as_str())
        .fetch_optional(self.pool())
        .await
        .map_err(|e| self.error(e))?;
        row.map(|(characters, voices, jobs)| {
            let limit = |column: &str, value: Option<i64>| {
                value
                    .map(u64::try_from)
                    .transpose()
                    .map_err(|e| DbError::corrupt("org_plans", column, e))
            };
            Ok(Plan {
                characters_per_month: limit("characters_per_month", characters)?,
                voice_slots: limit("voice_slots", voices)?,
                max_concurrent_jobs: limit("max_concurrent_jobs", jobs)?,
            })
        })
        .transpose()
    }

    async fn set_org_plan(&self, org: &OrgId, plan: &Plan) -> Result<(), DbError> {
        // Limits beyond i64::MAX are as good as unlimited.
        let limit = |value: Option<u64>| value.map(|v| i64::try_from(v).unwrap_or(i64::MAX));
        sqlx::query(
            "INSERT INTO org_plans (org_id, characters_per_month, voice_slots, \
             max_concurrent_jobs, updated_at) \
             SELECT id, $2, $3, $4, $5 FROM organizations WHERE id = $1 \
             ON CONFLICT (org_id) DO UPDATE SET \
             characters_per_month = excluded.characters_per_month, \
             voice_slots = excluded.voice_slots, \
             max_concurrent_jobs = excluded.max_concurrent_jobs, \
             updated_at = excluded.updated_at",
        )
        .bind(org.as_str())
        .bind(limit(plan.characters_per_month))
        .bind(limit(plan.voice_slots))
        .bind(limit(plan.max_concurrent_jobs))
        .bind(now_millis())
        .execute(self.pool())
        .await
        .map_err(|e| self.error(e))
        .and_then(|done| match done.rows_affected() {
            0 => Err(DbError::NotFound("organization")),
            _ => Ok(()),
        })
    }

    async fn clear_org_plan(&self, org: &OrgId) -> Result<(), DbError> {
        sqlx::query("DELETE FROM org_plans WHERE org_id = $1")
            .bind(org.as_str())
            .execute(self.pool())
            .await
            .map_err(|e| self.error(e))?;
        Ok(())
    }

    async fn daily_usage(
        &self,
        org: &OrgId,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Result<Vec<DailyUsage>, DbError> {
        const DAY_MILLIS: i64 = 86_400_000;
        let rows: Vec<(i64, i64, i64)> = sqlx::query_as(
            "SELECT created_at / 86400000 AS day, \
             CAST(SUM(CASE WHEN kind = 'tts_generation' THEN quantity ELSE 0 END) AS BIGINT), \
             CAST(SUM(CASE WHEN kind = 'voice_creation' THEN quantity ELSE 0 END) AS BIGINT) \
             FROM usage_events WHERE org_id = $1 AND created_at >= $2 AND created_at < $3 \
             GROUP BY day ORDER BY day",
        )
        .bind(org.as_str())
        .bind(to_millis(from))
        .bind(to_millis(to))
        .fetch_all(self.pool())
        .await
        .map_err(|e| self.error(e))?;
        rows.into_iter()
            .map(|(day, characters, voice_creations)| {
                let corrupt = |e| DbError::corrupt("usage_events", "quantity", e);
                Ok(DailyUsage {
                    date: from_millis("usage_events", "created_at", day * DAY_MILLIS)?.date(),
                    characters: u64::try_from(characters).map_err(corrupt)?,
                    voice_creations: u64::try_from(voice_creations).map_err(corrupt)?,
                })
            })
            .collect()
    }

    async fn custom_voice_count(&self, org: &OrgId) -> Result<u64, DbError> {
        let count: i64 = sqlx::query_scalar(CUSTOM_VOICE_COUNT)
            .bind(org.as_str())
            .fetch_one(self.pool())
            .await
            .map_err(|e| self.error(e))?;
        // COUNT(*) is never negative.
        Ok(count as u64)
    }

    async fn active_generation_count(&self, org: &OrgId) -> Result<u64, DbError> {
        let count: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM generations \
             WHERE org_id = $1 AND status IN ('queued', 'running')",
        )
        .bind(org.as_str())
        .fetch_one(self.pool())
        .await
        .map_err(|e| self.error(e))?;
        // COUNT(*) is never negative.
        Ok(count as u64)
    }

    async fn generation_usage(
        &self,
        org: &OrgId,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Result<GenerationUsage, DbError> {
        generation_usage(self, self.pool(), org, from, to).await
    }

    async fn due_usage_deliveries(
        &self,
        now: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<PendingUsage>, DbError> {
        #[derive(sqlx::FromRow)]
        struct Row {
            #[sqlx(flatten)]
            event: UsageEventRow,
            attempts: i32,
        }
        let rows: Vec<Row> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {USAGE_EVENT_COLUMNS}, o.attempts FROM usage_outbox o \
             JOIN usage_events e ON e.id = o.usage_event_id \
             WHERE o.next_attempt_at <= $1 ORDER BY e.id LIMIT $2"
        )))
        .bind(to_millis(now))
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await
        .map_err(|e| self.error(e))?;
        rows.into_iter()
            .map(|row| {
                Ok(PendingUsage {
                    event: row.event.try_into()?,
                    attempts: u32::try_from(row.attempts)
                        .map_err(|e| DbError::corrupt("usage_outbox", "attempts", e))?,
                })
            })
            .collect()
    }

    async fn mark_usage_delivered(&self, event_ids: &[i64]) -> Result<(), DbError> {
        let mut tx = self.pool().begin().await.map_err(|e| self.error(e))?;
        for id in event_ids {
            sqlx::query("DELETE FROM usage_outbox WHERE usage_event_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.error(e))?;
        }
        tx.commit().await.map_err(|e| self.error(e))
    }

    async fn postpone_usage_delivery(
        &self,
        event_ids: &[i64],
        next_attempt_at: OffsetDateTime,
        error: &str,
    ) -> Result<(), DbError> {
        let mut tx = self.pool().begin().await.map_err(|e| self.error(e))?;
        for id in event_ids {
            sqlx::query(
                "UPDATE usage_outbox SET attempts = attempts + 1, next_attempt_at = $1, \
                 last_error = $2 WHERE usage_event_id = $3",
            )
            .bind(to_millis(next_attempt_at))
            .bind(error)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.error(e))?;
        }
        tx.commit().await.map_err(|e| self.error(e))
    }

    async fn undelivered_usage_count(&self) -> Result<u64, DbError> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM usage_outbox")
            .fetch_one(self.pool())
            .await
            .map_err(|e| self.error(e))?;
        // COUNT(*) is never negative.
        Ok(count as u64)
    }
}
