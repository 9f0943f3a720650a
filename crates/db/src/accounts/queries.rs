//! `Accounts`, implemented once for every [`Backend`].

use async_trait::async_trait;
use resonance_domain::{ApiKeyId, Email, InviteId, OrgId, OrganizationName, Role, UserId};
use sqlx::{AssertSqlSafe, ColumnIndex, Encode, Executor, Type};
use time::OffsetDateTime;

use super::{
    ApiKeyCredentialsRow, ApiKeyRow, InviteRow, MemberRow, MembershipRow, SessionRow,
    TOUCH_INTERVAL_MS, UserCredentialsRow, UserRow, millis,
};
use crate::backend::{Backend, ConnectionOf, RowOf, RowsAffected, Stored};
use crate::model::{OrganizationRow, now_millis};
use crate::{
    Accounts, ApiKey, ApiKeyCredentials, DbError, Invite, Member, Membership, NewApiKey, NewInvite,
    NewSession, Organization, Session, User, UserCredentials,
};

/// Ends every session of user $1 but the one whose token hash is $2.
const END_OTHER_SESSIONS: &str = "DELETE FROM sessions WHERE user_id = $1 AND token_hash <> $2";

const USER_COLUMNS: &str = "u.id, u.email, u.is_operator, u.created_at";

const API_KEY_COLUMNS: &str =
    "id, org_id, name, prefix, created_by, created_at, last_used_at, revoked_at";

const INVITE_COLUMNS: &str = "id, org_id, role, email, created_by, created_at, expires_at";

/// In `conn`'s transaction, locks organization `org`'s row until the transaction ends (a
/// write lock on the whole database in SQLite), so that checks on its memberships stay true
/// until the change they guard commits. `NotFound` when there is no such organization.
async fn lock_organization<B>(
    db: &B,
    conn: &mut ConnectionOf<B>,
    org: &OrgId,
) -> Result<(), DbError>
where
    B: Backend,
    for<'c> &'c mut ConnectionOf<B>: Executor<'c, Database = B::Db>,
    for<'q> &'q str: Encode<'q, B::Db> + Type<B::Db>,
{
    let locked = sqlx::query("UPDATE organizations SET updated_at = updated_at WHERE id = $1")
        .bind(org.as_str())
        .execute(&mut *conn)
        .await
        .map_err(|e| db.error(e))?;
    if locked.rows_affected() == 0 {
        return Err(DbError::NotFound("organization"));
    }
    Ok(())
}

/// In `conn`'s transaction: fails with `NotFound("member")` unless `user` is a member of
/// `org`, and with `Conflict` when they are its last admin and would stop being an admin
/// (`new_role` is their new role, `None` when they leave).
async fn check_last_admin<B>(
    db: &B,
    conn: &mut ConnectionOf<B>,
    org: &OrgId,
    user: &UserId,
    new_role: Option<Role>,
) -> Result<(), DbError>
where
    B: Backend,
    for<'c> &'c mut ConnectionOf<B>: Executor<'c, Database = B::Db>,
    for<'q> &'q str: Encode<'q, B::Db> + Type<B::Db>,
    String: Stored<B::Db>,
    i64: Stored<B::Db>,
    usize: ColumnIndex<RowOf<B>>,
{
    let current: Option<String> =
        sqlx::query_scalar("SELECT role FROM memberships WHERE org_id = $1 AND user_id = $2")
            .bind(org.as_str())
            .bind(user.as_str())
            .fetch_optional(&mut *conn)
            .await
            .map_err(|e| db.error(e))?;
    let current = current.ok_or(DbError::NotFound("member"))?;
    if current == "admin" && new_role != Some(Role::Admin) {
        let admins: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM memberships WHERE org_id = $1 AND role = 'admin'",
        )
        .bind(org.as_str())
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| db.error(e))?;
        if admins <= 1 {
            return Err(DbError::Conflict(
                "an organization needs at least one admin: make another member admin first"
                    .to_string(),
            ));
        }
    }
    Ok(())
}

#[async_trait]
impl<B> Accounts for B
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
    async fn create_user(
        &self,
        email: &Email,
        password_hash: &str,
    ) -> Result<Option<User>, DbError> {
        // `WHERE true` keeps SQLite from reading ON CONFLICT as part of the SELECT.
        sqlx::query_as::<_, UserRow>(
            "INSERT INTO users (id, email, password_hash, is_operator, created_at) \
             SELECT $1, $2, $3, NOT EXISTS (SELECT 1 FROM users), $4 WHERE true \
             ON CONFLICT (email) DO NOTHING \
             RETURNING id, email, is_operator, created_at",
        )
        .bind(UserId::new().as_str())
        .bind(email.as_str())
        .bind(password_hash)
        .bind(now_millis())
        .fetch_optional(self.pool())
        .await
        .map_err(|e| self.error(e))?
        .map(TryInto::try_into)
        .transpose()
    }

    async fn get_user(&self, id: &UserId) -> Result<User, DbError> {
        sqlx::query_as::<_, UserRow>(AssertSqlSafe(format!(
            "SELECT {USER_COLUMNS} FROM users u WHERE u.id = $1"
        )))
        .bind(id.as_str())
        .fetch_optional(self.pool())
        .await
        .map_err(|e| self.error(e))?
        .ok_or(DbError::NotFound("user"))?
        .try_into()
    }

    async fn user_credentials(&self, email: &Email) -> Result<Option<UserCredentials>, DbError> {
        sqlx::query_as::<_, UserCredentialsRow>(AssertSqlSafe(format!(
            "SELECT {USER_COLUMNS}, u.password_hash FROM users u WHERE u.email = $1"
        )))
        .bind(email.as_str())
        .fetch_optional(self.pool())
        .await
        .map_err(|e| self.error(e))?
        .map(TryInto::try_into)
        .transpose()
    }

    async fn create_organization_with_admin(
        &self,
        name: &OrganizationName,
        admin: &UserId,
    ) -> Result<Organization, DbError> {
        let now = now_millis();
        let mut tx = self.pool().begin().await.map_err(|e| self.error(e))?;
        let organization: Organization = sqlx::query_as::<_, OrganizationRow>(
            "INSERT INTO organizations (id, name, created_at, updated_at) \
                 VALUES ($1, $2, $3, $3) RETURNING id, name, created_at, updated_at",
        )
        .bind(OrgId::new().as_str())
        .bind(name.as_str())
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| self.error(e))?
        .try_into()?;
        sqlx::query(
            "INSERT INTO memberships (org_id, user_id, role, created_at) \
             VALUES ($1, $2, 'admin', $3)",
        )
        .bind(organization.id.as_str())
        .bind(admin.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(|e| self.error(e))?;
        tx.commit().await.map_err(|e| self.error(e))?;
        Ok(organization)
    }

    async fn memberships_of(&self, user: &UserId) -> Result<Vec<Membership>, DbError> {
        sqlx::query_as::<_, MembershipRow>(
            "SELECT o.id, o.name, o.created_at, o.updated_at, m.role \
             FROM memberships m JOIN organizations o ON o.id = m.org_id \
             WHERE m.user_id = $1 ORDER BY m.created_at, o.id",
        )
        .bind(user.as_str())
        .fetch_all(self.pool())
        .await
        .map_err(|e| self.error(e))?
        .into_iter()
        .map(TryInto::try_into)
        .collect()
    }

    async fn role_in(&self, org: &OrgId, user: &UserId) -> Result<Option<Role>, DbError> {
        let role: Option<String> =
            sqlx::query_scalar("SELECT role FROM memberships WHERE org_id = $1 AND user_id = $2")
                .bind(org.as_str())
                .bind(user.as_str())
                .fetch_optional(self.pool())
                .await
                .map_err(|e| self.error(e))?;
        role.map(|role| {
            role.parse()
                .map_err(|e| DbError::corrupt("memberships", "role", e))
        })
        .transpose()
    }

    async fn list_members(&self, org: &OrgId) -> Result<Vec<Member>, DbError> {
        sqlx::query_as::<_, MemberRow>(
            "SELECT m.user_id, u.email, m.role, m.created_at \
             FROM memberships m JOIN users u ON u.id = m.user_id \
             WHERE m.org_id = $1 ORDER BY m.created_at, m.user_id",
        )
        .bind(org.as_str())
        .fetch_all(self.pool())
        .await
        .map_err(|e| self.error(e))?
        .into_iter()
        .map(TryInto::try_into)
        .collect()
    }

    async fn set_member_role(
        &self,
        org: &OrgId,
        user: &UserId,
        role: Role,
    ) -> Result<Member, DbError> {
        let mut tx = self.pool().begin().await.map_err(|e| self.error(e))?;
        lock_organization(self, &mut tx, org).await?;
        check_last_admin(self, &mut tx, org, user, Some(role)).await?;
        sqlx::query("UPDATE memberships SET role = $1 WHERE org_id = $2 AND user_id = $3")
            .bind(role.as_str())
            .bind(org.as_str())
            .bind(user.as_str())
            .execute(&mut *tx)
            .await
            .map_err(|e| self.error(e))?;
        let member: Member = sqlx::query_as::<_, MemberRow>(
            "SELECT m.user_id, u.email, m.role, m.created_at \
             FROM memberships m JOIN users u ON u.id = m.user_id \
             WHERE m.org_id = $1 AND m.user_id = $2",
        )
        .bind(org.as_str())
        .bind(user.as_str())
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| self.error(e))?
        .try_into()?;
        tx.commit().await.map_err(|e| self.error(e))?;
        Ok(member)
    }

    async fn remove_member(&self, org: &OrgId, user: &UserId) -> Result<(), DbError> {
        let mut tx = self.pool().begin().await.map_err(|e| self.error(e))?;
        lock_organization(self, &mut tx, org).await?;
        check_last_admin(self, &mut tx, org, user, None).await?;
        sqlx::query("DELETE FROM memberships WHERE org_id = $1 AND user_id = $2")
            .bind(org.as_str())
            .bind(user.as_str())
            .execute(&mut *tx)
            .await
            .map_err(|e| self.error(e))?;
        tx.commit().await.map_err(|e| self.error(e))
    }

    async fn create_session(&self, session: &NewSession) -> Result<(), DbError> {
        let now = now_millis();
        sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND expires_at <= $2")
            .bind(session.user_id.as_str())
            .bind(now)
            .execute(self.pool())
            .await
            .map_err(|e| self.error(e))?;
        sqlx::query(
            "INSERT INTO sessions \
             (token_hash, user_id, active_org_id, expires_at, created_at, last_seen_at) \
             VALUES ($1, $2, $3, $4, $5, $5)",
        )
        .bind(&session.token_hash)
        .bind(session.user_id.as_str())
        .bind(session.active_org.as_ref().map(|org| org.as_str()))
        .bind(millis(session.expires_at))
        .bind(now)
        .execute(self.pool())
        .await
        .map_err(|e| self.error(e))?;
        Ok(())
    }

    async fn session(&self, token_hash: &str) -> Result<Option<Session>, DbError> {
        let now = now_millis();
        let row = sqlx::query_as::<_, SessionRow>(AssertSqlSafe(format!(
            "SELECT s.token_hash, {USER_COLUMNS}, s.active_org_id, m.role, s.expires_at, \
             s.last_seen_at \
             FROM sessions s JOIN users u ON u.id = s.user_id \
             LEFT JOIN memberships m \
             ON m.org_id = s.active_org_id AND m.user_id = s.user_id \
             WHERE s.token_hash = $1 AND s.expires_at > $2"
        )))
        .bind(token_hash)
        .bind(now)
        .fetch_optional(self.pool())
        .await
        .map_err(|e| self.error(e))?;
        let Some(row) = row else {
            return Ok(None);
        };
        if now - row.last_seen_at() >= TOUCH_INTERVAL_MS {
            sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE token_hash = $2")
                .bind(now)
                .bind(token_hash)
                .execute(self.pool())
                .await
                .map_err(|e| self.error(e))?;
        }
        row.try_into().map(Some)
    }

    async fn set_session_org(&self, token_hash: &str, org: &OrgId) -> Result<(), DbError> {
        let updated = sqlx::query("UPDATE sessions SET active_org_id = $1 WHERE token_hash = $2")
            .bind(org.as_str())
            .bind(token_hash)
            .execute(self.pool())
            .await
            .map_err(|e| self.error(e))?;
        if updated.rows_affected() == 0 {
            return Err(DbError::NotFound("session"));
        }
        Ok(())
    }

    async fn delete_session(&self, token_hash: &str) -> Result<(), DbError> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(self.pool())
            .await
            .map_err(|e| self.error(e))?;
        Ok(())
    }

    async fn change_password(
        &self,
        user: &UserId,
        password_hash: &str,
        keep_session: &str,
    ) -> Result<(), DbError> {
        let mut tx = self.pool().begin().await.map_err(|e| self.error(e))?;
        let updated = sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
            .bind(password_hash)
            .bind(user.as_str())
            .execute(&mut *tx)
            .await
            .map_err(|e| self.error(e))?;
        if updated.rows_affected() == 0 {
            return Err(DbError::NotFound("user"));
        }
        sqlx::query(END_OTHER_SESSIONS)
            .bind(user.as_str())
            .bind(keep_session)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.error(e))?;
        tx.commit().await.map_err(|e| self.error(e))
    }

    async fn create_password_reset(
        &self,
        user: &UserId,
        token_hash: &str,
        expires_at: OffsetDateTime,
    ) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO password_resets (token_hash, user_id, expires_at, created_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(token_hash)
        .bind(user.as_str())
        .bind(millis(expires_at))
        .bind(now_millis())
        .execute(self.pool())
        .await
        .map_err(|e| self.error(e))?;
        Ok(())
    }

    async fn reset_password(
        &self,
        token_hash: &str,
        password_hash: &str,
    ) -> Result<UserId, DbError> {
        let mut tx = self.pool().begin().await.map_err(|e| self.error(e))?;
        let user: String = sqlx::query_scalar(
            "DELETE FROM password_resets WHERE token_hash = $1 AND expires_at > $2 \
             RETURNING user_id",
        )
        .bind(token_hash)
        .bind(now_millis())
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| self.error(e))?
        .ok_or(DbError::NotFound("password reset"))?;
        sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
            .bind(password_hash)
            .bind(user.as_str())
            .execute(&mut *tx)
            .await
            .map_err(|e| self.error(e))?;
        for ended in [
            "DELETE FROM sessions WHERE user_id = $1",
            "DELETE FROM password_resets WHERE user_id = $1",
        ] {
            sqlx::query(ended)
                .bind(user.as_str())
                .execute(&mut *tx)
                .await
                .map_err(|e| self.error(e))?;
        }
        tx.commit().await.map_err(|e| self.error(e))?;
        UserId::parse(&user).map_err(|e| DbError::corrupt("password_resets", "user_id", e))
    }

    async fn end_other_sessions(&self, user: &UserId, keep_session: &str) -> Result<u64, DbError> {
        let ended = sqlx::query(END_OTHER_SESSIONS)
            .bind(user.as_str())
            .bind(keep_session)
            .execute(self.pool())
            .await
            .map_err(|e| self.error(e))?;
        Ok(ended.rows_affected())
    }

    async fn create_invite(&self, invite: &NewInvite) -> Result<Invite, DbError> {
        sqlx::query_as::<_, InviteRow>(AssertSqlSafe(format!(
            "INSERT INTO invites \
             (id, org_id, token_hash, role, created_by, created_at, expires_at, email) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {INVITE_COLUMNS}"
        )))
        .bind(invite.id.as_str())
        .bind(invite.org_id.as_str())
        .bind(&invite.token_hash)
        .bind(invite.role.as_str())
        .bind(invite.created_by.as_str())
        .bind(now_millis())
        .bind(millis(invite.expires_at))
        .bind(invite.email.as_ref().map(|email| email.as_str()))
        .fetch_one(self.pool())
        .await
        .map_err(|e| self.error(e))?
        .try_into()
    }

    async fn list_invites(&self, org: &OrgId) -> Result<Vec<Invite>, DbError> {
        sqlx::query_as::<_, InviteRow>(AssertSqlSafe(format!(
            "SELECT {INVITE_COLUMNS} FROM invites WHERE org_id = $1 AND accepted_at IS NULL \
             AND expires_at > $2 ORDER BY created_at DESC, id DESC"
        )))
        .bind(org.as_str())
        .bind(now_millis())
        .fetch_all(self.pool())
        .await
        .map_err(|e| self.error(e))?
        .into_iter()
        .map(TryInto::try_into)
        .collect()
    }

    async fn delete_invite(&self, org: &OrgId, id: &InviteId) -> Result<(), DbError> {
        let deleted = sqlx::query(
            "DELETE FROM invites WHERE id = $1 AND org_id = $2 AND accepted_at IS NULL",
        )
        .bind(id.as_str())
        .bind(org.as_str())
        .execute(self.pool())
        .await
        .map_err(|e| self.error(e))?;
        if deleted.rows_affected() == 0 {
            return Err(DbError::NotFound("invite"));
        }
        Ok(())
    }

    async fn accept_invite(&self, token_hash: &str, user: &UserId) -> Result<Membership, DbError> {
        let now = now_millis();
        let mut tx = self.pool().begin().await.map_err(|e| self.error(e))?;
        // Claims the invite first: a write, so that SQLite takes its lock at once and
        // two acceptances of one invite cannot both succeed.
        let claimed: Option<(String, String, Option<String>, Option<String>)> = sqlx::query_as(
            "UPDATE invites SET accepted_by = $1, accepted_at = $2 \
                 WHERE token_hash = $3 AND accepted_at IS NULL AND expires_at > $2 \
                 RETURNING org_id, role, email, \
                 (SELECT email FROM users WHERE id = $1)",
        )
        .bind(user.as_str())
        .bind(now)
        .bind(token_hash)
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| self.error(e))?;
        let (org_id, role, invitee, email) = claimed.ok_or(DbError::NotFound("invite"))?;
        if invitee.is_some() && invitee != email {
            // Dropping the transaction rolls the claim back.
            return Err(DbError::Forbidden(
                "this invite is for another email address: sign in with that address to accept it"
                    .to_string(),
            ));
        }
        let joined = sqlx::query(
            "INSERT INTO memberships (org_id, user_id, role, created_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (org_id, user_id) DO NOTHING",
        )
        .bind(&org_id)
        .bind(user.as_str())
        .bind(&role)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(|e| self.error(e))?;
        if joined.rows_affected() == 0 {
            // Dropping the transaction rolls the claim back.
            return Err(DbError::Conflict(
                "you are already a member of this organization".to_string(),
            ));
        }
        let membership: Membership = sqlx::query_as::<_, MembershipRow>(
            "SELECT o.id, o.name, o.created_at, o.updated_at, m.role \
                 FROM memberships m JOIN organizations o ON o.id = m.org_id \
                 WHERE m.org_id = $1 AND m.user_id = $2",
        )
        .bind(&org_id)
        .bind(user.as_str())
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| self.error(e))?
        .try_into()?;
        tx.commit().await.map_err(|e| self.error(e))?;
        Ok(membership)
    }

    async fn create_api_key(&self, key: &NewApiKey) -> Result<ApiKey, DbError> {
        sqlx::query_as::<_, ApiKeyRow>(AssertSqlSafe(format!(
            "INSERT INTO api_keys \
             (id, org_id, name, prefix, key_hash, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {API_KEY_COLUMNS}"
        )))
        .bind(key.id.as_str())
        .bind(key.org_id.as_str())
        .bind(key.name.as_str())
        .bind(&key.prefix)
        .bind(&key.key_hash)
        .bind(key.created_by.as_str())
        .bind(now_millis())
        .fetch_one(self.pool())
        .await
        .map_err(|e| self.error(e))?
        .try_into()
    }

    async fn list_api_keys(&self, org: &OrgId) -> Result<Vec<ApiKey>, DbError> {
        sqlx::query_as::<_, ApiKeyRow>(AssertSqlSafe(format!(
            "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE org_id = $1 \
             ORDER BY created_at DESC, id DESC"
        )))
        .bind(org.as_str())
        .fetch_all(self.pool())
        .await
        .map_err(|e| self.error(e))?
        .into_iter()
        .map(TryInto::try_into)
        .collect()
    }

    async fn revoke_api_key(&self, org: &OrgId, id: &ApiKeyId) -> Result<ApiKey, DbError> {
        sqlx::query_as::<_, ApiKeyRow>(AssertSqlSafe(format!(
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $1) \
             WHERE id = $2 AND org_id = $3 RETURNING {API_KEY_COLUMNS}"
        )))
        .bind(now_millis())
        .bind(id.as_str())
        .bind(org.as_str())
        .fetch_optional(self.pool())
        .await
        .map_err(|e| self.error(e))?
        .ok_or(DbError::NotFound("API key"))?
        .try_into()
    }

    async fn api_key_by_prefix(&self, prefix: &str) -> Result<Option<ApiKeyCredentials>, DbError> {
        sqlx::query_as::<_, ApiKeyCredentialsRow>(
            "SELECT id, org_id, key_hash FROM api_keys \
             WHERE prefix = $1 AND revoked_at IS NULL",
        )
        .bind(prefix)
        .fetch_optional(self.pool())
        .await
        .map_err(|e| self.error(e))?
        .map(TryInto::try_into)
        .transpose()
    }

    async fn touch_api_key(&self, id: &ApiKeyId) -> Result<(), DbError> {
        let now = now_millis();
        sqlx::query(
            "UPDATE api_keys SET last_used_at = $1 \
             WHERE id = $2 AND (last_used_at IS NULL OR last_used_at <= $3)",
        )
        .bind(now)
        .bind(id.as_str())
        .bind(now - TOUCH_INTERVAL_MS)
        .execute(self.pool())
        .await
        .map_err(|e| self.error(e))?;
        Ok(())
    }
}
