//! `ruche serve`: the HTTP server, its routes, and its life cycle.

use std::io::Write;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use http_body::Frame;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tracing::Instrument;

use crate::authn::{self, AuthFailure};
use crate::config::Config;
use crate::fragment::{self, FragmentLog, Observed};
use crate::idle::Idle;
use crate::state::{AppState, SharedState};
use crate::{
    activity, api, collab, files, login_flow, nextcloud, search, session, tls, trash, versions,
};

/// How long uploads in flight may take to finish after SIGTERM before they are dropped
/// (a dropped upload leaves the previous content in place).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(60);

pub fn run(config: Config) -> anyhow::Result<()> {
    init_logging();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(config))
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUCHE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: a log file or journal gets plain, greppable lines.
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let state = Arc::new(AppState::open(&config)?);
    create_first_admin(&state, &config)?;
    let tls = match &config.tls {
        Some(files) => Some(tls::acceptor(files)?),
        None => None,
    };
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let local = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    println!("listening on {scheme}://{local}");
    std::io::stdout().flush()?;
    tracing::info!(address = %local, data = %config.data.display(), "ruche started");

    tokio::spawn(housekeeping(state.clone(), Keep::from(&config)));
    let app = router(state.clone());
    accept_loop(listener, app, tls, &config).await;
    // Open documents are saved to their files before the process ends.
    state.collab.shutdown().await;
    tracing::info!("ruche stopped");
    Ok(())
}

fn router(state: SharedState) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics))
        .merge(api::routes())
        .merge(nextcloud::routes())
        .merge(login_flow::routes())
        .merge(collab::routes())
        .merge(trash::routes())
        .merge(versions::routes())
        .merge(search::routes())
        .merge(activity::routes())
        .merge(session::routes())
        .merge(files::routes())
        .fallback(dav_or_not_found)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            session::guard,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}

async fn accept_loop(
    listener: TcpListener,
    app: Router,
    tls: Option<tls::Acceptor>,
    config: &Config,
) {
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(config.max_connections));
    let idle = config.idle_timeout;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30));
    let builder = Arc::new(builder);
    let mut shutdown = std::pin::pin!(shutdown_signal());
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let fragments = Arc::new(FragmentLog::default());
        let log = fragments.clone();
        let service = app
            .clone()
            .map_request(move |mut req: Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                log.mark(&mut req);
                req
            });
        let service = TowerToHyperService::new(service);
        let (builder, watcher, tls) = (builder.clone(), graceful.watcher(), tls.clone());
        tokio::spawn(async move {
            let _slot = slot;
            let stream = Idle::new(stream, idle);
            let result = match tls {
                None => {
                    let io = TokioIo::new(Observed::new(stream, fragments));
                    let conn = builder.serve_connection_with_upgrades(io, service);
                    watcher.watch(conn).await
                }
                Some(acceptor) => match tls::handshake(&acceptor, stream).await {
                    Some(stream) => {
                        let io = TokioIo::new(Observed::new(stream, fragments));
                        let conn = builder.serve_connection_with_upgrades(io, service);
                        watcher.watch(conn).await
                    }
                    None => return,
                },
            };
            if let Err(error) = result {
                tracing::debug!(%peer, error = %error, "connection ended with an error");
            }
        });
    }
    tracing::info!("stopping: waiting for requests in flight");
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still in flight after the grace period were dropped");
    }
}

/// How long the housekeeping keeps what it prunes.
#[derive(Clone, Copy)]
struct Keep {
    trash: Duration,
    versions: ruche_store::Retention,
    activity: Duration,
}

impl From<&Config> for Keep {
    fn from(config: &Config) -> Keep {
        let days = |n: u32| Duration::from_secs(u64::from(n) * 24 * 3600);
        Keep {
            trash: days(config.trash_days),
            versions: config.retention,
            activity: days(config.activity_days),
        }
    }
}

/// The moment `age` ago.
fn ago(age: Duration) -> ruche_store::Timestamp {
    let age = i64::try_from(age.as_nanos()).unwrap_or(i64::MAX);
    ruche_store::Timestamp(ruche_store::Timestamp::now().0.saturating_sub(age))
}

/// The hourly chores, also run as the server starts: abandoned chunked uploads (a day
/// without a chunk) are removed; what stayed in a trash too long is purged; versions are
/// thinned with age; contents nothing refers to any more are removed an hour after they
/// were found so (a backup running meanwhile may still be copying them); old activity and
/// expired sessions are forgotten.
async fn housekeeping(state: SharedState, keep: Keep) {
    const ABANDONED: Duration = Duration::from_secs(24 * 3600);
    const GRACE: Duration = Duration::from_secs(3600);
    let mut every_hour = tokio::time::interval(Duration::from_secs(3600));
    loop {
        every_hour.tick().await;
        chore(&state, "abandoned chunked uploads removed", move |store| {
            store.expire_chunked(ABANDONED)
        })
        .await;
        chore(&state, "old trash purged", move |store| {
            store.purge_trash_before(ago(keep.trash))
        })
        .await;
        chore(&state, "old versions thinned out", move |store| {
            store.thin_versions(keep.versions, ruche_store::Timestamp::now())
        })
        .await;
        chore(&state, "old activity forgotten", move |store| {
            store.prune_activity(ago(keep.activity))
        })
        .await;
        chore(&state, "expired sessions forgotten", |store| {
            store.remove_expired_sessions()
        })
        .await;
        chore(&state, "unreferenced contents removed", |store| {
            store
                .collect_garbage(GRACE)
                .map(|collected| usize::try_from(collected.contents).unwrap_or(usize::MAX))
        })
        .await;
    }
}

/// Runs one chore on a blocking thread and logs how many things it handled, if any.
async fn chore(
    state: &SharedState,
    done: &'static str,
    work: impl FnOnce(&ruche_store::Store) -> ruche_store::Result<usize> + Send + 'static,
) {
    let store = state.store.clone();
    match tokio::task::spawn_blocking(move || work(&store)).await {
        Ok(Ok(0)) => {}
        Ok(Ok(count)) => tracing::info!(count, "{done}"),
        Ok(Err(error)) => tracing::warn!(%error, chore = done, "housekeeping failed"),
        Err(error) => tracing::warn!(%error, chore = done, "housekeeping failed"),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

async fn index() -> Html<&'static str> {
    Html(include_str!("../../../web/index.html"))
}

async fn metrics(State(state): State<SharedState>) -> impl IntoResponse {
    let text = state.metrics.render(state.store.write_latency());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}

async fn dav_or_not_found(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    if let Some(uploads) = nextcloud::uploads_mount(req.uri().path()) {
        return chunked_upload(&state, peer, req, uploads).await;
    }
    if let Some(trashbin) = nextcloud::trashbin_mount(req.uri().path()) {
        return own_collection(&state, peer, req, trashbin, Collection::Trashbin).await;
    }
    if let Some(versions) = nextcloud::versions_mount(req.uri().path()) {
        return own_collection(&state, peer, req, versions, Collection::Versions).await;
    }
    let Some(mount) = nextcloud::dav_mount(req.uri().path()) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let user = match authn::authenticate(&state, req.headers(), peer.ip()).await {
        Ok(user) => user,
        Err(failure) => return refusal(failure),
    };
    // A URL naming another user leads nowhere, whether that user exists or not.
    if mount
        .user_in_url
        .as_ref()
        .is_some_and(|named| *named != user.name)
    {
        return StatusCode::NOT_FOUND.into_response();
    }
    let who = ruche_dav::Principal {
        user: user.id,
        name: user.name,
        space: user.space,
    };
    let answer = if mount.prefix == "/dav" {
        state.dav.handle(req, &who).await
    } else {
        let service = ruche_dav::DavService::new(state.store.clone(), &mount.prefix);
        service.handle(req, &who).await
    };
    answer.map(Body::new)
}

async fn chunked_upload(
    state: &SharedState,
    peer: SocketAddr,
    req: Request,
    mount: nextcloud::UploadsMount,
) -> Response {
    let user = match authn::authenticate(state, req.headers(), peer.ip()).await {
        Ok(user) => user,
        Err(failure) => return refusal(failure),
    };
    if mount.user_in_url != user.name {
        return StatusCode::NOT_FOUND.into_response();
    }
    let who = ruche_dav::Principal {
        user: user.id,
        name: user.name,
        space: user.space,
    };
    state
        .chunked
        .handle(req, &who, &mount.prefix, &mount.files_prefix)
        .await
        .map(Body::new)
}

/// The WebDAV collections of a user beside the files.
enum Collection {
    Trashbin,
    Versions,
}

async fn own_collection(
    state: &SharedState,
    peer: SocketAddr,
    req: Request,
    mount: nextcloud::DavMount,
    collection: Collection,
) -> Response {
    let user = match authn::authenticate(state, req.headers(), peer.ip()).await {
        Ok(user) => user,
        Err(failure) => return refusal(failure),
    };
    if mount.user_in_url.as_deref() != Some(user.name.as_str()) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let who = ruche_dav::Principal {
        user: user.id,
        name: user.name,
        space: user.space,
    };
    let answer = match collection {
        Collection::Trashbin => {
            ruche_dav::trashbin::handle(&state.store, req, &who, &mount.prefix).await
        }
        Collection::Versions => {
            ruche_dav::versions::handle(&state.store, req, &who, &mount.prefix).await
        }
    };
    answer.map(Body::new)
}

fn refusal(failure: AuthFailure) -> Response {
    match failure {
        AuthFailure::Unauthorized => (
            StatusCode::UNAUTHORIZED,
            [(
                header::WWW_AUTHENTICATE,
                "Basic realm=\"ruche\", charset=\"UTF-8\"",
            )],
            "authentication required\n",
        )
            .into_response(),
        AuthFailure::Throttled => (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, "60")],
            "too many failed attempts, try later\n",
        )
            .into_response(),
        AuthFailure::Internal => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error; see the server log\n",
        )
            .into_response(),
    }
}

/// One span and one access line per request, with counters for `/metrics`. The query
/// string is never logged: it may carry a token. A request whose target had a fragment is
/// refused here, before any route sees the truncated target.
async fn observe(State(state): State<SharedState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    let span = tracing::info_span!("request", id = %request_id);
    let req = req.map(|body| Body::new(Counted::new(body, state.clone(), Direction::In)));

    let response = match fragment::refusal(&req) {
        Some(refusal) => refusal,
        None => next.run(req).instrument(span.clone()).await,
    };

    let status = response.status();
    let elapsed = started.elapsed();
    state
        .metrics
        .record_request(method.as_str(), status.as_u16(), elapsed);
    span.in_scope(|| {
        tracing::info!(
            method = %method,
            path = %path,
            status = status.as_u16(),
            ms = elapsed.as_millis() as u64,
            "access"
        );
    });
    let mut response = response.map(|body| Body::new(Counted::new(body, state, Direction::Out)));
    if status.is_server_error() {
        if let Ok(value) = HeaderValue::from_str(&request_id) {
            response.headers_mut().insert("x-request-id", value);
        }
    }
    response
}

#[derive(Clone, Copy)]
enum Direction {
    In,
    Out,
}

/// A body that counts the bytes passing through it.
struct Counted {
    inner: Body,
    state: SharedState,
    direction: Direction,
}

impl Counted {
    fn new(inner: Body, state: SharedState, direction: Direction) -> Counted {
        Counted {
            inner,
            state,
            direction,
        }
    }
}

impl http_body::Body for Counted {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                let n = data.len() as u64;
                match self.direction {
                    Direction::In => self.state.metrics.add_bytes_in(n),
                    Direction::Out => self.state.metrics.add_bytes_out(n),
                }
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// On the very first start, creates `admin` with a random password, shown once and kept in
/// a file only the server's user can read.
fn create_first_admin(state: &AppState, config: &Config) -> anyhow::Result<()> {
    if !state.store.users()?.is_empty() {
        return Ok(());
    }
    let password = ruche_auth::new_app_password();
    let hash = ruche_auth::hash_password(&password)?;
    state.store.create_user("admin", &hash, true)?;
    let file = config.data.join("initial-admin-password");
    write_private(&file, &format!("{password}\n"))
        .with_context(|| format!("{}: cannot write", file.display()))?;
    eprintln!(
        "created user admin with password {password} (also in {})",
        file.display()
    );
    Ok(())
}

fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}
