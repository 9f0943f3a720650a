//! The billing SQL both backends share, and the macro that implements `Billing` with it.

/// How many custom voices organization $1 keeps.
macro_rules! custom_voice_count_sql {
    () => {
        "SELECT COUNT(*) FROM voices WHERE org_id = $1 AND variant = 'CUSTOM'"
    };
}

/// On executor `$executor` of `$db`: the `GenerationUsage` of organization `$org` with
/// succeeded generations counted from `$from` to `$to`.
macro_rules! generation_usage {
    ($db:expr, $executor:expr, $org:expr, $from:expr, $to:expr) => {{
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
        .bind($org.as_str())
        .bind($crate::model::to_millis($from))
        .bind($crate::model::to_millis($to))
        .fetch_one($executor)
        .await
        .map_err(|e| $db.error(e))?;
        let corrupt = |e| $crate::DbError::corrupt("usage_events", "quantity", e);
        $crate::GenerationUsage {
            // COUNT(*) and lengths are never negative.
            active_jobs: active_jobs as u64,
            characters: (in_flight as u64)
                .saturating_add(u64::try_from(succeeded).map_err(corrupt)?),
        }
    }};
}

/// Implements `Billing` for a backend struct with a `pool` and an `error` method (see
/// `impl_database!`).
macro_rules! impl_billing {
    ($backend:ty) => {
        #[async_trait::async_trait]
        impl $crate::Billing for $backend {
            async fn org_plan(
                &self,
                org: &resonance_domain::OrgId,
            ) -> Result<Option<$crate::Plan>, $crate::DbError> {
                let row: Option<(Option<i64>, Option<i64>, Option<i64>)> = sqlx::query_as(
                    "SELECT characters_per_month, voice_slots, max_concurrent_jobs \
                     FROM org_plans WHERE org_id = $1",
                )
                .bind(org.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| self.error(e))?;
                row.map(|(characters, voices, jobs)| {
                    let limit = |column: &str, value: Option<i64>| {
                        value
                            .map(u64::try_from)
                            .transpose()
                            .map_err(|e| $crate::DbError::corrupt("org_plans", column, e))
                    };
                    Ok($crate::Plan {
                        characters_per_month: limit("characters_per_month", characters)?,
                        voice_slots: limit("voice_slots", voices)?,
                        max_concurrent_jobs: limit("max_concurrent_jobs", jobs)?,
                    })
                })
                .transpose()
            }

            async fn set_org_plan(
                &self,
                org: &resonance_domain::OrgId,
                plan: &$crate::Plan,
            ) -> Result<(), $crate::DbError> {
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
                .bind($crate::model::now_millis())
                .execute(&self.pool)
                .await
                .map_err(|e| self.error(e))
                .and_then(|done| match done.rows_affected() {
                    0 => Err($crate::DbError::NotFound("organization")),
                    _ => Ok(()),
                })
            }

            async fn clear_org_plan(
                &self,
                org: &resonance_domain::OrgId,
            ) -> Result<(), $crate::DbError> {
                sqlx::query("DELETE FROM org_plans WHERE org_id = $1")
                    .bind(org.as_str())
                    .execute(&self.pool)
                    .await
                    .map_err(|e| self.error(e))?;
                Ok(())
            }

            async fn daily_usage(
                &self,
                org: &resonance_domain::OrgId,
                from: time::OffsetDateTime,
                to: time::OffsetDateTime,
            ) -> Result<Vec<$crate::DailyUsage>, $crate::DbError> {
                const DAY_MILLIS: i64 = 86_400_000;
                let rows: Vec<(i64, i64, i64)> = sqlx::query_as(
                    "SELECT created_at / 86400000 AS day, \
                     CAST(SUM(CASE WHEN kind = 'tts_generation' THEN quantity ELSE 0 END) AS BIGINT), \
                     CAST(SUM(CASE WHEN kind = 'voice_creation' THEN quantity ELSE 0 END) AS BIGINT) \
                     FROM usage_events WHERE org_id = $1 AND created_at >= $2 AND created_at < $3 \
                     GROUP BY day ORDER BY day",
                )
                .bind(org.as_str())
                .bind($crate::model::to_millis(from))
                .bind($crate::model::to_millis(to))
                .fetch_all(&self.pool)
                .await
                .map_err(|e| self.error(e))?;
                rows.into_iter()
                    .map(|(day, characters, voice_creations)| {
                        let corrupt = |e| $crate::DbError::corrupt("usage_events", "quantity", e);
                        Ok($crate::DailyUsage {
                            date: $crate::model::from_millis(
                                "usage_events",
                                "created_at",
                                day * DAY_MILLIS,
                            )?
                            .date(),
                            characters: u64::try_from(characters).map_err(corrupt)?,
                            voice_creations: u64::try_from(voice_creations).map_err(corrupt)?,
                        })
                    })
                    .collect()
            }

            async fn custom_voice_count(
                &self,
                org: &resonance_domain::OrgId,
            ) -> Result<u64, $crate::DbError> {
                let count: i64 = sqlx::query_scalar(custom_voice_count_sql!())
                .bind(org.as_str())
                .fetch_one(&self.pool)
                .await
                .map_err(|e| self.error(e))?;
                // COUNT(*) is never negative.
                Ok(count as u64)
            }

            async fn active_generation_count(
                &self,
                org: &resonance_domain::OrgId,
            ) -> Result<u64, $crate::DbError> {
                let count: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM generations \
                     WHERE org_id = $1 AND status IN ('queued', 'running')",
                )
                .bind(org.as_str())
                .fetch_one(&self.pool)
                .await
                .map_err(|e| self.error(e))?;
                // COUNT(*) is never negative.
                Ok(count as u64)
            }

            async fn generation_usage(
                &self,
                org: &resonance_domain::OrgId,
                from: time::OffsetDateTime,
                to: time::OffsetDateTime,
            ) -> Result<$crate::GenerationUsage, $crate::DbError> {
                Ok(generation_usage!(self, &self.pool, org, from, to))
            }

            async fn due_usage_deliveries(
                &self,
                now: time::OffsetDateTime,
                limit: u32,
            ) -> Result<Vec<$crate::PendingUsage>, $crate::DbError> {
                #[derive(sqlx::FromRow)]
                struct Row {
                    #[sqlx(flatten)]
                    event: $crate::model::UsageEventRow,
                    attempts: i32,
                }
                let rows: Vec<Row> = sqlx::query_as(concat!(
                    "SELECT ",
                    usage_event_columns!(),
                    ", o.attempts FROM usage_outbox o \
                     JOIN usage_events e ON e.id = o.usage_event_id \
                     WHERE o.next_attempt_at <= $1 ORDER BY e.id LIMIT $2"
                ))
                .bind($crate::model::to_millis(now))
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(|e| self.error(e))?;
                rows.into_iter()
                    .map(|row| {
                        Ok($crate::PendingUsage {
                            event: row.event.try_into()?,
                            attempts: u32::try_from(row.attempts).map_err(|e| {
                                $crate::DbError::corrupt("usage_outbox", "attempts", e)
                            })?,
                        })
                    })
                    .collect()
            }

            async fn mark_usage_delivered(&self, event_ids: &[i64]) -> Result<(), $crate::DbError> {
                let mut tx = self.pool.begin().await.map_err(|e| self.error(e))?;
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
                next_attempt_at: time::OffsetDateTime,
                error: &str,
            ) -> Result<(), $crate::DbError> {
                let mut tx = self.pool.begin().await.map_err(|e| self.error(e))?;
                for id in event_ids {
                    sqlx::query(
                        "UPDATE usage_outbox SET attempts = attempts + 1, next_attempt_at = $1, \
                         last_error = $2 WHERE usage_event_id = $3",
                    )
                    .bind($crate::model::to_millis(next_attempt_at))
                    .bind(error)
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| self.error(e))?;
                }
                tx.commit().await.map_err(|e| self.error(e))
            }

            async fn undelivered_usage_count(&self) -> Result<u64, $crate::DbError> {
                let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM usage_outbox")
                    .fetch_one(&self.pool)
                    .await
                    .map_err(|e| self.error(e))?;
                // COUNT(*) is never negative.
                Ok(count as u64)
            }
        }
    };
}
