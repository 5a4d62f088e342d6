//! WebDAV locks kept in the store: they survive a restart and really expire.

use std::io::Cursor;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use dav_server::davpath::DavPath;
use dav_server::ls::{DavLock, DavLockSystem, LsFuture};
use futures_util::FutureExt;
use ruche_store::{LockRecord, SpaceId, Store, Timestamp};
use xmltree::Element;

use crate::fs::{blocking, segments};

/// The lock system of one space.
#[derive(Debug, Clone)]
pub struct StoreLocks {
    pub(crate) store: Arc<Store>,
    pub(crate) space: SpaceId,
    /// The URL prefix the space is served under, for the lock roots in answers.
    pub(crate) prefix: String,
}

/// A lock's path as stored: normalised segments joined by `/`, without slashes at the ends.
pub(crate) fn lock_key(path: &DavPath) -> String {
    let segments = segments(path).unwrap_or_default();
    segments
        .iter()
        .map(|s| ruche_store::normalize_name(s).unwrap_or_else(|_| s.clone()))
        .collect::<Vec<_>>()
        .join("/")
}

/// Whether `ancestor` is `path` or one of the folders above it.
fn is_ancestor_or_self(ancestor: &str, path: &str) -> bool {
    ancestor.is_empty()
        || ancestor == path
        || (path.starts_with(ancestor) && path.as_bytes().get(ancestor.len()) == Some(&b'/'))
}

/// Whether `lock` covers `path`: it is on it, or deep on a folder above it.
pub(crate) fn covers(lock: &LockRecord, path: &str) -> bool {
    lock.path == path || (lock.deep && is_ancestor_or_self(&lock.path, path))
}

/// Rebuilds the request path of a stored lock, under the handler's URL prefix.
fn lock_path(prefix: &str, key: &str) -> Option<DavPath> {
    let segments: Vec<&str> = key.split('/').filter(|s| !s.is_empty()).collect();
    let mut path = DavPath::new(&crate::href::href(prefix, &segments, false)).ok()?;
    path.set_prefix(prefix).ok()?;
    Some(path)
}

fn to_dav_lock(prefix: &str, record: &LockRecord) -> DavLock {
    // A stored key always rebuilds into a path; the root stands in should that ever fail.
    let path = lock_path(prefix, &record.path)
        .unwrap_or_else(|| DavPath::new("/").expect("the root path is valid"));
    let owner = record
        .owner_xml
        .as_ref()
        .and_then(|xml| Element::parse(Cursor::new(xml)).ok())
        .map(Box::new);
    DavLock {
        token: record.token.clone(),
        path: Box::new(path),
        principal: record.principal.clone(),
        owner,
        timeout_at: record.expires.map(SystemTime::from),
        timeout: record.timeout_secs.map(Duration::from_secs),
        shared: record.shared,
        deep: record.deep,
    }
}

/// Serialises the `owner` element of a LOCK request. dav-server hands it over with the
/// `D` prefix but without the declaration binding it, which the writer needs.
fn owner_xml(owner: Option<&Element>) -> Option<Vec<u8>> {
    let mut owner = owner?.clone();
    let mut namespaces = owner
        .namespaces
        .take()
        .unwrap_or_else(xmltree::Namespace::empty);
    namespaces.put("D", "DAV:");
    owner.namespaces = Some(namespaces);
    let mut xml = Vec::new();
    match owner.write(&mut xml) {
        Ok(()) => Some(xml),
        Err(error) => {
            tracing::debug!(%error, "lock owner not kept");
            None
        }
    }
}

/// The first lock that stands in the way of a request on `path` holding `tokens`.
/// `deep` also looks at locks below `path`; `shared_ok` lets shared locks coexist.
fn blocking_lock(
    locks: &[LockRecord],
    path: &str,
    deep: bool,
    tokens: &[String],
    principal: Option<&str>,
    ignore_principal: bool,
    shared_ok: bool,
) -> Option<LockRecord> {
    let held = |l: &LockRecord| {
        tokens.contains(&l.token) && (ignore_principal || principal == l.principal.as_deref())
    };
    let relevant = locks
        .iter()
        .filter(|l| covers(l, path) || (deep && is_ancestor_or_self(path, &l.path)));
    let mut shared_seen = None;
    let mut holds_one = false;
    for lock in relevant {
        if held(lock) {
            holds_one = true;
        } else if !lock.shared {
            return Some(lock.clone());
        } else if !shared_ok {
            shared_seen.get_or_insert_with(|| lock.clone());
        }
    }
    if holds_one {
        None
    } else {
        shared_seen
    }
}

impl DavLockSystem for StoreLocks {
    fn lock(
        &self,
        path: &DavPath,
        principal: Option<&str>,
        owner: Option<&Element>,
        timeout: Option<Duration>,
        shared: bool,
        deep: bool,
    ) -> LsFuture<'_, Result<DavLock, DavLock>> {
        let record = LockRecord {
            token: format!("opaquelocktoken:{}", uuid::Uuid::new_v4()),
            space: self.space,
            path: lock_key(path),
            principal: principal.map(str::to_owned),
            owner_xml: owner_xml(owner),
            timeout_secs: timeout.map(|t| t.as_secs().max(1)),
            expires: timeout.map(|t| Timestamp::now().after(t)),
            shared,
            deep,
        };
        let result = blocking(|| {
            self.store.add_lock(&record, |current| {
                blocking_lock(current, &record.path, deep, &[], None, true, shared)
            })
        });
        let answer = match result {
            Ok(Ok(())) => Ok(to_dav_lock(&self.prefix, &record)),
            Ok(Err(conflict)) => Err(to_dav_lock(&self.prefix, &conflict)),
            Err(error) => {
                tracing::error!(%error, "storing a lock failed");
                Err(to_dav_lock(&self.prefix, &record))
            }
        };
        async move { answer }.boxed()
    }

    fn unlock(&self, path: &DavPath, token: &str) -> LsFuture<'_, Result<(), ()>> {
        let key = lock_key(path);
        let result = blocking(|| {
            let locks = self.store.locks(self.space)?;
            let applies = locks.iter().any(|l| l.token == token && covers(l, &key));
            if !applies {
                return Ok(false);
            }
            self.store.remove_lock(self.space, token)
        });
        let answer = match result {
            Ok(true) => Ok(()),
            _ => Err(()),
        };
        async move { answer }.boxed()
    }

    fn refresh(
        &self,
        path: &DavPath,
        token: &str,
        timeout: Option<Duration>,
    ) -> LsFuture<'_, Result<DavLock, ()>> {
        let key = lock_key(path);
        let result = blocking(|| {
            let locks = self.store.locks(self.space)?;
            if !locks.iter().any(|l| l.token == token && covers(l, &key)) {
                return Ok(None);
            }
            let secs = timeout.map(|t| t.as_secs().max(1));
            self.store.refresh_lock(self.space, token, secs)
        });
        let answer = match result {
            Ok(Some(record)) => Ok(to_dav_lock(&self.prefix, &record)),
            _ => Err(()),
        };
        async move { answer }.boxed()
    }

    fn check(
        &self,
        path: &DavPath,
        principal: Option<&str>,
        ignore_principal: bool,
        deep: bool,
        submitted_tokens: &[String],
    ) -> LsFuture<'_, Result<(), DavLock>> {
        let key = lock_key(path);
        let answer = match self.store.locks(self.space) {
            Ok(locks) => {
                let conflict = blocking_lock(
                    &locks,
                    &key,
                    deep,
                    submitted_tokens,
                    principal,
                    ignore_principal,
                    false,
                );
                conflict.map_or(Ok(()), |l| Err(to_dav_lock(&self.prefix, &l)))
            }
            Err(error) => {
                tracing::error!(%error, "reading locks failed");
                Err(to_dav_lock(
                    &self.prefix,
                    &LockRecord {
                        token: String::new(),
                        space: self.space,
                        path: key,
                        principal: None,
                        owner_xml: None,
                        timeout_secs: None,
                        expires: None,
                        shared: false,
                        deep: false,
                    },
                ))
            }
        };
        async move { answer }.boxed()
    }

    fn discover(&self, path: &DavPath) -> LsFuture<'_, Vec<DavLock>> {
        let key = lock_key(path);
        let locks = self.store.locks(self.space).unwrap_or_default();
        let found = locks
            .iter()
            .filter(|l| covers(l, &key))
            .map(|l| to_dav_lock(&self.prefix, l))
            .collect();
        async move { found }.boxed()
    }

    fn delete(&self, path: &DavPath) -> LsFuture<'_, Result<(), ()>> {
        let key = lock_key(path);
        let result = blocking(|| self.store.remove_locks_under(self.space, &key)).map_err(|_| ());
        async move { result }.boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lock(path: &str, deep: bool, shared: bool) -> LockRecord {
        LockRecord {
            token: format!("t-{path}"),
            space: SpaceId(1),
            path: path.into(),
            principal: None,
            owner_xml: None,
            timeout_secs: None,
            expires: None,
            shared,
            deep,
        }
    }

    #[test]
    fn a_deep_lock_on_a_folder_blocks_its_files() {
        let locks = [lock("a", true, false)];
        assert!(blocking_lock(&locks, "a/b.txt", false, &[], None, true, false).is_some());
        assert!(blocking_lock(&locks, "ab.txt", false, &[], None, true, false).is_none());
    }

    #[test]
    fn the_holder_of_the_token_passes() {
        let locks = [lock("a.txt", false, false)];
        let tokens = ["t-a.txt".to_owned()];
        assert!(blocking_lock(&locks, "a.txt", false, &tokens, None, true, false).is_none());
    }

    #[test]
    fn shared_locks_coexist_but_block_writers_without_a_token() {
        let locks = [lock("a.txt", false, true)];
        assert!(blocking_lock(&locks, "a.txt", false, &[], None, true, true).is_none());
        assert!(blocking_lock(&locks, "a.txt", false, &[], None, true, false).is_some());
    }

    #[test]
    fn a_deep_check_sees_locks_below() {
        let locks = [lock("a/b.txt", false, false)];
        assert!(blocking_lock(&locks, "a", true, &[], None, true, false).is_some());
        assert!(blocking_lock(&locks, "a", false, &[], None, true, false).is_none());
    }
}
