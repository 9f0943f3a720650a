//! Accounts: users, their memberships and roles in organizations, sign-in sessions,
//! invites and API keys. Secrets (session tokens, invite tokens, API keys) are stored only
//! as SHA-256 hashes, passwords only as Argon2id hashes; hashing is the caller's job.

mod queries;

use async_trait::async_trait;
use resonance_domain::{
    ApiKeyId, ApiKeyName, Email, InviteId, OrgId, OrganizationName, Role, UserId,
};
use time::OffsetDateTime;

use crate::model::{OrganizationRow, from_millis};
use crate::{DbError, Organization};

#[async_trait]
pub trait Accounts: Send + Sync {
    /// Creates an account; the first account of the instance becomes its operator.
    /// `None` when the email already has an account.
    async fn create_user(
        &self,
        email: &Email,
        password_hash: &str,
    ) -> Result<Option<User>, DbError>;

    async fn get_user(&self, id: &UserId) -> Result<User, DbError>;

    /// The account with this email and its password hash, for signing in.
    async fn user_credentials(&self, email: &Email) -> Result<Option<UserCredentials>, DbError>;

    /// Creates an organization with `admin` as its first admin.
    async fn create_organization_with_admin(
        &self,
        name: &OrganizationName,
        admin: &UserId,
    ) -> Result<Organization, DbError>;

    /// The organizations `user` belongs to, oldest membership first.
    async fn memberships_of(&self, user: &UserId) -> Result<Vec<Membership>, DbError>;

    /// `user`'s role in `org`, `None` when not a member.
    async fn role_in(&self, org: &OrgId, user: &UserId) -> Result<Option<Role>, DbError>;

    /// The organization's members, oldest first.
    async fn list_members(&self, org: &OrgId) -> Result<Vec<Member>, DbError>;

    /// Fails with `NotFound("member")` when `user` is not a member of `org`, and with
    /// `Conflict` when it would demote the organization's last admin.
    async fn set_member_role(
        &self,
        org: &OrgId,
        user: &UserId,
        role: Role,
    ) -> Result<Member, DbError>;

    /// Fails with `NotFound("member")` when `user` is not a member of `org`, and with
    /// `Conflict` when `user` is the organization's last admin.
    async fn remove_member(&self, org: &OrgId, user: &UserId) -> Result<(), DbError>;

    /// Stores a new session and deletes the user's expired ones.
    async fn create_session(&self, session: &NewSession) -> Result<(), DbError>;

    /// The unexpired session with this token hash, its user and its active organization
    /// (only while the user is still a member); records that it was seen.
    async fn session(&self, token_hash: &str) -> Result<Option<Session>, DbError>;

    async fn set_session_org(&self, token_hash: &str, org: &OrgId) -> Result<(), DbError>;

    async fn delete_session(&self, token_hash: &str) -> Result<(), DbError>;

    /// Replaces the user's password hash and, in the same transaction, ends every session of
    /// theirs but `keep_session` (the one that changed it).
    async fn change_password(
        &self,
        user: &UserId,
        password_hash: &str,
        keep_session: &str,
    ) -> Result<(), DbError>;

    /// Stores a one-time password reset for the user, valid until `expires_at`.
    async fn create_password_reset(
        &self,
        user: &UserId,
        token_hash: &str,
        expires_at: OffsetDateTime,
    ) -> Result<(), DbError>;

    /// Uses up the unexpired reset with this token hash: the user gets `password_hash`, and
    /// every session and other reset of theirs ends, in one transaction. `NotFound` when
    /// there is no such reset (never made, used, or expired).
    async fn reset_password(
        &self,
        token_hash: &str,
        password_hash: &str,
    ) -> Result<UserId, DbError>;

    /// Ends every session of the user but `keep_session`; returns how many ended.
    async fn end_other_sessions(&self, user: &UserId, keep_session: &str) -> Result<u64, DbError>;

    async fn create_invite(&self, invite: &NewInvite) -> Result<Invite, DbError>;

    /// The organization's unexpired, unaccepted invites, newest first.
    async fn list_invites(&self, org: &OrgId) -> Result<Vec<Invite>, DbError>;

    async fn delete_invite(&self, org: &OrgId, id: &InviteId) -> Result<(), DbError>;

    /// Uses up the invite and makes `user` a member with the invite's role. Fails with
    /// `NotFound("invite")` when the invite does not exist, has expired or was used, with
    /// `Forbidden` when it names another email than `user`'s, and with `Conflict` when `user`
    /// is already a member (the invite stays usable in both cases).
    async fn accept_invite(&self, token_hash: &str, user: &UserId) -> Result<Membership, DbError>;

    async fn create_api_key(&self, key: &NewApiKey) -> Result<ApiKey, DbError>;

    /// The organization's keys, revoked ones included, newest first.
    async fn list_api_keys(&self, org: &OrgId) -> Result<Vec<ApiKey>, DbError>;

    /// Revokes one of `org`'s keys at once; revoking a revoked key changes nothing.
    async fn revoke_api_key(&self, org: &OrgId, id: &ApiKeyId) -> Result<ApiKey, DbError>;

    /// The unrevoked key with this visible prefix, to check a presented key against.
    async fn api_key_by_prefix(&self, prefix: &str) -> Result<Option<ApiKeyCredentials>, DbError>;

    /// Records that the key was used now (at most once a minute, to spare the database).
    async fn touch_api_key(&self, id: &ApiKeyId) -> Result<(), DbError>;
}

#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: UserId,
    pub email: Email,
    /// The instance operator (the first account) manages system voices.
    pub is_operator: bool,
    pub created_at: OffsetDateTime,
}

pub struct UserCredentials {
    pub user: User,
    pub password_hash: String,
}

/// An organization as one of its members sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Membership {
    pub organization: Organization,
    pub role: Role,
}

/// A member as the organization sees them.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub user_id: UserId,
    pub email: Email,
    pub role: Role,
    pub joined_at: OffsetDateTime,
}

pub struct NewSession {
    pub token_hash: String,
    pub user_id: UserId,
    pub active_org: Option<OrgId>,
    pub expires_at: OffsetDateTime,
}

#[derive(Debug, Clone)]
pub struct Session {
    pub token_hash: String,
    pub user: User,
    /// The organization the user acts in and their role there.
    pub active_org: Option<(OrgId, Role)>,
    pub expires_at: OffsetDateTime,
}

pub struct NewInvite {
    pub id: InviteId,
    pub org_id: OrgId,
    pub token_hash: String,
    pub role: Role,
    /// Only the account with this email may accept; anyone with the link when `None`.
    pub email: Option<Email>,
    pub created_by: UserId,
    pub expires_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Invite {
    pub id: InviteId,
    pub org_id: OrgId,
    pub role: Role,
    pub email: Option<Email>,
    pub created_by: Option<UserId>,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

pub struct NewApiKey {
    pub id: ApiKeyId,
    pub org_id: OrgId,
    pub name: ApiKeyName,
    pub prefix: String,
    pub key_hash: String,
    pub created_by: UserId,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub org_id: OrgId,
    pub name: ApiKeyName,
    /// The visible part of the key, to tell keys apart.
    pub prefix: String,
    pub created_by: Option<UserId>,
    pub created_at: OffsetDateTime,
    pub last_used_at: Option<OffsetDateTime>,
    pub revoked_at: Option<OffsetDateTime>,
}

pub struct ApiKeyCredentials {
    pub id: ApiKeyId,
    pub org_id: OrgId,
    pub key_hash: String,
}

/// How often at most a session's or key's last-seen time is written, in milliseconds.
pub(crate) const TOUCH_INTERVAL_MS: i64 = 60_000;

pub(crate) fn millis(at: OffsetDateTime) -> i64 {
    (at.unix_timestamp_nanos() / 1_000_000) as i64
}

fn parse_role(table: &str, role: &str) -> Result<Role, DbError> {
    role.parse().map_err(|e| DbError::corrupt(table, "role", e))
}

fn parse_user_id(table: &str, column: &str, id: &str) -> Result<UserId, DbError> {
    UserId::parse(id).map_err(|e| DbError::corrupt(table, column, e))
}

#[derive(sqlx::FromRow)]
pub(crate) struct UserRow {
    id: String,
    email: String,
    is_operator: bool,
    created_at: i64,
}

impl TryFrom<UserRow> for User {
    type Error = DbError;

    fn try_from(row: UserRow) -> Result<Self, DbError> {
        const T: &str = "users";
        Ok(Self {
            id: parse_user_id(T, "id", &row.id)?,
            email: Email::parse(&row.email).map_err(|e| DbError::corrupt(T, "email", e))?,
            is_operator: row.is_operator,
            created_at: from_millis(T, "created_at", row.created_at)?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct UserCredentialsRow {
    #[sqlx(flatten)]
    user: UserRow,
    password_hash: String,
}

impl TryFrom<UserCredentialsRow> for UserCredentials {
    type Error = DbError;

    fn try_from(row: UserCredentialsRow) -> Result<Self, DbError> {
        Ok(Self {
            user: row.user.try_into()?,
            password_hash: row.password_hash,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct MembershipRow {
    #[sqlx(flatten)]
    organization: OrganizationRow,
    role: String,
}

impl TryFrom<MembershipRow> for Membership {
    type Error = DbError;

    fn try_from(row: MembershipRow) -> Result<Self, DbError> {
        Ok(Self {
            organization: row.organization.try_into()?,
            role: parse_role("memberships", &row.role)?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct MemberRow {
    user_id: String,
    email: String,
    role: String,
    created_at: i64,
}

impl TryFrom<MemberRow> for Member {
    type Error = DbError;

    fn try_from(row: MemberRow) -> Result<Self, DbError> {
        const T: &str = "memberships";
        Ok(Self {
            user_id: parse_user_id(T, "user_id", &row.user_id)?,
            email: Email::parse(&row.email).map_err(|e| DbError::corrupt("users", "email", e))?,
            role: parse_role(T, &row.role)?,
            joined_at: from_millis(T, "created_at", row.created_at)?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct SessionRow {
    token_hash: String,
    #[sqlx(flatten)]
    user: UserRow,
    active_org_id: Option<String>,
    /// NULL when the user is no longer a member of the active organization.
    role: Option<String>,
    expires_at: i64,
    last_seen_at: i64,
}

impl SessionRow {
    pub(crate) fn last_seen_at(&self) -> i64 {
        self.last_seen_at
    }
}

impl TryFrom<SessionRow> for Session {
    type Error = DbError;

    fn try_from(row: SessionRow) -> Result<Self, DbError> {
        const T: &str = "sessions";
        let active_org = match (row.active_org_id, row.role) {
            (Some(org), Some(role)) => Some((
                OrgId::parse(&org).map_err(|e| DbError::corrupt(T, "active_org_id", e))?,
                parse_role("memberships", &role)?,
            )),
            _ => None,
        };
        Ok(Self {
            token_hash: row.token_hash,
            user: row.user.try_into()?,
            active_org,
            expires_at: from_millis(T, "expires_at", row.expires_at)?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct InviteRow {
    id: String,
    org_id: String,
    role: String,
    email: Option<String>,
    created_by: Option<String>,
    created_at: i64,
    expires_at: i64,
}

impl TryFrom<InviteRow> for Invite {
    type Error = DbError;

    fn try_from(row: InviteRow) -> Result<Self, DbError> {
        const T: &str = "invites";
        Ok(Self {
            id: InviteId::parse(&row.id).map_err(|e| DbError::corrupt(T, "id", e))?,
            org_id: OrgId::parse(&row.org_id).map_err(|e| DbError::corrupt(T, "org_id", e))?,
            role: parse_role(T, &row.role)?,
            email: row
                .email
                .as_deref()
                .map(|email| Email::parse(email).map_err(|e| DbError::corrupt(T, "email", e)))
                .transpose()?,
            created_by: row
                .created_by
                .as_deref()
                .map(|id| parse_user_id(T, "created_by", id))
                .transpose()?,
            created_at: from_millis(T, "created_at", row.created_at)?,
            expires_at: from_millis(T, "expires_at", row.expires_at)?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct ApiKeyRow {
    id: String,
    org_id: String,
    name: String,
    prefix: String,
    created_by: Option<String>,
    created_at: i64,
    last_used_at: Option<i64>,
    revoked_at: Option<i64>,
}

impl TryFrom<ApiKeyRow> for ApiKey {
    type Error = DbError;

    fn try_from(row: ApiKeyRow) -> Result<Self, DbError> {
        const T: &str = "api_keys";
        Ok(Self {
            id: ApiKeyId::parse(&row.id).map_err(|e| DbError::corrupt(T, "id", e))?,
            org_id: OrgId::parse(&row.org_id).map_err(|e| DbError::corrupt(T, "org_id", e))?,
            name: ApiKeyName::parse(&row.name).map_err(|e| DbError::corrupt(T, "name", e))?,
            prefix: row.prefix,
            created_by: row
                .created_by
                .as_deref()
                .map(|id| parse_user_id(T, "created_by", id))
                .transpose()?,
            created_at: from_millis(T, "created_at", row.created_at)?,
            last_used_at: row
                .last_used_at
                .map(|at| from_millis(T, "last_used_at", at))
                .transpose()?,
            revoked_at: row
                .revoked_at
                .map(|at| from_millis(T, "revoked_at", at))
                .transpose()?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct ApiKeyCredentialsRow {
    id: String,
    org_id: String,
    key_hash: String,
}

impl TryFrom<ApiKeyCredentialsRow> for ApiKeyCredentials {
    type Error = DbError;

    fn try_from(row: ApiKeyCredentialsRow) -> Result<Self, DbError> {
        const T: &str = "api_keys";
        Ok(Self {
            id: ApiKeyId::parse(&row.id).map_err(|e| DbError::corrupt(T, "id", e))?,
            org_id: OrgId::parse(&row.org_id).map_err(|e| DbError::corrupt(T, "org_id", e))?,
            key_hash: row.key_hash,
        })
    }
}
