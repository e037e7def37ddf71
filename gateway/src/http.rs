//! The HTTP side: the web UI's files (built into the binary, so `cargo
//! run` serves them from anywhere), `/ws`, uploads and downloads, health,
//! metrics, and the headers every response carries (`gateway/PROTOCOL.md`
//! §9).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::Body;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, Path, Request, State as AxumState};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use confab_wire::BlobId;
use confab_wire::client::{
    ClientError, ErrorCode, MAX_CLIENT_CHUNK, Request as NodeRequest, Response as NodeResponse,
    SessionId,
};
use futures_util::StreamExt;
use serde_json::json;

use crate::State;
use crate::render;
use crate::socket;

/// The Content-Security-Policy of every response.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob:; media-src 'self' blob:; connect-src 'self'; worker-src 'self'; manifest-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The Permissions-Policy of every response: the web UI uses none of
/// these, so no page of this origin (or frame in it) may.
pub const PERMISSIONS_POLICY: &str = "accelerometer=(), autoplay=(), camera=(), display-capture=(), geolocation=(), gyroscope=(), magnetometer=(), microphone=(), midi=(), payment=(), usb=(), serial=(), hid=(), screen-wake-lock=(), xr-spatial-tracking=(), publickey-credentials-get=(), clipboard-read=()";

macro_rules! ui_files {
    ($($path:literal),* $(,)?) => {
        /// The web UI, by URL path.
        pub const UI_FILES: &[(&str, &[u8])] = &[
            $(($path, include_bytes!(concat!("../ui", $path))),)*
        ];
    };
}

ui_files!(
    "/index.html",
    "/app.js",
    "/cache.js",
    "/client.js",
    "/dom.js",
    "/drafts.js",
    "/emoji.js",
    "/errors.js",
    "/files.js",
    "/history.js",
    "/icon.svg",
    "/manifest.webmanifest",
    "/markdown.js",
    "/notify.js",
    "/outbox.js",
    "/protocol.js",
    "/rich.js",
    "/session.js",
    "/state.js",
    "/styles.css",
    "/sw.js",
    "/theme.js",
    "/themes.js",
    "/types.js",
    "/util.js",
    "/views/common.js",
    "/views/composer.js",
    "/views/dialogs.js",
    "/views/login.js",
    "/views/message.js",
    "/views/panels.js",
    "/views/picker.js",
    "/views/room.js",
    "/views/shell.js",
    "/views/shortcodes.js",
    "/views/sidebar.js",
    "/views/timeline.js",
);

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("webmanifest") => "application/manifest+json",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

async fn ui(Path(path): Path<String>) -> Response {
    serve_file(&format!("/{path}"))
}

async fn index() -> Response {
    serve_file("/index.html")
}

fn serve_file(path: &str) -> Response {
    let Some((_, bytes)) = UI_FILES.iter().find(|(p, _)| *p == path) else {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    };
    // The service worker is checked for updates on every load; the rest
    // is revalidated (the files change with the binary).
    let cache = if path == "/sw.js" {
        "no-cache"
    } else {
        "no-cache, must-revalidate"
    };
    (
        [
            (header::CONTENT_TYPE, content_type(path)),
            (header::CACHE_CONTROL, cache),
        ],
        *bytes,
    )
        .into_response()
}

/// An error response with the protocol's body and, for 429, `Retry-After`.
fn error_response(e: &ClientError) -> Response {
    let status = match e.code {
        ErrorCode::BadRequest | ErrorCode::UnknownRequest => StatusCode::BAD_REQUEST,
        ErrorCode::Unauthenticated | ErrorCode::TokenExpired => StatusCode::UNAUTHORIZED,
        ErrorCode::Forbidden | ErrorCode::Disabled => StatusCode::FORBIDDEN,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::Conflict => StatusCode::CONFLICT,
        ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::UnsupportedType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ErrorCode::Unavailable => StatusCode::BAD_GATEWAY,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let mut r = (
        status,
        axum::Json(json!({ "error": render::error_body(e) })),
    )
        .into_response();
    if let Some(ms) = e.retry_after_ms
        && let Ok(v) = HeaderValue::from_str(&ms.div_ceil(1000).max(1).to_string())
    {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

fn bad(message: &str) -> ClientError {
    ClientError::new(ErrorCode::BadRequest, message)
}

fn bearer(
    headers: &HeaderMap,
    state: &State,
) -> Result<confab_wire::client::AccessToken, ClientError> {
    let text = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| {
            ClientError::new(
                ErrorCode::Unauthenticated,
                "send `Authorization: Bearer <access token>`",
            )
        })?;
    socket::check_token(state, text.trim())
}

/// Percent-decoding of `X-Filename` (what `encodeURIComponent` makes).
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Session ids for HTTP requests, apart from sockets'.
static HTTP_SESSIONS: AtomicU64 = AtomicU64::new(1 << 62);

/// Downloads one user may have in progress on this gateway.
pub const DOWNLOADS_PER_USER_MAX: usize = 8;

/// The node session of one HTTP request (an upload or a download). It
/// ends when the guard drops: when the request ends, however it ends (done,
/// failed, or the client went away mid-way), so no session outlives its
/// request and keeps its user "online".
struct HttpSession {
    link: crate::link::Link,
    id: SessionId,
}

impl HttpSession {
    fn new(state: &State) -> HttpSession {
        HttpSession {
            link: state.link.clone(),
            id: SessionId(HTTP_SESSIONS.fetch_add(1, Ordering::Relaxed)),
        }
    }
}

impl Drop for HttpSession {
    fn drop(&mut self) {
        self.link.notify(self.id, NodeRequest::EndSession);
    }
}

/// A user's download in progress, counted while it lives.
struct DownloadSlot {
    counts: Arc<std::sync::Mutex<std::collections::HashMap<String, usize>>>,
    user: String,
}

impl DownloadSlot {
    fn take(state: &State, user: &str) -> Option<DownloadSlot> {
        let mut c = state.downloads.lock().unwrap_or_else(|p| p.into_inner());
        let n = c.entry(user.to_string()).or_insert(0);
        if *n >= DOWNLOADS_PER_USER_MAX {
            return None;
        }
        *n += 1;
        Some(DownloadSlot {
            counts: state.downloads.clone(),
            user: user.to_string(),
        })
    }
}

impl Drop for DownloadSlot {
    fn drop(&mut self) {
        let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = c.get_mut(&self.user) {
            *n -= 1;
            if *n == 0 {
                c.remove(&self.user);
            }
        }
    }
}

/// Takes a request token of the user (uploads and downloads count as
/// requests, like a socket's).
fn take_request(state: &State, user: &confab_wire::UserId) -> Result<(), ClientError> {
    state
        .requests
        .take(&format!("u:{user}"), std::time::Instant::now())
        .map_err(|ms| {
            state.metrics.limited("requests");
            let mut e = ClientError::new(ErrorCode::RateLimited, "too many requests; slow down");
            e.retry_after_ms = Some(ms);
            e
        })
}

async fn upload(
    AxumState(state): AxumState<Arc<State>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match do_upload(&state, &headers, body).await {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => error_response(&e),
    }
}

async fn do_upload(
    state: &State,
    headers: &HeaderMap,
    body: Body,
) -> Result<serde_json::Value, ClientError> {
    let token = bearer(headers, state)?;
    let name = headers
        .get("x-filename")
        .and_then(|v| v.to_str().ok())
        .and_then(percent_decode)
        .filter(|n| !n.is_empty() && n.len() <= confab_wire::event::MAX_FILE_NAME_LEN)
        .ok_or_else(|| {
            bad("send the file name, percent-encoded, in X-Filename (1 to 255 bytes)")
        })?;
    let max = state.max_upload_bytes();
    let too_large = || {
        ClientError::new(
            ErrorCode::TooLarge,
            format!("files are limited to {} MiB here", max >> 20),
        )
    };
    let size: u64 = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| bad("send Content-Length"))?;
    if size > max {
        return Err(too_large());
    }
    take_request(state, &token.claims.user)?;
    let session = HttpSession::new(state);
    let call = |body: NodeRequest| {
        state
            .link
            .request(session.id, crate::socket_trace(), Some(token.clone()), body)
    };
    let result = async {
        let upload = match call(NodeRequest::UploadStart { size, name }).await? {
            NodeResponse::Upload { upload } => upload,
            _ => return Err(ClientError::new(ErrorCode::Internal, "unexpected answer")),
        };
        let mut stream = body.into_data_stream();
        let mut offset = 0u64;
        let mut chunk: Vec<u8> = Vec::with_capacity(MAX_CLIENT_CHUNK);
        // A body that stops sending cancels the upload (`http.upload_idle_secs`;
        // the node cancels one idle for a minute by itself).
        let idle = std::time::Duration::from_secs(u64::from(state.config.http.upload_idle_secs));
        loop {
            let next = tokio::time::timeout(idle, stream.next())
                .await
                .map_err(|_| {
                    ClientError::new(
                        ErrorCode::BadRequest,
                        "the upload stopped sending; it was cancelled",
                    )
                })?;
            let done = next.is_none();
            if let Some(bytes) = next {
                let bytes = bytes.map_err(|_| bad("the upload was cut off"))?;
                if offset + (chunk.len() + bytes.len()) as u64 > size {
                    return Err(bad("the body is longer than Content-Length"));
                }
                chunk.extend_from_slice(&bytes);
            }
            while chunk.len() >= MAX_CLIENT_CHUNK || (done && !chunk.is_empty()) {
                let take = chunk.len().min(MAX_CLIENT_CHUNK);
                let data: Vec<u8> = chunk.drain(..take).collect();
                let n = data.len() as u64;
                call(NodeRequest::UploadChunk {
                    upload,
                    offset,
                    data,
                })
                .await?;
                offset += n;
            }
            if done {
                break;
            }
        }
        match call(NodeRequest::UploadFinish { upload }).await? {
            NodeResponse::Attachment(a) => Ok(render::attachment(&a)),
            _ => Err(ClientError::new(ErrorCode::Internal, "unexpected answer")),
        }
    }
    .await;
    drop(session);
    result
}

async fn blob(
    AxumState(state): AxumState<Arc<State>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    match do_blob(&state, &id, &headers).await {
        Ok(r) => r,
        Err(e) => error_response(&e),
    }
}

async fn do_blob(state: &State, id: &str, headers: &HeaderMap) -> Result<Response, ClientError> {
    let token = bearer(headers, state)?;
    let id = percent_decode(id).unwrap_or_default();
    let blob = id
        .parse::<BlobId>()
        .or_else(|_| BlobId::from_b32(&id))
        .map_err(|_| ClientError::new(ErrorCode::NotFound, "no such file"))?;
    take_request(state, &token.claims.user)?;
    let Some(slot) = DownloadSlot::take(state, &token.claims.user.to_string()) else {
        state.metrics.limited("downloads");
        let mut e = ClientError::new(
            ErrorCode::RateLimited,
            format!("at most {DOWNLOADS_PER_USER_MAX} downloads at once; wait for one to finish"),
        );
        e.retry_after_ms = Some(1000);
        return Err(e);
    };
    let session = HttpSession::new(state);
    let fetch = |offset: u64| {
        state.link.request(
            session.id,
            crate::socket_trace(),
            Some(token.clone()),
            NodeRequest::FetchBlob {
                blob,
                offset,
                max: MAX_CLIENT_CHUNK as u32,
            },
        )
    };
    let first = fetch(0).await;
    let (total, mime, data) = match first {
        Ok(NodeResponse::Blob {
            total, mime, data, ..
        }) => (total, mime, data),
        Ok(_) => return Err(ClientError::new(ErrorCode::Internal, "unexpected answer")),
        Err(e) => return Err(e),
    };
    // The rest streams as it comes from the node. The stream owns the
    // session and the slot: both end when it does, or when it is dropped
    // because the client went away.
    let token2 = token.clone();
    let held = Arc::new((session, slot));
    let rest = futures_util::stream::unfold(data.len() as u64, move |offset| {
        let held = held.clone();
        let token = token2.clone();
        async move {
            if offset >= total {
                return None;
            }
            let session = &held.0;
            match session
                .link
                .request(
                    session.id,
                    crate::socket_trace(),
                    Some(token),
                    NodeRequest::FetchBlob {
                        blob,
                        offset,
                        max: MAX_CLIENT_CHUNK as u32,
                    },
                )
                .await
            {
                Ok(NodeResponse::Blob { data, .. }) if !data.is_empty() => {
                    let n = data.len() as u64;
                    Some((
                        Ok::<_, std::io::Error>(axum::body::Bytes::from(data)),
                        offset + n,
                    ))
                }
                _ => Some((
                    Err(std::io::Error::other("the node stopped sending the file")),
                    total,
                )),
            }
        }
    });
    let head = futures_util::stream::once(async move {
        Ok::<_, std::io::Error>(axum::body::Bytes::from(data))
    });
    let body = Body::from_stream(head.chain(rest));
    let inline = crate::INLINE_IMAGES.contains(&mime.as_str());
    let disposition = if inline {
        "inline".to_string()
    } else {
        format!("attachment; filename=\"{}\"", blob.to_b32())
    };
    let mut r = Response::new(body);
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&mime) {
        h.insert(header::CONTENT_TYPE, v);
    }
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(total));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=31536000, immutable"),
    );
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(r)
}

async fn ws(
    AxumState(state): AxumState<Arc<State>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    slot: Option<axum::Extension<Arc<crate::serve::ConnSlot>>>,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
    upgrade: WebSocketUpgrade,
) -> Response {
    if !state.origin_allowed(&headers) {
        return (StatusCode::FORBIDDEN, "origin not allowed\n").into_response();
    }
    if !state.link.is_up() {
        return error_response(&ClientError::new(
            ErrorCode::Unavailable,
            "the gateway is not connected to its node; try again shortly",
        ));
    }
    let client = state
        .config
        .http
        .trusted_proxies
        .client(addr.ip(), &headers);
    let max_unauthenticated = state.config.limits.max_unauthenticated_sockets_per_address as usize;
    let Ok(opened) = state.sessions.open(client, max_unauthenticated) else {
        state.metrics.limited("unauthenticated_sockets");
        let mut e = ClientError::new(
            ErrorCode::RateLimited,
            "too many connections from this address are not signed in",
        );
        e.retry_after_ms = Some(5000);
        return error_response(&e);
    };
    let sid = opened.0;
    let version_ok = q.get("v").is_none_or(|v| v == "1");
    // The transport reads frames somewhat over the limit whole, so that the
    // socket can refuse them cleanly (`too_large` and close 1009, see
    // `socket::too_large`); the limit itself is checked there.
    let max = (state.config.limits.max_ws_message_bytes as usize)
        .saturating_mul(socket::OVERSIZE_READ_FACTOR);
    // A small read buffer keeps idle sockets cheap (6 KiB each measured;
    // axum's default of 128 KiB costs some 130 KiB per socket); a large
    // frame still arrives whole, its length reserved once its header is read.
    let failed = state.clone();
    upgrade
        .read_buffer_size(1024)
        .write_buffer_size(0)
        .max_message_size(max)
        .max_frame_size(max)
        .on_failed_upgrade(move |_| {
            failed.sessions.close(sid);
        })
        .on_upgrade(move |mut socket| async move {
            // The connection's slot lives as long as the socket.
            let _slot = slot;
            if !version_ok {
                use axum::extract::ws::{CloseFrame, Message};
                let _ = futures_util::SinkExt::send(
                    &mut socket,
                    Message::Close(Some(CloseFrame {
                        code: 4001,
                        reason: "unsupported_version".into(),
                    })),
                )
                .await;
                state.sessions.close(sid);
                return;
            }
            socket::serve(state, socket, client, opened).await;
        })
}

async fn ready(AxumState(state): AxumState<Arc<State>>) -> Response {
    if state.link.is_up() {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(
                json!({"error": {"code": "unavailable", "message": "not connected to the node"}}),
            ),
        )
            .into_response()
    }
}

async fn metrics(AxumState(state): AxumState<Arc<State>>) -> Response {
    (
        [(header::CONTENT_TYPE, crate::metrics::TEXT_FORMAT)],
        crate::metrics::render(&state.registry),
    )
        .into_response()
}

/// Security headers on everything; CORS for allowed origins on `/api/*`.
async fn headers(AxumState(state): AxumState<Arc<State>>, req: Request, next: Next) -> Response {
    let origin = req.headers().get(header::ORIGIN).cloned();
    let api = req.uri().path().starts_with("/api/");
    let preflight = req.method() == Method::OPTIONS;
    let allowed = origin
        .as_ref()
        .and_then(|o| o.to_str().ok())
        .is_some_and(|o| state.config.http.cors_allow.iter().any(|a| a == o));
    let mut r = if api && preflight {
        StatusCode::NO_CONTENT.into_response()
    } else {
        next.run(req).await
    };
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::HeaderName::from_static("permissions-policy"),
        HeaderValue::from_static(PERMISSIONS_POLICY),
    );
    if api
        && allowed
        && let Some(o) = origin
    {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, o);
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("authorization, content-type, x-filename"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST"),
        );
    }
    r
}

/// The operators' routes, served on `[metrics] listen` apart from the
/// chat: metrics are not for browsers.
pub fn ops_router(state: Arc<State>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/health/live", get(|| async { "ok\n" }))
        .route("/health/ready", get(ready))
        .with_state(state)
}

/// The gateway's routes.
pub fn router(state: Arc<State>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/ws", get(ws))
        .route("/api/upload", post(upload))
        .route("/api/blob/{id}", get(blob))
        .route("/health/live", get(|| async { "ok\n" }))
        .route("/health/ready", get(ready))
        .route("/{*path}", get(ui))
        .layer(axum::extract::DefaultBodyLimit::disable())
        .layer(middleware::from_fn_with_state(state.clone(), headers))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_ui_file_is_served() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("ui");
        let mut on_disk = Vec::new();
        for sub in ["", "views"] {
            for e in std::fs::read_dir(dir.join(sub))
                .into_iter()
                .flatten()
                .flatten()
            {
                let name = e.file_name().to_string_lossy().to_string();
                if e.path().is_file() && name != "tsconfig.json" {
                    let p = if sub.is_empty() {
                        format!("/{name}")
                    } else {
                        format!("/{sub}/{name}")
                    };
                    on_disk.push(p);
                }
            }
        }
        on_disk.sort();
        let mut served: Vec<String> = UI_FILES.iter().map(|(p, _)| p.to_string()).collect();
        served.sort();
        assert_eq!(served, on_disk);
    }

    #[test]
    fn file_names_decode() {
        assert_eq!(
            percent_decode("diagram%20v2.png").as_deref(),
            Some("diagram v2.png")
        );
        assert_eq!(percent_decode("%E2%9C%93").as_deref(), Some("✓"));
        assert_eq!(percent_decode("bad%2"), None);
        assert_eq!(percent_decode("%ff"), None);
    }
}
