//! Accounts and the credentials around them. Hashing and signing happen in the auth crate;
//! this module only keeps what it is given (hashes and digests, never secrets).

use rusqlite::{params, OptionalExtension, Row};

use crate::model::{AppPassword, NodeId, Space, SpaceId, Timestamp, User, UserId};
use crate::tree::next_change;
use crate::{Result, Store, StoreError};

const USER_COLUMNS: &str = "users.id, users.name, users.password_hash, users.is_admin,
    users.credential_epoch, spaces.id";

fn user_from_row(row: &Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: UserId(row.get(0)?),
        name: row.get(1)?,
        password_hash: row.get(2)?,
        is_admin: row.get(3)?,
        credential_epoch: row.get(4)?,
        space: SpaceId(row.get(5)?),
    })
}

/// What happened when a refresh token was presented.
#[derive(Debug, Clone, PartialEq)]
pub enum RefreshOutcome {
    /// The token was valid and is now spent; issue a new one in the same family.
    Valid {
        /// Its owner.
        user: UserId,
        /// The chain of tokens it belongs to.
        family: String,
    },
    /// The token had already been spent: it was stolen or replayed, so its whole family
    /// has been revoked.
    Replayed,
    /// Unknown or expired.
    Invalid,
}

fn validate_user_name(name: &str) -> Result<()> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || "._-@".contains(c);
    let valid = !name.is_empty() && name.len() <= 64 && name.chars().all(ok_char);
    if valid {
        return Ok(());
    }
    Err(StoreError::InvalidName {
        name: name.to_owned(),
        reason: "user names use 1 to 64 letters, digits, '.', '_', '-' or '@'",
    })
}

impl Store {
    /// Creates an account with its personal space.
    pub fn create_user(&self, name: &str, password_hash: &str, is_admin: bool) -> Result<User> {
        validate_user_name(name)?;
        let now = Timestamp::now();
        self.write(|tx| {
            let taken: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM users WHERE name = ?1)",
                [name],
                |r| r.get(0),
            )?;
            if taken {
                return Err(StoreError::UserExists { name: name.into() });
            }
            tx.execute(
                "INSERT INTO users (name, password_hash, is_admin, created_at)
                 VALUES (?1, ?2, ?3, ?4)",
                params![name, password_hash, is_admin, now.as_secs()],
            )?;
            let user = UserId(tx.last_insert_rowid());
            let quota = self
                .default_quota
                .map(|q| i64::try_from(q).unwrap_or(i64::MAX));
            tx.execute(
                "INSERT INTO spaces (name, owner_id, quota_bytes) VALUES (?1, ?2, ?3)",
                params![name, user.0, quota],
            )?;
            let space = SpaceId(tx.last_insert_rowid());
            let change = next_change(tx)?;
            tx.execute(
                "INSERT INTO nodes (space_id, parent_id, name, is_dir, mtime_ns, created_ns,
                                    change_seq)
                 VALUES (?1, NULL, '', 1, ?2, ?2, ?3)",
                params![space.0, now.0, change],
            )?;
            let root = NodeId(tx.last_insert_rowid());
            tx.execute(
                "UPDATE spaces SET root_id = ?2 WHERE id = ?1",
                params![space.0, root.0],
            )?;
            Ok(User {
                id: user,
                name: name.to_owned(),
                password_hash: password_hash.to_owned(),
                is_admin,
                credential_epoch: 0,
                space,
            })
        })
    }

    /// The account with this name.
    pub fn user_by_name(&self, name: &str) -> Result<Option<User>> {
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users JOIN spaces ON spaces.owner_id = users.id
             WHERE users.name = ?1"
        );
        let conn = self.db.reader();
        let mut stmt = conn.prepare_cached(&sql)?;
        Ok(stmt.query_row([name], user_from_row).optional()?)
    }

    /// The account with this id.
    pub fn user(&self, id: UserId) -> Result<Option<User>> {
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users JOIN spaces ON spaces.owner_id = users.id
             WHERE users.id = ?1"
        );
        let conn = self.db.reader();
        let mut stmt = conn.prepare_cached(&sql)?;
        Ok(stmt.query_row([id.0], user_from_row).optional()?)
    }

    /// Every account, by name.
    pub fn users(&self) -> Result<Vec<User>> {
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users JOIN spaces ON spaces.owner_id = users.id
             ORDER BY users.name"
        );
        let conn = self.db.reader();
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt.query_map([], user_from_row)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Replaces a password hash, ends the user's sessions and invalidates remembered
    /// verifications.
    pub fn set_password_hash(&self, name: &str, password_hash: &str) -> Result<()> {
        self.write(|tx| {
            let changed = tx.execute(
                "UPDATE users SET password_hash = ?2, credential_epoch = credential_epoch + 1
                 WHERE name = ?1",
                params![name, password_hash],
            )?;
            if changed == 0 {
                return Err(StoreError::UserNotFound { name: name.into() });
            }
            tx.execute(
                "DELETE FROM refresh_tokens
                 WHERE user_id = (SELECT id FROM users WHERE name = ?1)",
                [name],
            )?;
            Ok(())
        })
    }

    /// A space and its usage.
    pub fn space(&self, id: SpaceId) -> Result<Space> {
        let conn = self.db.reader();
        let mut stmt = conn.prepare_cached(
            "SELECT id, name, root_id, quota_bytes, used_bytes FROM spaces WHERE id = ?1",
        )?;
        let space = stmt
            .query_row([id.0], |r| {
                Ok(Space {
                    id: SpaceId(r.get(0)?),
                    name: r.get(1)?,
                    root: NodeId(r.get(2)?),
                    quota: r.get::<_, Option<i64>>(3)?.map(|q| q.unsigned_abs()),
                    used: r.get::<_, i64>(4)?.unsigned_abs(),
                })
            })
            .optional()?;
        space.ok_or_else(|| StoreError::Corrupt(format!("space {id} missing")))
    }

    /// Sets or lifts a space's quota.
    pub fn set_quota(&self, space: SpaceId, quota: Option<u64>) -> Result<()> {
        let quota = quota.map(|q| i64::try_from(q).unwrap_or(i64::MAX));
        self.write(|tx| {
            tx.execute(
                "UPDATE spaces SET quota_bytes = ?2 WHERE id = ?1",
                params![space.0, quota],
            )?;
            Ok(())
        })
    }

    /// Records a new app password by the digest of its secret.
    pub fn add_app_password(&self, user: UserId, label: &str, digest: &str) -> Result<i64> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO app_passwords (user_id, label, digest, created_at)
                 VALUES (?1, ?2, ?3, ?4)",
                params![user.0, label, digest, Timestamp::now().as_secs()],
            )?;
            Ok(tx.last_insert_rowid())
        })
    }

    /// A user's app passwords.
    pub fn app_passwords(&self, user: UserId) -> Result<Vec<AppPassword>> {
        let conn = self.db.reader();
        let mut stmt = conn.prepare_cached(
            "SELECT id, label, created_at FROM app_passwords WHERE user_id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([user.0], |r| {
            Ok(AppPassword {
                id: r.get(0)?,
                label: r.get(1)?,
                created_at: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Whether `digest` is one of the user's app passwords.
    pub fn app_password_matches(&self, user: UserId, digest: &str) -> Result<bool> {
        let conn = self.db.reader();
        let mut stmt = conn.prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM app_passwords WHERE user_id = ?1 AND digest = ?2)",
        )?;
        Ok(stmt.query_row(params![user.0, digest], |r| r.get(0))?)
    }

    /// Revokes an app password. Returns whether it existed.
    pub fn revoke_app_password(&self, user: UserId, id: i64) -> Result<bool> {
        self.write(|tx| {
            let removed = tx.execute(
                "DELETE FROM app_passwords WHERE user_id = ?1 AND id = ?2",
                params![user.0, id],
            )?;
            tx.execute(
                "UPDATE users SET credential_epoch = credential_epoch + 1 WHERE id = ?1",
                [user.0],
            )?;
            Ok(removed > 0)
        })
    }

    /// Records a browser session by the digest of its cookie's secret, with its CSRF token.
    pub fn add_session(
        &self,
        digest: &str,
        user: UserId,
        csrf: &str,
        expires_at: i64,
    ) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO sessions (digest, user_id, csrf, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![digest, user.0, csrf, Timestamp::now().as_secs(), expires_at],
            )?;
            Ok(())
        })
    }

    /// The user and CSRF token of a live session, by the digest of its secret.
    pub fn session(&self, digest: &str) -> Result<Option<(UserId, String)>> {
        let conn = self.db.reader();
        let mut stmt = conn.prepare_cached(
            "SELECT user_id, csrf FROM sessions WHERE digest = ?1 AND expires_at > ?2",
        )?;
        Ok(stmt
            .query_row(params![digest, Timestamp::now().as_secs()], |r| {
                Ok((UserId(r.get(0)?), r.get(1)?))
            })
            .optional()?)
    }

    /// Forgets expired sessions; returns how many.
    pub fn remove_expired_sessions(&self) -> Result<usize> {
        self.write(|tx| {
            Ok(tx.execute(
                "DELETE FROM sessions WHERE expires_at <= ?1",
                [Timestamp::now().as_secs()],
            )?)
        })
    }

    /// Ends a session.
    pub fn remove_session(&self, digest: &str) -> Result<()> {
        self.write(|tx| {
            tx.execute("DELETE FROM sessions WHERE digest = ?1", [digest])?;
            Ok(())
        })
    }

    /// Records a refresh token by its digest.
    pub fn add_refresh_token(
        &self,
        digest: &str,
        user: UserId,
        family: &str,
        expires_at: i64,
    ) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO refresh_tokens (digest, user_id, family, expires_at)
                 VALUES (?1, ?2, ?3, ?4)",
                params![digest, user.0, family, expires_at],
            )?;
            Ok(())
        })
    }

    /// Spends a refresh token. A token presented twice revokes its whole family.
    pub fn use_refresh_token(&self, digest: &str) -> Result<RefreshOutcome> {
        let now = Timestamp::now().as_secs();
        self.write(|tx| {
            let row: Option<(i64, String, i64, bool)> = tx
                .query_row(
                    "SELECT user_id, family, expires_at, used FROM refresh_tokens
                     WHERE digest = ?1",
                    [digest],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .optional()?;
            let Some((user, family, expires_at, used)) = row else {
                return Ok(RefreshOutcome::Invalid);
            };
            if used {
                tx.execute("DELETE FROM refresh_tokens WHERE family = ?1", [&family])?;
                return Ok(RefreshOutcome::Replayed);
            }
            if expires_at <= now {
                return Ok(RefreshOutcome::Invalid);
            }
            tx.execute(
                "UPDATE refresh_tokens SET used = 1 WHERE digest = ?1",
                [digest],
            )?;
            Ok(RefreshOutcome::Valid {
                user: UserId(user),
                family,
            })
        })
    }

    /// Ends the session a refresh token belongs to.
    pub fn revoke_refresh_family_of(&self, digest: &str) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM refresh_tokens WHERE family =
                    (SELECT family FROM refresh_tokens WHERE digest = ?1)",
                [digest],
            )?;
            Ok(())
        })
    }

    /// Marks an access token as revoked until it would have expired anyway.
    pub fn revoke_access_token(&self, jti: &str, expires_at: i64) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM revoked_tokens WHERE expires_at < ?1",
                [Timestamp::now().as_secs()],
            )?;
            tx.execute(
                "INSERT INTO revoked_tokens (jti, expires_at) VALUES (?1, ?2)
                 ON CONFLICT (jti) DO NOTHING",
                params![jti, expires_at],
            )?;
            Ok(())
        })
    }

    /// Whether an access token was revoked.
    pub fn is_access_token_revoked(&self, jti: &str) -> Result<bool> {
        let conn = self.db.reader();
        let mut stmt =
            conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM revoked_tokens WHERE jti = ?1)")?;
        Ok(stmt.query_row([jti], |r| r.get(0))?)
    }

    /// The stored value of a setting, storing `make()` first if there is none. Safe when
    /// several processes race: the first value stored wins.
    pub fn setting_or_insert(&self, key: &str, make: impl FnOnce() -> String) -> Result<String> {
        self.write(|tx| {
            let existing: Option<String> = tx
                .query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
                    r.get(0)
                })
                .optional()?;
            if let Some(value) = existing {
                return Ok(value);
            }
            let value = make();
            tx.execute(
                "INSERT INTO settings (key, value) VALUES (?1, ?2)",
                params![key, value],
            )?;
            Ok(value)
        })
    }
}
