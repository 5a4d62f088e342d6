//! What every request handler shares.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use ruche_auth::{CredentialCache, LoginLimiter, TokenKeys, TokenVerifier};
use ruche_collab::{CollabConfig, CollabService};
use ruche_dav::{ChunkedUploads, DavService};
use ruche_store::{Store, StoreConfig};

use crate::config::Config;
use crate::login_flow::LoginFlows;
use crate::metrics::Metrics;

/// Lifetime of an access token.
pub const ACCESS_TTL: Duration = Duration::from_secs(15 * 60);
/// Lifetime of a refresh token.
pub const REFRESH_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// How long a verified Basic credential is remembered.
const CREDENTIAL_TTL: Duration = Duration::from_secs(120);

const SIGNING_KEY_SETTING: &str = "token_signing_key";

pub struct AppState {
    pub store: Arc<Store>,
    pub keys: TokenKeys,
    pub verifier: TokenVerifier,
    pub limiter: LoginLimiter,
    pub credentials: CredentialCache,
    pub dav: DavService,
    pub chunked: ChunkedUploads,
    pub collab: CollabService,
    pub metrics: Metrics,
    pub login_flows: LoginFlows,
    /// `https` when the server terminates TLS itself, else `http`.
    pub scheme: &'static str,
}

pub type SharedState = Arc<AppState>;

impl AppState {
    pub fn open(config: &Config) -> anyhow::Result<AppState> {
        let store = Store::open(StoreConfig {
            data_dir: config.data.clone(),
            default_quota: config.default_quota,
        })
        .with_context(|| format!("{}: cannot open the data folder", config.data.display()))?;
        let stale = store
            .remove_stale_uploads()
            .context("removing uploads left by a previous run")?;
        if stale > 0 {
            tracing::info!(removed = stale, "uploads left by a previous run removed");
        }
        let store = Arc::new(store);
        let keys = signing_keys(&store)?;
        Ok(AppState {
            dav: DavService::new(store.clone(), "/dav"),
            chunked: ChunkedUploads::new(store.clone()),
            collab: CollabService::new(
                store.clone(),
                CollabConfig {
                    max_messages_per_second: config.collab_rate,
                    ..CollabConfig::default()
                },
            ),
            verifier: keys.verifier(),
            keys,
            store,
            limiter: LoginLimiter::default_policy(),
            credentials: CredentialCache::new(CREDENTIAL_TTL, 10_000),
            metrics: Metrics::default(),
            login_flows: LoginFlows::default(),
            scheme: if config.tls.is_some() {
                "https"
            } else {
                "http"
            },
        })
    }
}

/// The token signing key, generated on first start and kept in the data folder's database
/// so that every process of the deployment signs with the same key.
fn signing_keys(store: &Store) -> anyhow::Result<TokenKeys> {
    let mut generated = None;
    let pem = store.setting_or_insert(SIGNING_KEY_SETTING, || match TokenKeys::generate() {
        Ok((_, pem)) => pem,
        Err(error) => {
            generated = Some(error);
            String::new()
        }
    })?;
    if let Some(error) = generated {
        return Err(error).context("generating the token signing key");
    }
    TokenKeys::from_private_pem(&pem).context("loading the token signing key")
}
