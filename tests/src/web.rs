//! A node with its client service and gateways on loopback, and a real
//! WebSocket client of the browser protocol, for integration tests.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use confab_gateway::Gateway;
use confab_gateway::config::GatewayConfig;
use confab_gateway::link::QuicConnector;
use confab_node::service::transport::{ClientEndpoint, InProcess};
use confab_node::service::{ClientService, ServiceSettings};
use confab_node::tls::PinSet;
use confab_wire::NodeKey;
use confab_wire::client::Registration;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::net::TestNode;

/// How long a test waits for any one thing before it fails: a guard
/// against hangs, not a claim about speed.
pub const HANG_GUARD: Duration = Duration::from_secs(30);

/// Settings for tests: open registration, generous limits.
pub fn test_settings() -> ServiceSettings {
    ServiceSettings {
        registration: Registration::Open,
        max_upload_bytes: 1 << 20,
        messages_per_minute: 10_000,
        // Protocol tests count pushes; the bot's own test turns it on.
        welcome_bot: false,
        sign_in_failures_per_address: 20,
    }
}

/// A gateway configuration on a free loopback port.
pub fn gateway_config(name: &str) -> GatewayConfig {
    let mut c = GatewayConfig::default();
    c.gateway.name = name.into();
    c.gateway.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    c.metrics.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    c
}

/// A federating node with its client service, a QUIC endpoint for
/// gateways and one gateway in-process.
#[derive(Debug)]
pub struct WebNode {
    /// The node (key, rooms, federation).
    pub node: TestNode,
    /// Its client service.
    pub service: ClientService,
    /// Its QUIC endpoint for gateways run apart.
    pub client: ClientEndpoint,
    /// The gateway inside the node.
    pub gateway: Gateway,
    gateway_pins: PinSet,
}

impl WebNode {
    /// Starts a node with `key` that federates with the `peers` it pins.
    pub async fn start(key: &NodeKey, peers: PinSet) -> anyhow::Result<WebNode> {
        Self::with_settings(key, peers, test_settings()).await
    }

    /// [`WebNode::start`] with other service settings.
    pub async fn with_settings(
        key: &NodeKey,
        peers: PinSet,
        settings: ServiceSettings,
    ) -> anyhow::Result<WebNode> {
        let peer_ids = peers.to_vec();
        let node = TestNode::start(key, peers)?;
        let name = format!("n{}", &key.node_id().to_string()[..6]);
        let service = ClientService::new(key.clone(), &name, node.rooms.clone(), settings, None)?;
        service.set_federation(node.fed.clone(), peer_ids);
        let gateway_pins = PinSet::new();
        let client = ClientEndpoint::start(
            service.clone(),
            key,
            "127.0.0.1:0".parse()?,
            gateway_pins.clone(),
        )?;
        let gateway =
            Gateway::start(gateway_config("in-process"), InProcess(service.clone())).await?;
        anyhow::ensure!(
            gateway.wait_ready(HANG_GUARD).await,
            "gateway never connected"
        );
        Ok(WebNode {
            node,
            service,
            client,
            gateway,
            gateway_pins,
        })
    }

    /// The in-process gateway's WebSocket URL.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.gateway.local_addr())
    }

    /// The in-process gateway's base HTTP URL.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.gateway.local_addr())
    }

    /// Starts a gateway of its own that reaches this node over QUIC with
    /// `key` (pinned here first).
    pub async fn quic_gateway(&self, key: &NodeKey, name: &str) -> anyhow::Result<Gateway> {
        self.gateway_pins.insert(key.node_id());
        let addr = self.client.local_addr()?.to_string();
        let connector = QuicConnector::new(key, self.node.key.node_id(), &addr, name)?;
        let g = Gateway::start(gateway_config(name), connector).await?;
        anyhow::ensure!(
            g.wait_ready(HANG_GUARD).await,
            "QUIC gateway never connected"
        );
        Ok(g)
    }

    /// Dials `other` (federation), and lets it dial back.
    pub fn federate(&self, other: &WebNode) -> anyhow::Result<()> {
        self.node
            .fed
            .connect(other.node.key.node_id(), other.node.fed.local_addr()?);
        other
            .node
            .fed
            .connect(self.node.key.node_id(), self.node.fed.local_addr()?);
        Ok(())
    }

    /// `@name` of this node, as text.
    pub fn user(&self, name: &str) -> String {
        format!("@{name}:{}", self.node.key.node_id())
    }
}

type Stream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A browser-protocol client over a real WebSocket.
#[derive(Debug)]
pub struct Ws {
    stream: Stream,
    next: u64,
    pushes: VecDeque<Value>,
    /// The `hello` push.
    pub hello: Value,
    /// The close frame, once the server closed.
    pub closed: Option<(u16, String)>,
}

/// An error reply's `error` object.
pub type ErrorBody = Value;

impl Ws {
    /// Connects and reads `hello`.
    pub async fn connect(url: &str) -> anyhow::Result<Ws> {
        Self::connect_with(url, &[]).await
    }

    /// [`Ws::connect`] with extra headers on the upgrade request (e.g.
    /// `X-Forwarded-For` to a gateway that trusts loopback as its proxy).
    pub async fn connect_with(url: &str, headers: &[(&str, &str)]) -> anyhow::Result<Ws> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
        let mut req = url.into_client_request()?;
        for (n, v) in headers {
            req.headers_mut().append(
                HeaderName::from_bytes(n.as_bytes())?,
                HeaderValue::from_str(v)?,
            );
        }
        let (stream, _) =
            tokio::time::timeout(HANG_GUARD, tokio_tungstenite::connect_async(req)).await??;
        let mut ws = Ws {
            stream,
            next: 0,
            pushes: VecDeque::new(),
            hello: Value::Null,
            closed: None,
        };
        let hello = ws.next_frame().await?;
        anyhow::ensure!(hello["push"] == "hello", "expected hello, got {hello}");
        ws.hello = hello;
        Ok(ws)
    }

    async fn next_frame(&mut self) -> anyhow::Result<Value> {
        // One deadline for the call: pings must not keep it alive.
        let deadline = tokio::time::Instant::now() + HANG_GUARD;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .map_err(|_| anyhow::anyhow!("no frame within the hang guard"))?;
            match msg {
                Some(Ok(Message::Text(t))) => return Ok(serde_json::from_str(t.as_str())?),
                Some(Ok(Message::Close(c))) => {
                    self.closed = c.map(|c| (u16::from(c.code), c.reason.to_string()));
                    anyhow::bail!("closed: {:?}", self.closed);
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => anyhow::bail!("socket error: {e}"),
                None => anyhow::bail!("socket ended"),
            }
        }
    }

    /// Sends raw text.
    pub async fn send_text(&mut self, text: String) -> anyhow::Result<()> {
        self.stream.send(Message::Text(text.into())).await?;
        Ok(())
    }

    /// Sends a binary frame.
    pub async fn send_binary(&mut self, bytes: Vec<u8>) -> anyhow::Result<()> {
        self.stream.send(Message::Binary(bytes.into())).await?;
        Ok(())
    }

    /// Sends a request (fields beside `id` and `type`) without waiting.
    pub async fn send(&mut self, kind: &str, fields: Value) -> anyhow::Result<u64> {
        self.next += 1;
        let mut req = json!({ "id": self.next, "type": kind });
        if let (Some(r), Value::Object(f)) = (req.as_object_mut(), fields) {
            r.extend(f);
        }
        self.send_text(req.to_string()).await?;
        Ok(self.next)
    }

    /// The reply to request `id`; pushes read meanwhile are kept.
    pub async fn reply(&mut self, id: u64) -> anyhow::Result<Result<Value, ErrorBody>> {
        let kept = self
            .pushes
            .iter()
            .position(|v| v.get("push").is_none() && v["id"] == json!(id));
        if let Some(v) = kept.and_then(|i| self.pushes.remove(i)) {
            return Ok(match v.get("error") {
                Some(e) => Err(e.clone()),
                None => Ok(v["ok"].clone()),
            });
        }
        loop {
            let v = self.next_frame().await?;
            if v.get("push").is_some() {
                self.pushes.push_back(v);
                continue;
            }
            if v["id"] == json!(id) {
                return Ok(match v.get("error") {
                    Some(e) => Err(e.clone()),
                    None => Ok(v["ok"].clone()),
                });
            }
            // A reply to a request sent without waiting: keep as a push.
            self.pushes.push_back(v);
        }
    }

    /// Sends a request and waits for its reply.
    pub async fn call(
        &mut self,
        kind: &str,
        fields: Value,
    ) -> anyhow::Result<Result<Value, ErrorBody>> {
        let id = self.send(kind, fields).await?;
        self.reply(id).await
    }

    /// A request that must succeed.
    pub async fn ok(&mut self, kind: &str, fields: Value) -> Value {
        match self.call(kind, fields).await {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => panic!("{kind} failed: {e}"),
            Err(e) => panic!("{kind}: {e}"),
        }
    }

    /// A request that must fail; returns its error code.
    pub async fn err(&mut self, kind: &str, fields: Value) -> String {
        match self.call(kind, fields).await {
            Ok(Err(e)) => e["code"].as_str().unwrap_or("").to_string(),
            Ok(Ok(v)) => panic!("{kind} succeeded unexpectedly: {v}"),
            Err(e) => panic!("{kind}: {e}"),
        }
    }

    /// The first push (kept or new) that `f` accepts; others are kept.
    pub async fn push(&mut self, what: &str, f: impl Fn(&Value) -> bool) -> Value {
        if let Some(i) = self.pushes.iter().position(&f) {
            if let Some(v) = self.pushes.remove(i) {
                return v;
            }
        }
        let deadline = tokio::time::Instant::now() + HANG_GUARD;
        loop {
            assert!(
                tokio::time::Instant::now() < deadline,
                "gave up waiting for {what}; got {:?}",
                self.pushes
            );
            match self.next_frame().await {
                Ok(v) if f(&v) => return v,
                Ok(v) => self.pushes.push_back(v),
                Err(e) => panic!("waiting for {what}: {e}"),
            }
        }
    }

    /// Pushes received so far that `f` accepts (removed from the buffer).
    pub fn take_pushes(&mut self, f: impl Fn(&Value) -> bool) -> Vec<Value> {
        let (hit, keep): (Vec<Value>, Vec<Value>) = self.pushes.drain(..).partition(|v| f(v));
        self.pushes = keep.into();
        hit
    }

    /// Reads until the server closes; returns the close code and reason.
    pub async fn until_closed(&mut self) -> (u16, String) {
        loop {
            if let Some(c) = &self.closed {
                return c.clone();
            }
            match self.next_frame().await {
                Ok(v) => self.pushes.push_back(v),
                Err(_) => {
                    return self
                        .closed
                        .clone()
                        .unwrap_or((u16::from(CloseCode::Abnormal), String::new()));
                }
            }
        }
    }

    /// Closes the socket from this side.
    pub async fn close(mut self) {
        let _ = self.stream.close(None).await;
    }

    /// Registers `name` (password `correct horse`) and returns the grant.
    pub async fn register(&mut self, name: &str) -> Value {
        self.ok(
            "register",
            json!({"username": name, "password": "correct horse"}),
        )
        .await
    }
}

/// Creates a room and returns its id.
pub async fn create_room(ws: &mut Ws, name: &str, visibility: &str) -> String {
    let r = ws
        .ok(
            "create_room",
            json!({"settings": {"name": name, "visibility": visibility}}),
        )
        .await;
    r["room"].as_str().unwrap_or_default().to_string()
}

/// An HTTP/1.1 response read whole.
#[derive(Debug, Clone)]
pub struct HttpReply {
    /// The status code.
    pub status: u16,
    /// Header names (lowercase) and values, in order.
    pub headers: Vec<(String, String)>,
    /// The body (de-chunked).
    pub body: Vec<u8>,
}

impl HttpReply {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (`Null` if it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn dechunk(mut b: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = b
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| anyhow::anyhow!("bad chunk header"))?;
        let size_text = std::str::from_utf8(&b[..line_end])?;
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16)?;
        b = &b[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        anyhow::ensure!(b.len() >= size + 2, "short chunk");
        out.extend_from_slice(&b[..size]);
        b = &b[size + 2..];
    }
}

/// One plain HTTP/1.1 request over a fresh TCP connection (`Connection:
/// close`), read until the server closes. `Content-Length` is added for a
/// non-empty body unless `headers` has one (so a test can announce more
/// than it sends).
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> anyhow::Result<HttpReply> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::time::timeout(HANG_GUARD, tokio::net::TcpStream::connect(addr)).await??;
    let mut req = format!("{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n");
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    let has_length = headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("content-length"));
    if !has_length && (!body.is_empty() || method == "POST") {
        req.push_str(&format!("content-length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    s.write_all(&bytes).await?;
    let mut raw = Vec::new();
    tokio::time::timeout(HANG_GUARD, s.read_to_end(&mut raw)).await??;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| {
            anyhow::anyhow!("no end of headers in {:?}", String::from_utf8_lossy(&raw))
        })?;
    let head = std::str::from_utf8(&raw[..split])?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("bad status line {status_line:?}"))?
        .parse()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let rest = &raw[split + 4..];
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        dechunk(rest)?
    } else {
        rest.to_vec()
    };
    Ok(HttpReply {
        status,
        headers,
        body,
    })
}
