//! The client service: what the node does for its gateways' browser
//! sessions (the requests of [`confab_wire::client`]), independent of the
//! transport that carries them ([`transport`] for QUIC, a channel pair for
//! the gateway inside the node process).
//!
//! [`ClientService::handle`] is synchronous: it reads the store, takes the
//! rooms lock only to judge and apply, and waits for durability *after*
//! releasing it, so concurrent sends share one flush. Transports run it on
//! the blocking pool. Pushes (room events, room updates, typing, presence,
//! revocations) go to the gateways' queues ([`hub`]).

pub mod accounts;
pub mod admin;
pub mod admin_link;
pub mod hub;
pub mod limits;
pub mod messages;
pub mod notes;
pub mod passwords;
pub mod rooms;
pub mod sniff;
pub mod throttle;
pub mod transport;
pub mod unread;
pub mod uploads;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock};

use confab_wire::client::{
    ClientError, ClientRequest, ErrorCode, NodeSettings, NodeWelcome, Push, Registration, Reply,
    Request, Response, SessionId, TimelineItem,
};
use confab_wire::event::{Content, EventKind};
use confab_wire::fed::{Ephemeral, Presence, Signal, TraceId};
use confab_wire::{ClientMessage, EventId, NodeId, NodeKey, RoomId, SignedEvent, UserId};
use tokio::sync::mpsc;

use crate::engine::Rejection;
use crate::federation::driver::Federation;
use crate::local::now_ms;
use crate::rooms::NodeRooms;
use crate::rooms::Posted;
use crate::store::Store;
use accounts::{Accounts, error, internal};
pub use hub::GatewayId;
use hub::Hub;

pub use uploads::{UPLOAD_IDLE_MS, UPLOADS_MAX, UPLOADS_PER_USER_MAX};
/// How often local users' presence is repeated to peers.
pub const PRESENCE_REFRESH: std::time::Duration = std::time::Duration::from_secs(30);
/// How often the node's gauges are refreshed.
pub const METRICS_REFRESH: std::time::Duration = std::time::Duration::from_secs(5);
/// Most events replayed to a resuming session; further behind, it reloads.
pub const CATCH_UP_MAX: usize = 2000;

/// Settings an admin may change while the node runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServiceSettings {
    /// Who may register.
    pub registration: Registration,
    /// Largest upload, in bytes.
    pub max_upload_bytes: u64,
    /// Messages (sends, edits, reactions, …) one user may post per minute.
    pub messages_per_minute: u32,
    /// The welcome bot greets users on their first join to a room.
    pub welcome_bot: bool,
    /// Failed sign-ins one address may make before it backs off
    /// (`limits.sign_in_failures_per_address`; read at start).
    pub sign_in_failures_per_address: u32,
}

impl ServiceSettings {
    /// From the node's configuration.
    pub fn from_config(c: &crate::config::NodeConfig) -> ServiceSettings {
        use crate::config::RegistrationMode as M;
        ServiceSettings {
            registration: match c.registration.mode {
                M::Open => Registration::Open,
                M::Invite => Registration::Invite,
                M::Closed => Registration::Closed,
            },
            max_upload_bytes: c.limits.max_upload_bytes,
            messages_per_minute: c.limits.messages_per_minute,
            welcome_bot: c.welcome_bot.enabled,
            sign_in_failures_per_address: c.limits.sign_in_failures_per_address,
        }
    }
}

/// A token bucket: `rate` per minute, bursts up to the rate.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: u64,
}

#[derive(Debug)]
struct Inner {
    key: NodeKey,
    name: String,
    rooms: Arc<Mutex<NodeRooms>>,
    store: Store,
    accounts: Accounts,
    settings: RwLock<ServiceSettings>,
    federation: OnceLock<Federation>,
    hub: Mutex<Hub>,
    buckets: Mutex<HashMap<UserId, Bucket>>,
    presence: Mutex<HashMap<UserId, (Presence, u64)>>,
    uploads: uploads::Uploads,
    limits: limits::Limits,
    /// Nodes whose users may be invited: the configured peers.
    known_nodes: RwLock<HashSet<NodeId>>,
    /// The peers and their addresses (config file and admin changes).
    peer_addrs: RwLock<std::collections::BTreeMap<NodeId, String>>,
    /// Gauges refreshed every few seconds, once registered.
    metrics: OnceLock<crate::metrics::NodeMetrics>,
    /// The service's own loops (federation notices, refreshes).
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// Unread and mention counts (see [`unread`]).
    counts: Mutex<unread::CountCache>,
    /// Room summaries waiting to be pushed, merged (see
    /// [`rooms::SUMMARY_DELAY`]).
    pending_summaries: Mutex<HashSet<(RoomId, UserId)>>,
}

/// The node's service for gateways. Cloning shares it.
#[derive(Debug, Clone)]
pub struct ClientService {
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The error a refused local event gets: the room's reason, typed.
pub(crate) fn refused(r: &Rejection) -> ClientError {
    use Rejection as R;
    let (code, message): (ErrorCode, String) = match r {
        R::NotMember => (
            ErrorCode::Forbidden,
            "you are not a member of this room".into(),
        ),
        R::Banned => (ErrorCode::Forbidden, "you are banned from this room".into()),
        R::Muted { until } => {
            let mut e = error(ErrorCode::Muted, "you are muted in this room");
            e.until = Some(*until);
            return e;
        }
        R::Forbidden { needs } => (
            ErrorCode::Forbidden,
            format!("this needs the permission {}", needs.names().join(", ")),
        ),
        R::Archived => (
            ErrorCode::Archived,
            "the room is archived (read-only)".into(),
        ),
        R::BadTarget | R::Redacted => (
            ErrorCode::NotFound,
            "no such message in this room (it may have been deleted)".into(),
        ),
        R::NotAuthor => (ErrorCode::Forbidden, "that is not your message".into()),
        R::AlreadyReacted => (
            ErrorCode::Conflict,
            "you already reacted with this emoji".into(),
        ),
        R::NotReacted => (ErrorCode::NotFound, "you have no such reaction".into()),
        R::AlreadyPinned => (ErrorCode::Conflict, "the message is already pinned".into()),
        R::NotPinned => (ErrorCode::NotFound, "the message is not pinned".into()),
        R::TooManyPins => (
            ErrorCode::Conflict,
            format!(
                "a room holds at most {} pins; unpin one first",
                crate::engine::state::MAX_PINS
            ),
        ),
        R::AlreadyMember => (ErrorCode::Conflict, "already a member of this room".into()),
        R::NotInvited => (
            ErrorCode::Forbidden,
            "this room is private; you need an invitation".into(),
        ),
        R::TargetState(_) => (ErrorCode::Conflict, r.to_string()),
        R::CreatorProtected => (
            ErrorCode::Forbidden,
            "the room's creator cannot be demoted or sanctioned".into(),
        ),
        R::Outranked => (
            ErrorCode::Forbidden,
            "that user holds permissions you lack".into(),
        ),
        R::UnknownRole => (ErrorCode::NotFound, "no such role in this room".into()),
        R::FixedRole => (ErrorCode::Forbidden, "the owner role cannot change".into()),
        R::ExceedsOwnPermissions => (
            ErrorCode::Forbidden,
            "you cannot grant more than you hold".into(),
        ),
        R::DirectRoomFull => (
            ErrorCode::Forbidden,
            "a direct conversation has two people".into(),
        ),
        R::DirectRoomPrivate => (
            ErrorCode::BadRequest,
            "a direct conversation stays private".into(),
        ),
        R::MuteInPast => (
            ErrorCode::BadRequest,
            "the mute must end in the future".into(),
        ),
        other => (ErrorCode::Forbidden, other.to_string()),
    };
    error(code, message)
}

fn node_error(e: crate::Error) -> ClientError {
    match e {
        crate::Error::CatchingUp { .. } => error(
            ErrorCode::Unavailable,
            "this node is still catching up with its peers in this room; try again shortly",
        ),
        crate::Error::NotFound { what } => error(ErrorCode::NotFound, format!("no such {what}")),
        other => internal(other),
    }
}

fn bad(message: impl Into<String>) -> ClientError {
    error(ErrorCode::BadRequest, message)
}

impl ClientService {
    /// The service of the node with `key`, over its rooms. Uploads in
    /// progress are written under `upload_dir` (a directory of the
    /// system's temporary space if `None`).
    pub fn new(
        key: NodeKey,
        name: &str,
        rooms: Arc<Mutex<NodeRooms>>,
        settings: ServiceSettings,
        upload_dir: Option<&std::path::Path>,
    ) -> crate::Result<ClientService> {
        let uploads = match upload_dir {
            Some(dir) => uploads::Uploads::new(dir.to_path_buf()),
            None => uploads::Uploads::temporary(),
        }
        .map_err(|source| crate::Error::Io {
            path: upload_dir.map_or_else(std::env::temp_dir, std::path::Path::to_path_buf),
            source,
        })?;
        let store = lock(&rooms).store().clone();
        let accounts = Accounts::new(
            key.clone(),
            store.clone(),
            settings.sign_in_failures_per_address,
        )
        .map_err(|e| crate::Error::Refused { reason: e.message })?;
        Ok(ClientService {
            inner: Arc::new(Inner {
                key,
                name: name.to_string(),
                rooms,
                store,
                accounts,
                settings: RwLock::new(settings),
                federation: OnceLock::new(),
                hub: Mutex::new(Hub::default()),
                buckets: Mutex::new(HashMap::new()),
                presence: Mutex::new(HashMap::new()),
                uploads,
                limits: limits::Limits::default(),
                known_nodes: RwLock::new(HashSet::new()),
                peer_addrs: RwLock::new(std::collections::BTreeMap::new()),
                metrics: OnceLock::new(),
                tasks: Mutex::new(Vec::new()),
                counts: Mutex::new(HashMap::new()),
                pending_summaries: Mutex::new(HashSet::new()),
            }),
        })
    }

    /// Connects the service to the node's federation: local events are
    /// published to peers, and peers' events and signals reach gateways.
    /// Spawns the forwarding tasks on the current tokio runtime.
    pub fn set_federation(&self, fed: Federation, peers: impl IntoIterator<Item = NodeId>) {
        self.inner
            .known_nodes
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .extend(peers);
        let mut events = fed.subscribe();
        let mut signals = fed.subscribe_ephemeral();
        if self.inner.federation.set(fed).is_err() {
            return;
        }
        let mut tasks = Vec::new();
        let svc = self.clone();
        tasks.push(tokio::spawn(async move {
            use tokio::sync::broadcast::error::RecvError;
            loop {
                match events.recv().await {
                    Ok((room, ev, trace)) => {
                        let s = svc.clone();
                        let _ = tokio::task::spawn_blocking(move || {
                            s.announce(room, &ev, trace);
                            s.acknowledge_delivery(&room, &ev);
                        })
                        .await;
                    }
                    Err(RecvError::Lagged(n)) => {
                        tracing::warn!(
                            missed = n,
                            "event notices lagged; gateways resync from the store"
                        );
                        let s = svc.clone();
                        let _ = tokio::task::spawn_blocking(move || s.resync_gateways()).await;
                    }
                    Err(RecvError::Closed) => return,
                }
            }
        }));
        let svc = self.clone();
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(METRICS_REFRESH);
            loop {
                tick.tick().await;
                let s = svc.clone();
                let _ = tokio::task::spawn_blocking(move || s.refresh_metrics()).await;
            }
        }));
        let svc = self.clone();
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(PRESENCE_REFRESH);
            loop {
                tick.tick().await;
                svc.refresh_presence();
            }
        }));
        let svc = self.clone();
        tasks.push(tokio::spawn(async move {
            use tokio::sync::broadcast::error::RecvError;
            loop {
                match signals.recv().await {
                    Ok(e) => svc.relay_signal(e),
                    Err(RecvError::Lagged(_)) => {} // ephemeral: may be dropped
                    Err(RecvError::Closed) => return,
                }
            }
        }));
        lock(&self.inner.tasks).extend(tasks);
    }

    fn federation(&self) -> Option<&Federation> {
        self.inner.federation.get()
    }

    /// Ends the service's own loops (a stopping node), so nothing of it
    /// outlives the node: the store's handles are released with the last
    /// clone.
    pub fn shutdown(&self) {
        for t in lock(&self.inner.tasks).drain(..) {
            t.abort();
        }
    }

    /// Registers the node's gauges (rooms, users, gateways, sessions, peer
    /// lag, storage), refreshed every [`METRICS_REFRESH`].
    pub fn register_metrics(&self, registry: &mut prometheus_client::registry::Registry) {
        let m = crate::metrics::NodeMetrics::default();
        m.register(registry);
        self.inner.limits.register(registry);
        let _ = self.inner.metrics.set(m);
    }

    fn refresh_metrics(&self) {
        self.inner.uploads.sweep(&self.inner.limits, now_ms());
        let Some(m) = self.inner.metrics.get() else {
            return;
        };
        let (rooms, catching_up, shared) = {
            let r = self.rooms();
            let shared: Vec<(RoomId, Vec<NodeId>)> =
                r.rooms().map(|(id, _)| (*id, r.room_peers(id))).collect();
            (r.rooms().count(), r.catching_up(), shared)
        };
        m.rooms.set(rooms as i64);
        m.uploads.set(self.inner.uploads.len() as i64);
        m.rooms_catching_up.set(catching_up as i64);
        let (gateways, sessions) = self.connections();
        m.gateways.set(gateways as i64);
        m.sessions.set(sessions as i64);
        if let Ok(n) = self.inner.store.account_count() {
            m.users.set(n as i64);
        }
        if let Ok(n) = self.inner.store.size_on_disk() {
            m.storage_bytes.set(i64::try_from(n).unwrap_or(i64::MAX));
        }
        if let Some(fed) = self.federation() {
            for (peer, _) in self.peers() {
                let lag: u64 = shared
                    .iter()
                    .filter(|(_, p)| p.contains(&peer))
                    .filter_map(|(room, _)| fed.lag(&peer, room))
                    .sum();
                m.peer_lag
                    .get_or_create(&crate::metrics::PeerLabel { peer: peer.short() })
                    .set(i64::try_from(lag).unwrap_or(i64::MAX));
            }
        }
    }

    /// The peers with their addresses.
    pub fn peers(&self) -> Vec<(NodeId, String)> {
        self.inner
            .peer_addrs
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(n, a)| (*n, a.clone()))
            .collect()
    }

    /// Adds (or readdresses) a peer: its users may be invited.
    pub fn add_peer(&self, node: NodeId, addr: String) {
        self.inner
            .peer_addrs
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(node, addr);
        self.inner
            .known_nodes
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(node);
    }

    /// Forgets a peer.
    pub fn remove_peer(&self, node: &NodeId) {
        self.inner
            .peer_addrs
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(node);
        self.inner
            .known_nodes
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(node);
    }

    /// The node's id.
    pub fn node_id(&self) -> NodeId {
        self.inner.key.node_id()
    }

    /// The settings in force.
    pub fn settings(&self) -> ServiceSettings {
        *self
            .inner
            .settings
            .read()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Changes the settings; gateways are told at once.
    pub fn set_settings(&self, s: ServiceSettings) {
        *self
            .inner
            .settings
            .write()
            .unwrap_or_else(|p| p.into_inner()) = s;
        let push = ClientMessage::Push(Push::Settings(self.node_settings()));
        lock(&self.inner.hub).broadcast(&push);
    }

    fn node_settings(&self) -> NodeSettings {
        let s = self.settings();
        NodeSettings {
            registration: s.registration,
            max_upload_bytes: s.max_upload_bytes,
        }
    }

    /// What the node answers a gateway's hello with.
    pub fn welcome(&self, version: u16) -> NodeWelcome {
        NodeWelcome {
            version,
            node: self.node_id(),
            name: self.inner.name.clone(),
            settings: self.node_settings(),
        }
    }

    /// Attaches a gateway; everything for it (replies, pushes) arrives on
    /// the receiver, which closes when the gateway is dropped.
    pub fn attach(&self, name: &str) -> (GatewayId, mpsc::Receiver<ClientMessage>) {
        lock(&self.inner.hub).attach(name)
    }

    /// Detaches a gateway: its sessions end.
    pub fn detach(&self, gw: GatewayId) {
        self.inner.uploads.end(|(g, _)| g == gw);
        let ended = lock(&self.inner.hub).detach(gw);
        for u in ended.gone {
            self.went_offline(&u);
        }
    }

    /// Gateways attached and browser sessions on them.
    pub fn connections(&self) -> (usize, usize) {
        let hub = lock(&self.inner.hub);
        (hub.gateway_count(), hub.session_count())
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    fn rooms(&self) -> MutexGuard<'_, NodeRooms> {
        lock(&self.inner.rooms)
    }

    pub(crate) fn send(&self, gw: GatewayId, msg: ClientMessage) {
        lock(&self.inner.hub).send(gw, msg);
    }

    /// Handles one request and queues its reply for the gateway. Pushes it
    /// causes (the new event, room updates) are queued too; the new event's
    /// push before the reply.
    pub fn handle(&self, gw: GatewayId, req: ClientRequest) {
        let span = tracing::debug_span!("request", trace = %req.trace, session = req.session.0);
        let _enter = span.enter();
        let ClientRequest {
            id,
            session,
            trace,
            auth,
            body,
        } = req;
        let result = self.dispatch(gw, session, trace, auth.as_ref(), body);
        if let Err(e) = &result {
            tracing::debug!(code = ?e.code, message = %e.message, "request refused");
        }
        self.send(
            gw,
            ClientMessage::Reply(Reply {
                id,
                session,
                result,
            }),
        );
    }

    fn dispatch(
        &self,
        gw: GatewayId,
        session: SessionId,
        trace: TraceId,
        auth: Option<&confab_wire::client::AccessToken>,
        body: Request,
    ) -> Result<Response, ClientError> {
        let now = now_ms();
        let a = &self.inner.accounts;
        match body {
            Request::Register {
                username,
                password,
                invite_code,
                address,
            } => {
                let mode = self.settings().registration;
                let grant = a.register(
                    &self.inner.limits,
                    mode,
                    (&username, &password),
                    invite_code.as_deref(),
                    address,
                    now,
                )?;
                self.bind(gw, session, &grant.user, grant.access_token.claims.family);
                Ok(Response::Session(grant))
            }
            Request::Login {
                username,
                password,
                address,
            } => {
                let username = self.own_localpart(&username);
                let grant = a.login(&self.inner.limits, (&username, &password), address, now)?;
                self.bind(gw, session, &grant.user, grant.access_token.claims.family);
                Ok(Response::Session(grant))
            }
            Request::Refresh { refresh_token } => match a.refresh(&refresh_token, now) {
                Ok(grant) => {
                    self.bind(gw, session, &grant.user, grant.access_token.claims.family);
                    Ok(Response::Session(grant))
                }
                Err((e, revoked)) => {
                    if let Some((user, family)) = revoked {
                        self.revoke(&user, Some(family), None);
                    }
                    Err(e)
                }
            },
            Request::EndSession => {
                self.inner.uploads.end(|o| o == (gw, session));
                let ended = lock(&self.inner.hub).end_session(gw, session);
                for u in ended.gone {
                    self.went_offline(&u);
                }
                Ok(Response::Done)
            }
            body => {
                let who = a.authenticate(auth, now)?;
                self.bind(gw, session, &who.user, who.family);
                self.authed(gw, session, trace, &who, body, now)
            }
        }
    }

    /// `alice`, or `@alice:<this node>`, as a localpart.
    fn own_localpart(&self, name: &str) -> String {
        match name.parse::<UserId>() {
            Ok(u) if u.node() == &self.node_id() => u.localpart().to_string(),
            _ => name.to_string(),
        }
    }

    fn bind(&self, gw: GatewayId, session: SessionId, user: &UserId, family: u64) {
        let fresh = lock(&self.inner.hub).bind(gw, session, user, family);
        if fresh {
            self.set_presence(user, Presence::Online, now_ms());
        }
    }

    fn authed(
        &self,
        gw: GatewayId,
        session: SessionId,
        trace: TraceId,
        who: &confab_wire::client::TokenClaims,
        body: Request,
        now: u64,
    ) -> Result<Response, ClientError> {
        let user = &who.user;
        match body {
            Request::Logout { refresh_token } => {
                let family = self.inner.accounts.logout(&refresh_token, who)?;
                self.revoke(user, Some(family), Some((gw, session)));
                Ok(Response::Done)
            }
            Request::LogoutAll => {
                self.inner.accounts.logout_all(who)?;
                self.revoke(user, None, Some((gw, session)));
                Ok(Response::Done)
            }
            Request::GetProfile { user: u } => self.profile(&u).map(Response::Profile),
            Request::SetProfile {
                display_name,
                avatar,
                status,
            } => self.set_profile(user, display_name, avatar, status),
            Request::SearchUsers { query, limit } => self.search_users(&query, limit),
            Request::SetPresence { state } => {
                self.set_presence(user, state, now);
                Ok(Response::Done)
            }
            Request::Block { user: u, blocked } => {
                self.inner
                    .store
                    .set_blocked(user.localpart(), &u, blocked)
                    .and_then(|()| self.inner.store.wait_durable())
                    .map_err(internal)?;
                Ok(Response::Done)
            }
            Request::ListRooms => self.list_rooms(user),
            Request::CreateRoom {
                settings,
                direct_with,
                invite,
            } => self.create_room(user, settings, direct_with, invite, trace),
            Request::PublicRooms { query, limit } => self.public_rooms(user, &query, limit),
            Request::JoinRoom { room } => self.join(user, &room, trace),
            Request::LeaveRoom { room } => self.leave(user, &room, trace),
            Request::Invite { room, user: target } => self.invite(user, &room, &target, trace),
            Request::ChangeSettings { room, settings } => {
                if settings.is_empty() {
                    return Err(bad("no setting to change"));
                }
                self.post_event(
                    user,
                    &room,
                    EventKind::Settings(settings),
                    Content::Empty,
                    trace,
                )
            }
            Request::ArchiveRoom { room } => {
                self.post_event(user, &room, EventKind::Archive, Content::Empty, trace)
            }
            Request::RoomInfo { room } => self.room_info(user, &room),
            Request::Moderate { room, action } => self.moderate(user, &room, action, trace),
            Request::History {
                room,
                anchor,
                limit,
            } => self.history(user, &room, anchor, limit),
            Request::Thread {
                room,
                root,
                anchor,
                limit,
            } => self.thread(user, &room, &root, anchor, limit),
            Request::Send {
                room,
                idempotency_key,
                content,
            } => self.send_message(user, &room, &idempotency_key, content, trace),
            Request::Edit {
                room,
                target,
                content,
            } => {
                self.rate(user, now)?;
                self.post_event(
                    user,
                    &room,
                    EventKind::Edit { target },
                    Content::Edit(content),
                    trace,
                )
            }
            Request::Redact {
                room,
                target,
                reason,
            } => self.post_event(
                user,
                &room,
                EventKind::Redact { target },
                Content::Reason(confab_wire::event::ReasonContent { reason }),
                trace,
            ),
            Request::React {
                room,
                target,
                emoji,
            } => {
                self.rate(user, now)?;
                self.post_event(
                    user,
                    &room,
                    EventKind::React { target, emoji },
                    Content::Empty,
                    trace,
                )
            }
            Request::Unreact {
                room,
                target,
                emoji,
            } => self.post_event(
                user,
                &room,
                EventKind::Unreact { target, emoji },
                Content::Empty,
                trace,
            ),
            Request::Pin { room, target } => self.post_event(
                user,
                &room,
                EventKind::Pin { target },
                Content::Empty,
                trace,
            ),
            Request::Unpin { room, target } => self.post_event(
                user,
                &room,
                EventKind::Unpin { target },
                Content::Empty,
                trace,
            ),
            Request::MarkRead { room, event } => self.mark_read(user, &room, &event),
            Request::Search {
                room,
                query,
                limit,
                before,
            } => self.search(user, room, &query, limit, before),
            Request::Mentions { before, limit } => self.mentions(user, before, limit),
            Request::Subscribe { room, after } => self.subscribe(gw, session, user, &room, after),
            Request::Unsubscribe { room } => {
                lock(&self.inner.hub).unsubscribe(gw, session, &room);
                Ok(Response::Done)
            }
            Request::Typing { room, active } => self.typing(user, &room, active),
            Request::UploadStart { size, name } => {
                self.upload_start(user, (gw, session), size, name, now)
            }
            Request::UploadChunk {
                upload,
                offset,
                data,
            } => self
                .inner
                .uploads
                .chunk(user, upload, offset, &data, now)
                .map(|()| Response::Done),
            Request::UploadFinish { upload } => self.upload_finish(user, upload),
            Request::FetchBlob { blob, offset, max } => self.fetch_blob(user, blob, offset, max),
            Request::Report {
                room,
                event,
                reason,
            } => self.report(user, &room, &event, &reason, now),
            Request::EditHistory { room, target } => self.edit_history(user, &room, &target),
            Request::Notices => self.notices(user),
            Request::DismissNotice { notice } => self.dismiss_notice(user, notice),
            Request::Register { .. }
            | Request::Login { .. }
            | Request::Refresh { .. }
            | Request::EndSession => Err(bad("unexpected request")),
        }
    }

    /// Takes one message token of `user`, or says how long to wait.
    fn rate(&self, user: &UserId, now: u64) -> Result<(), ClientError> {
        let rate = f64::from(self.settings().messages_per_minute.max(1));
        let mut buckets = lock(&self.inner.buckets);
        let b = buckets.entry(user.clone()).or_insert(Bucket {
            tokens: rate,
            at: now,
        });
        let elapsed = now.saturating_sub(b.at) as f64 / 60_000.0;
        b.tokens = (b.tokens + elapsed * rate).min(rate);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            return Ok(());
        }
        let wait_ms = ((1.0 - b.tokens) / rate * 60_000.0).ceil() as u64;
        let mut e = error(
            ErrorCode::RateLimited,
            "you are sending messages too fast; slow down",
        );
        e.retry_after_ms = Some(wait_ms.max(1));
        Err(e)
    }

    /// Signs, judges and stores an event of a local user; answers once it
    /// is durable, then publishes it to peers and pushes it to gateways.
    fn post_event(
        &self,
        user: &UserId,
        room: &RoomId,
        kind: EventKind,
        content: Content,
        trace: TraceId,
    ) -> Result<Response, ClientError> {
        let (id, duplicate) = self.post(user, room, kind, content, trace, None)?;
        Ok(Response::Event { id, duplicate })
    }

    fn post(
        &self,
        user: &UserId,
        room: &RoomId,
        kind: EventKind,
        content: Content,
        trace: TraceId,
        once: Option<&str>,
    ) -> Result<(EventId, bool), ClientError> {
        content.validate().map_err(|e| bad(e.to_string()))?;
        let now = now_ms();
        let joining = matches!(kind, EventKind::Join);
        let posted = self
            .rooms()
            .post(&self.inner.key, user, room, kind, &content, now, once)
            .map_err(node_error)?;
        let ev = match posted {
            Posted::Event(ev) => *ev,
            Posted::Rejected(r) => return Err(refused(&r)),
            Posted::Duplicate(id) => {
                // The first send may still be on its way to the disk.
                self.inner.store.wait_logged().map_err(internal)?;
                return Ok((id, true));
            }
        };
        let id = ev.id();
        if joining {
            // What was said before one joined is not news to them: unread
            // starts at the join.
            self.inner
                .store
                .mark_read(room, user, &id)
                .and_then(|()| self.inner.store.wait_durable())
                .map_err(internal)?;
            self.forget_counts(room, Some(user));
        } else {
            self.inner.store.wait_logged().map_err(internal)?;
        }
        let signed = ev.into_signed();
        if let Some(fed) = self.federation() {
            fed.publish(*room, &signed, Some(trace));
        }
        self.announce(*room, &signed, Some(trace));
        Ok((id, false))
    }

    /// Tells gateways about a durable event: the item to subscribers (and
    /// the message it changed, for edits, deletions, reactions and thread
    /// replies), and new summaries to the local users it concerns.
    fn announce(&self, room: RoomId, ev: &SignedEvent, trace: Option<TraceId>) {
        // Stored events were verified on the way in; the header is all
        // that is needed here.
        let Ok(header) = ev.decode_header() else {
            return;
        };
        let id = ev.id();
        // Read once: it decides the counts and is what subscribers get.
        let item = self.inner.store.timeline_item(&id).ok().flatten();
        match &header.kind {
            EventKind::Message if item.as_ref().is_some_and(|i| !i.rejected) => {
                let mentions = match ev
                    .content
                    .as_deref()
                    .and_then(|c| Content::decode_for(&header.kind, c).ok())
                {
                    Some(Content::Message(m)) => m.mentions,
                    _ => Vec::new(),
                };
                self.count_message(&room, &id, header.depth, &header.author, &mentions);
            }
            EventKind::Redact { .. } => self.forget_counts(&room, None),
            _ => {}
        }
        let gateways = lock(&self.inner.hub).room_gateways(&room);
        if let Some(t) = trace {
            tracing::debug!(trace = %t, %room, event = %id, gateways = gateways.len(), "event to gateways");
        }
        if !gateways.is_empty() {
            let mut items: Vec<TimelineItem> = item.into_iter().collect();
            if let Some(target) = changed_target(&header.kind, ev) {
                if let Ok(Some(item)) = self.inner.store.timeline_item(&target) {
                    items.push(item);
                }
            }
            let mut hub = lock(&self.inner.hub);
            for item in items {
                for gw in &gateways {
                    hub.send(
                        *gw,
                        ClientMessage::Push(Push::RoomEvent {
                            room,
                            item: item.clone(),
                            trace,
                        }),
                    );
                }
            }
        }
        self.update_summaries(&room, &header);
    }

    /// Pushes every followed room's recent events again, after event
    /// notices were lost: clients de-duplicate by id.
    fn resync_gateways(&self) {
        let rooms = lock(&self.inner.hub).followed_rooms();
        for room in rooms {
            let Ok(ids) = self
                .inner
                .store
                .page(&room, confab_wire::client::Anchor::Latest, 200)
            else {
                continue;
            };
            for id in ids {
                if let Ok(Some(e)) = self.inner.store.event(&id) {
                    self.announce(room, &e.signed, None);
                }
            }
        }
    }

    /// Revokes a login's sessions (or every login of the user) and tells
    /// their gateways; `except` is the session that asked (it gets a reply,
    /// not a push).
    fn revoke(&self, user: &UserId, family: Option<u64>, except: Option<(GatewayId, SessionId)>) {
        let mut hub = lock(&self.inner.hub);
        let gateways = hub.revoke(user, family);
        for gw in gateways {
            hub.send(
                gw,
                ClientMessage::Push(Push::Revoked {
                    user: user.clone(),
                    family,
                }),
            );
        }
        // The asking session is unauthenticated now as well.
        if let Some((gw, s)) = except {
            hub.end_session(gw, s);
        }
        let online = hub.online_users().contains(user);
        drop(hub);
        if !online {
            self.went_offline(user);
        }
    }

    /// Tells peers (again) that a local user is online, if they are.
    fn announce_presence(&self, user: &UserId) {
        let known = lock(&self.inner.presence).get(user).copied();
        tracing::debug!(%user, ?known, "announcing presence to peers");
        if let (Some((state, last_active)), Some(fed)) = (known, self.federation())
            && state != Presence::Offline
        {
            fed.send_ephemeral(Ephemeral {
                room: None,
                user: user.clone(),
                signal: Signal::Presence { state, last_active },
            });
        }
    }

    /// Repeats the presence of every local user with a session: signals
    /// may be dropped, and peers that connect later learn it this way.
    fn refresh_presence(&self) {
        let online = lock(&self.inner.hub).online_users();
        let me = self.node_id();
        for u in online.iter().filter(|u| u.node() == &me) {
            self.announce_presence(u);
        }
    }

    fn went_offline(&self, user: &UserId) {
        self.set_presence(user, Presence::Offline, now_ms());
    }

    fn set_presence(&self, user: &UserId, state: Presence, now: u64) {
        {
            let mut p = lock(&self.inner.presence);
            if p.get(user).is_some_and(|(s, _)| *s == state) && state != Presence::Online {
                return;
            }
            p.insert(user.clone(), (state, now));
        }
        let e = Ephemeral {
            room: None,
            user: user.clone(),
            signal: Signal::Presence {
                state,
                last_active: now,
            },
        };
        if user.node() == &self.node_id()
            && let Some(fed) = self.federation()
        {
            fed.send_ephemeral(e.clone());
        }
        self.push_presence(e);
    }

    /// Sends a presence signal to the gateways of the local users who
    /// share a room with its user.
    fn push_presence(&self, e: Ephemeral) {
        let audience: HashSet<UserId> = {
            let rooms = self.rooms();
            let me = self.node_id();
            // Invited counts: a signal can overtake the join it follows.
            rooms
                .rooms()
                .filter(|(_, r)| {
                    matches!(
                        r.engine().state().membership(&e.user),
                        crate::engine::Membership::Joined { .. }
                            | crate::engine::Membership::Invited
                    )
                })
                .flat_map(|(_, r)| {
                    r.engine()
                        .state()
                        .joined()
                        .filter(|u| u.node() == &me)
                        .cloned()
                        .collect::<Vec<_>>()
                })
                .collect()
        };
        let mut hub = lock(&self.inner.hub);
        for (gw, users) in hub.users_by_gateway(&audience) {
            for audience in users.chunks(confab_wire::client::MAX_AUDIENCE) {
                hub.send(
                    gw,
                    ClientMessage::Push(Push::Presence {
                        presence: e.clone(),
                        audience: audience.to_vec(),
                    }),
                );
            }
        }
    }

    /// A checked signal from a peer: presence is remembered; typing and
    /// read positions go to the room's subscribers.
    fn relay_signal(&self, e: Ephemeral) {
        tracing::debug!(user = %e.user, signal = ?e.signal, "signal from a peer");
        match (&e.signal, e.room) {
            (Signal::Presence { state, last_active }, _) => {
                lock(&self.inner.presence).insert(e.user.clone(), (*state, *last_active));
                self.push_presence(e);
            }
            (_, Some(room)) => {
                self.keep_position(&e);
                self.push_to_room(&room, e)
            }
            _ => {}
        }
    }

    fn push_to_room(&self, room: &RoomId, e: Ephemeral) {
        let mut hub = lock(&self.inner.hub);
        for gw in hub.room_gateways(room) {
            hub.send(gw, ClientMessage::Push(Push::Ephemeral(e.clone())));
        }
    }

    fn typing(&self, user: &UserId, room: &RoomId, active: bool) -> Result<Response, ClientError> {
        self.may_signal(user, room)?;
        let e = Ephemeral {
            room: Some(*room),
            user: user.clone(),
            signal: Signal::Typing(active),
        };
        if let Some(fed) = self.federation() {
            fed.send_ephemeral(e.clone());
        }
        self.push_to_room(room, e);
        Ok(Response::Done)
    }

    /// Presence and last activity of a user, if known.
    fn presence_of(&self, user: &UserId) -> (Option<Presence>, Option<u64>) {
        match lock(&self.inner.presence).get(user) {
            Some((p, t)) => (Some(*p), Some(*t)),
            None => (None, None),
        }
    }
}

/// The message whose item an event changes (and so is pushed again).
fn changed_target(kind: &EventKind, ev: &SignedEvent) -> Option<EventId> {
    match kind {
        EventKind::Edit { target }
        | EventKind::Redact { target }
        | EventKind::React { target, .. }
        | EventKind::Unreact { target, .. } => Some(*target),
        EventKind::Message => {
            let content = Content::decode_for(kind, ev.content.as_deref()?).ok()?;
            match content {
                Content::Message(m) => m.thread,
                _ => None,
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests;
