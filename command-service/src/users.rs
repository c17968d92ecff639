//! Users: sign-up, sign-in and roles. A user is an event stream (stream id = user id) in the same
//! event store and log as posts; the argon2id hash, the unique username and the current roles
//! live in `user_credentials`, written in the same transaction as the user's events
//! (docs/adr/005-credentials-outside-events.md), which is also what authorization reads.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use chrono::Utc;
use command_api::auth::TokenKeys;
use events::{
    Actor, Envelope, ROLES, StoredMeta, StreamId, UserEvent, UserId, UserRegistered,
    UserRoleChanged,
};
use infra::db::Db;
use infra::with_db;
use sqlx::Row;
use sqlx::types::Json;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::domain::post::commands::is_invisible;
use crate::handler::{RequestMeta, next_event_id};
use crate::store::{Append, CredentialChange, EventStore, StoreError};

/// Why a user operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// A field is not acceptable.
    #[error("{field}: {message}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// Plain words.
        message: &'static str,
    },
    /// The username belongs to someone else.
    #[error("that username is taken")]
    UsernameTaken,
    /// Wrong username or password (the same answer for both).
    #[error("wrong username or password")]
    InvalidCredentials,
    /// Too many failed sign-ins from this client or for this user.
    #[error("too many attempts; try again later")]
    Throttled,
    /// No such user.
    #[error("no such user")]
    NotFound,
    /// The caller must sign in.
    #[error("sign in first")]
    Unauthenticated,
    /// The caller may not do this.
    #[error("{0}")]
    Forbidden(&'static str),
    /// This site sends no email (no SMTP server is configured).
    #[error("this site sends no email; ask its operator to configure an SMTP server")]
    MailUnavailable,
    /// Not a link of ours, or not for this.
    #[error("this link is not valid; use the newest email's link")]
    BadLink,
    /// A link past its expiry.
    #[error("this link has expired; ask for a new one")]
    LinkExpired,
    /// A link for an address the account no longer has.
    #[error("this link is for an address the account no longer has")]
    LinkStale,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Hashing failed (a bug).
    #[error("password hashing failed")]
    Hash,
}

impl From<sqlx::Error> for UserError {
    fn from(e: sqlx::Error) -> Self {
        Self::Store(StoreError::Db(e))
    }
}

pub use command_api::{Session, UserView};

/// What authorization needs to know about a caller, read fresh for every command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// Current roles.
    pub roles: Vec<String>,
    /// Display name.
    pub display_name: String,
    /// Whether the account is disabled.
    pub disabled: bool,
}

/// A new user.
#[derive(Debug, Clone)]
pub struct Registration {
    /// Chosen id (operators' scripts), or a new one.
    pub id: Option<Uuid>,
    /// Login name.
    pub username: String,
    /// Password (8 to 128 characters).
    pub password: String,
    /// Shown name; the username when absent.
    pub display_name: Option<String>,
    /// Roles besides `reader`.
    pub roles: Vec<String>,
}

/// Failed sign-ins tolerated per client address, and per username, per window.
const FAILURES_PER_CLIENT: u32 = 20;
const FAILURES_PER_USERNAME: u32 = 60;
const WINDOW: Duration = Duration::from_secs(15 * 60);

/// Counts failed sign-ins per key within a sliding-ish window (reset when it expires).
#[derive(Default)]
struct Failures(Mutex<HashMap<String, (u32, Instant)>>);

impl Failures {
    fn count(&self, key: &str) -> u32 {
        let map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(key)
            .filter(|(_, since)| since.elapsed() < WINDOW)
            .map_or(0, |(n, _)| *n)
    }

    fn add(&self, key: &str) {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if map.len() > 100_000 {
            map.retain(|_, (_, since)| since.elapsed() < WINDOW);
        }
        let entry = map.entry(key.to_owned()).or_insert((0, Instant::now()));
        if entry.1.elapsed() >= WINDOW {
            *entry = (0, Instant::now());
        }
        entry.0 += 1;
    }

    fn clear(&self, key: &str) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
    }
}

/// Users' commands and sign-in.
#[derive(Clone)]
pub struct UserService {
    store: EventStore,
    keys: TokenKeys,
    wake: Arc<Notify>,
    clients: Arc<Failures>,
    usernames: Arc<Failures>,
}

fn argon2() -> Argon2<'static> {
    // OWASP's argon2id recommendation: 19 MiB, 2 passes, 1 lane.
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

fn clean(text: &str) -> String {
    text.trim().to_owned()
}

/// Validates a username: 3 to 32 of `a-z 0-9 _ -`, starting with a letter or digit.
///
/// # Errors
/// [`UserError::Invalid`].
pub fn validate_username(name: &str) -> Result<String, UserError> {
    let name = clean(name).to_lowercase();
    let ok = (3..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric());
    if ok {
        Ok(name)
    } else {
        Err(UserError::Invalid {
            field: "username",
            message: "3 to 32 lower-case letters, digits, '_' or '-'",
        })
    }
}

fn validate_password(password: &str) -> Result<(), UserError> {
    let chars = password.chars().count();
    if (8..=128).contains(&chars) && !password.chars().any(char::is_control) {
        Ok(())
    } else {
        Err(UserError::Invalid {
            field: "password",
            message: "8 to 128 characters, no control characters",
        })
    }
}

fn validate_display_name(name: &str) -> Result<String, UserError> {
    use unicode_normalization::UnicodeNormalization;
    let name: String = clean(name).nfc().collect();
    let chars = name.chars().count();
    if (1..=80).contains(&chars) && !name.chars().any(|c| c.is_control() || is_invisible(c)) {
        Ok(name)
    } else {
        Err(UserError::Invalid {
            field: "displayName",
            message: "1 to 80 characters, no control or invisible formatting characters",
        })
    }
}

fn validate_role(role: &str) -> Result<String, UserError> {
    let role = role.trim().to_lowercase();
    if ROLES.contains(&role.as_str()) {
        Ok(role)
    } else {
        Err(UserError::Invalid {
            field: "role",
            message: "one of reader, author, moderator, admin",
        })
    }
}

impl UserService {
    /// Users in `store`, signing tokens with `keys`, waking the relay through `wake`.
    #[must_use]
    pub fn new(store: EventStore, keys: TokenKeys, wake: Arc<Notify>) -> Self {
        Self {
            store,
            keys,
            wake,
            clients: Arc::default(),
            usernames: Arc::default(),
        }
    }

    fn db(&self) -> &Db {
        self.store.db()
    }

    fn session(&self, user: UserView) -> Result<Session, UserError> {
        let token = self
            .keys
            .issue(user.id, &user.username, &user.display_name, &user.roles)
            .map_err(|_| UserError::Hash)?;
        Ok(Session { token, user })
    }

    fn envelope(
        stream: Uuid,
        version: i64,
        previous: Uuid,
        actor: Actor,
        meta: &RequestMeta,
        event: UserEvent,
    ) -> Envelope {
        Envelope {
            meta: StoredMeta {
                event_id: next_event_id(previous),
                stream_id: StreamId(stream),
                stream_version: version,
                occurred_at: Utc::now(),
                actor,
                correlation_id: meta.correlation_id.unwrap_or_else(Uuid::now_v7),
                causation_id: None,
                traceparent: meta.traceparent.clone(),
            },
            event: event.into(),
        }
    }

    /// Registers a user (role `reader`, plus `roles`) and signs them in.
    ///
    /// # Errors
    /// [`UserError::Invalid`], [`UserError::UsernameTaken`], or a store failure.
    pub async fn register(
        &self,
        input: Registration,
        meta: &RequestMeta,
    ) -> Result<Session, UserError> {
        let username = validate_username(&input.username)?;
        validate_password(&input.password)?;
        let display_name =
            validate_display_name(input.display_name.as_deref().unwrap_or(&username))?;
        let mut roles = vec!["reader".to_owned()];
        for role in &input.roles {
            let role = validate_role(role)?;
            if !roles.contains(&role) {
                roles.push(role);
            }
        }
        let hash = Self::hash(input.password).await?;
        let id = input.id.unwrap_or_else(Uuid::now_v7);
        let actor = Actor {
            user_id: Some(UserId(id)),
            name: Some(display_name.clone()),
        };
        let mut events = vec![Self::envelope(
            id,
            1,
            Uuid::nil(),
            actor.clone(),
            meta,
            UserEvent::Registered(UserRegistered {
                username: username.clone(),
                display_name: display_name.clone(),
            }),
        )];
        // Roles beyond `reader` at sign-up come only from an operator (`inkwire user add`): the
        // moderation log shows them as the operator's, not as the new user's own act.
        let operator = Actor {
            user_id: None,
            name: Some("operator".to_owned()),
        };
        for role in roles.iter().filter(|r| *r != "reader") {
            let previous = events.last().map_or(Uuid::nil(), |e| e.meta.event_id);
            let version = i64::try_from(events.len()).unwrap_or(i64::MAX) + 1;
            events.push(Self::envelope(
                id,
                version,
                previous,
                operator.clone(),
                meta,
                UserEvent::RoleGranted(UserRoleChanged { role: role.clone() }),
            ));
        }
        let append = Append {
            stream_id: StreamId(id),
            events,
            slug: crate::store::SlugChange::default(),
            credentials: Some(CredentialChange::Register {
                username: username.clone(),
                display_name: display_name.clone(),
                password_hash: hash,
                roles: roles.clone(),
            }),
        };
        match self.store.append(std::slice::from_ref(&append)).await {
            Ok(()) => {}
            Err(StoreError::UsernameTaken) => return Err(UserError::UsernameTaken),
            Err(StoreError::VersionConflict) => return Err(UserError::UsernameTaken),
            Err(e) => return Err(e.into()),
        }
        self.wake.notify_one();
        self.session(UserView {
            id,
            username,
            display_name,
            roles,
        })
    }

    /// Signs in. Wrong usernames and wrong passwords get the same answer; failures are counted
    /// per client address and per username, and too many are refused before any hashing.
    ///
    /// # Errors
    /// [`UserError::InvalidCredentials`] or [`UserError::Throttled`].
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        client: &str,
    ) -> Result<Session, UserError> {
        let name = username.trim().to_lowercase();
        let client_key = client.to_owned();
        let pair_key = format!("{name}\u{0}{client}");
        if self.clients.count(&client_key) >= FAILURES_PER_CLIENT
            || self.clients.count(&pair_key) >= FAILURES_PER_CLIENT / 4
            || self.usernames.count(&name) >= FAILURES_PER_USERNAME
        {
            return Err(UserError::Throttled);
        }
        let row = infra::db::retry_read(|| async {
            with_db!(self.db(), |pool| {
                sqlx::query(
                    "SELECT user_id, username, display_name, password_hash, roles, disabled \
                     FROM user_credentials WHERE username = $1",
                )
                .bind(name.as_str())
                .fetch_optional(pool)
                .await?
                .map(|row| {
                    let Json(roles): Json<Vec<String>> = row.try_get("roles")?;
                    Ok::<_, sqlx::Error>((
                        UserView {
                            id: row.try_get("user_id")?,
                            username: row.try_get("username")?,
                            display_name: row.try_get("display_name")?,
                            roles,
                        },
                        row.try_get::<String, _>("password_hash")?,
                        row.try_get::<bool, _>("disabled")?,
                    ))
                })
                .transpose()
            })
        })
        .await?;
        // Verify against a real hash even for unknown users, so timing does not tell them apart.
        const DUMMY: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$3vq3l2Yx0Dg8d9h0S2v7m9mXo7m1L8m9YlZbL6jYl5M";
        let hash = row.as_ref().map_or(DUMMY.to_owned(), |(_, h, _)| h.clone());
        let verified = Self::verify(password.to_owned(), hash).await?;
        match row {
            Some((user, _, false)) if verified => {
                self.clients.clear(&pair_key);
                self.session(user)
            }
            _ => {
                self.clients.add(&client_key);
                self.clients.add(&pair_key);
                self.usernames.add(&name);
                Err(UserError::InvalidCredentials)
            }
        }
    }

    /// A fresh token for a signed-in, enabled user whose session began at `auth_time`, with their
    /// current roles; refused once the session is older than `max_age`.
    ///
    /// # Errors
    /// [`UserError::Unauthenticated`] when the session is too old or the caller unknown.
    pub async fn refresh(
        &self,
        caller: Option<(Uuid, &Access)>,
        auth_time: i64,
        max_age: Duration,
    ) -> Result<Session, UserError> {
        let (user, access) = caller.ok_or(UserError::Unauthenticated)?;
        let age = Utc::now().timestamp() - auth_time;
        if auth_time <= 0 || age < 0 || age > i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX) {
            return Err(UserError::Unauthenticated);
        }
        let username = self.username_of(user).await?;
        let view = UserView {
            id: user,
            username,
            display_name: access.display_name.clone(),
            roles: access.roles.clone(),
        };
        let token = self
            .keys
            .issue_since(
                view.id,
                &view.username,
                &view.display_name,
                &view.roles,
                auth_time,
            )
            .map_err(|_| UserError::Hash)?;
        Ok(Session { token, user: view })
    }

    /// The caller's current roles, name and state, or `None` for an unknown user.
    ///
    /// # Errors
    /// The database error.
    pub async fn access(&self, user: Uuid) -> Result<Option<Access>, sqlx::Error> {
        infra::db::retry_read(|| async {
            with_db!(self.db(), |pool| {
                sqlx::query(
                    "SELECT roles, display_name, disabled FROM user_credentials WHERE user_id = $1",
                )
                .bind(user)
                .fetch_optional(pool)
                .await?
                .map(|row| {
                    let Json(roles): Json<Vec<String>> = row.try_get("roles")?;
                    Ok(Access {
                        roles,
                        display_name: row.try_get("display_name")?,
                        disabled: row.try_get("disabled")?,
                    })
                })
                .transpose()
            })
        })
        .await
    }

    /// The login name of `user`.
    async fn username_of(&self, user: Uuid) -> Result<String, UserError> {
        let username: Option<String> = infra::db::retry_read(|| async {
            with_db!(self.db(), |pool| {
                sqlx::query_scalar("SELECT username FROM user_credentials WHERE user_id = $1")
                    .bind(user)
                    .fetch_optional(pool)
                    .await
            })
        })
        .await?;
        username.ok_or(UserError::NotFound)
    }

    async fn hash(password: String) -> Result<String, UserError> {
        tokio::task::spawn_blocking(move || {
            let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
            argon2()
                .hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
        })
        .await
        .map_err(|_| UserError::Hash)?
        .map_err(|_| UserError::Hash)
    }

    async fn verify(password: String, hash: String) -> Result<bool, UserError> {
        tokio::task::spawn_blocking(move || {
            PasswordHash::new(&hash)
                .map(|parsed| {
                    argon2()
                        .verify_password(password.as_bytes(), &parsed)
                        .is_ok()
                })
                .unwrap_or(false)
        })
        .await
        .map_err(|_| UserError::Hash)
    }

    /// Appends one event to `user`'s stream with its credential change, retrying on conflicts.
    async fn append_one(
        &self,
        user: Uuid,
        actor: Actor,
        meta: &RequestMeta,
        event: UserEvent,
        change: Option<CredentialChange>,
    ) -> Result<(), UserError> {
        for _ in 0..5 {
            let (version, last_id) = self.store.stream_head(StreamId(user)).await?;
            if version == 0 {
                return Err(UserError::NotFound);
            }
            let append = Append {
                stream_id: StreamId(user),
                events: vec![Self::envelope(
                    user,
                    version + 1,
                    last_id,
                    actor.clone(),
                    meta,
                    event.clone(),
                )],
                slug: crate::store::SlugChange::default(),
                credentials: change.clone(),
            };
            match self.store.append(std::slice::from_ref(&append)).await {
                Ok(()) => {
                    self.wake.notify_one();
                    return Ok(());
                }
                Err(StoreError::VersionConflict) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::VersionConflict.into())
    }

    fn self_actor(user: Uuid, access: &Access) -> Actor {
        Actor {
            user_id: Some(UserId(user)),
            name: Some(access.display_name.clone()),
        }
    }

    /// Changes the caller's shown name.
    ///
    /// # Errors
    /// [`UserError::Unauthenticated`], [`UserError::Invalid`], or a store failure.
    pub async fn change_display_name(
        &self,
        caller: Option<(Uuid, &Access)>,
        name: &str,
        meta: &RequestMeta,
    ) -> Result<(), UserError> {
        let (user, access) = caller.ok_or(UserError::Unauthenticated)?;
        let name = validate_display_name(name)?;
        self.append_one(
            user,
            Self::self_actor(user, access),
            meta,
            UserEvent::DisplayNameChanged(events::UserDisplayNameChanged {
                display_name: name.clone(),
            }),
            Some(CredentialChange::DisplayName(name)),
        )
        .await
    }

    /// Changes the caller's password, given the current one.
    ///
    /// # Errors
    /// [`UserError::InvalidCredentials`] when `current` is wrong, [`UserError::Invalid`] for a
    /// weak new password, or a store failure.
    pub async fn change_password(
        &self,
        caller: Option<(Uuid, &Access)>,
        current: &str,
        new: &str,
        meta: &RequestMeta,
    ) -> Result<(), UserError> {
        let (user, access) = caller.ok_or(UserError::Unauthenticated)?;
        validate_password(new)?;
        let hash = with_db!(self.db(), |pool| {
            sqlx::query("SELECT password_hash FROM user_credentials WHERE user_id = $1")
                .bind(user)
                .fetch_one(pool)
                .await?
                .try_get::<String, _>(0)
        })?;
        if !Self::verify(current.to_owned(), hash).await? {
            return Err(UserError::InvalidCredentials);
        }
        let hash = Self::hash(new.to_owned()).await?;
        self.append_one(
            user,
            Self::self_actor(user, access),
            meta,
            UserEvent::PasswordChanged(events::UserPasswordChanged {}),
            Some(CredentialChange::Password(hash)),
        )
        .await
    }

    /// Disables an account (admins); it can no longer sign in or act.
    ///
    /// # Errors
    /// [`UserError::Forbidden`], [`UserError::NotFound`], or a store failure.
    pub async fn disable(
        &self,
        caller: Option<(Uuid, &Access)>,
        user: Uuid,
        meta: &RequestMeta,
    ) -> Result<(), UserError> {
        let (admin, access) = caller.ok_or(UserError::Unauthenticated)?;
        if !access.roles.iter().any(|r| r == "admin") {
            return Err(UserError::Forbidden("only an admin may disable accounts"));
        }
        if admin == user {
            return Err(UserError::Forbidden(
                "an admin may not disable their own account",
            ));
        }
        self.access(user).await?.ok_or(UserError::NotFound)?;
        self.append_one(
            user,
            Self::self_actor(admin, access),
            meta,
            UserEvent::Disabled(events::UserDisabled {}),
            Some(CredentialChange::Disabled),
        )
        .await
    }

    /// Records an image the caller uploaded (authors and admins), in their own stream.
    ///
    /// # Errors
    /// [`UserError::Unauthenticated`], [`UserError::Forbidden`], [`UserError::Invalid`], or a
    /// store failure.
    pub async fn record_media(
        &self,
        caller: Option<(Uuid, &Access)>,
        media: command_api::RecordMedia,
        meta: &RequestMeta,
    ) -> Result<(), UserError> {
        const TYPES: &[&str] = &["image/jpeg", "image/png", "image/gif", "image/webp"];
        let (user, access) = caller.ok_or(UserError::Unauthenticated)?;
        if !access.roles.iter().any(|r| r == "author" || r == "admin") {
            return Err(UserError::Forbidden("only authors may upload images"));
        }
        if !TYPES.contains(&media.content_type.as_str()) || media.width == 0 || media.height == 0 {
            return Err(UserError::Invalid {
                field: "content_type",
                message: "an image/jpeg, image/png, image/gif or image/webp of at least 1×1 pixel",
            });
        }
        self.append_one(
            user,
            Self::self_actor(user, access),
            meta,
            UserEvent::MediaUploaded(events::MediaUploaded {
                media_id: media.media_id,
                size: media.size,
                content_type: media.content_type,
                width: media.width,
                height: media.height,
            }),
            None,
        )
        .await
    }

    /// Moves the caller's read mark on their notifications (any signed-in user, on their own).
    /// Whether it moves forward is the projection's business: the mark is a fact about what the
    /// user saw, recorded as they said it.
    ///
    /// # Errors
    /// [`UserError::Unauthenticated`], [`UserError::Invalid`] for a time in the future, or a
    /// store failure.
    pub async fn mark_notifications_read(
        &self,
        caller: Option<(Uuid, &Access)>,
        mark: command_api::MarkNotificationsRead,
        meta: &RequestMeta,
    ) -> Result<(), UserError> {
        let (user, access) = caller.ok_or(UserError::Unauthenticated)?;
        if mark.up_to_at > chrono::Utc::now() + chrono::Duration::minutes(5) {
            return Err(UserError::Invalid {
                field: "upTo",
                message: "a notification that exists: this one is from the future",
            });
        }
        self.append_one(
            user,
            Self::self_actor(user, access),
            meta,
            UserEvent::NotificationsRead(events::NotificationsRead {
                up_to_at: mark.up_to_at,
                up_to_comment: mark.up_to_comment,
            }),
            None,
        )
        .await
    }

    /// Grants (`grant`) or revokes a role; admins only.
    ///
    /// # Errors
    /// [`UserError::Forbidden`], [`UserError::NotFound`], [`UserError::Invalid`], or a store
    /// failure.
    pub async fn set_role(
        &self,
        caller: Option<(Uuid, &Access)>,
        user: Uuid,
        role: &str,
        grant: bool,
        meta: &RequestMeta,
    ) -> Result<UserView, UserError> {
        let (caller_id, access) = caller.ok_or(UserError::Unauthenticated)?;
        if !access.roles.iter().any(|r| r == "admin") {
            return Err(UserError::Forbidden(
                "only an admin may grant or revoke roles",
            ));
        }
        let role = validate_role(role)?;
        // Usernames never change; roles are re-read on every attempt.
        let username = self.username_of(user).await?;
        for _ in 0..5 {
            let target = self.access(user).await?.ok_or(UserError::NotFound)?;
            let (version, last_id) = self.store.stream_head(StreamId(user)).await?;
            let mut roles = target.roles.clone();
            let changed = if grant {
                if roles.contains(&role) {
                    false
                } else {
                    roles.push(role.clone());
                    true
                }
            } else {
                let before = roles.len();
                roles.retain(|r| *r != role);
                roles.len() != before
            };
            let view = UserView {
                id: user,
                username: username.clone(),
                display_name: target.display_name.clone(),
                roles: roles.clone(),
            };
            if !changed {
                return Ok(view);
            }
            let actor = Actor {
                user_id: Some(UserId(caller_id)),
                name: Some(access.display_name.clone()),
            };
            let change = UserRoleChanged { role: role.clone() };
            let event = if grant {
                UserEvent::RoleGranted(change)
            } else {
                UserEvent::RoleRevoked(change)
            };
            let append = Append {
                stream_id: StreamId(user),
                events: vec![Self::envelope(
                    user,
                    version + 1,
                    last_id,
                    actor,
                    meta,
                    event,
                )],
                slug: crate::store::SlugChange::default(),
                credentials: Some(CredentialChange::Roles(roles)),
            };
            match self.store.append(std::slice::from_ref(&append)).await {
                Ok(()) => {
                    self.wake.notify_one();
                    return Ok(view);
                }
                Err(StoreError::VersionConflict) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::VersionConflict.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_and_names_are_checked() {
        assert_eq!(validate_username(" Ada_L ").expect("ok"), "ada_l");
        for bad in ["ab", "-ada", "ada lovelace", "ädä", &"a".repeat(33)] {
            assert!(validate_username(bad).is_err(), "{bad}");
        }
        assert!(validate_display_name("Ada\u{202E}evil").is_err());
        assert!(validate_display_name("Ada\u{200B}").is_err());
        assert!(validate_display_name("Ada Lovelace").is_ok());
        assert!(validate_password("short").is_err());
        assert!(validate_password("long enough").is_ok());
        assert!(validate_role("ADMIN").is_ok());
        assert!(validate_role("root").is_err());
    }
}
