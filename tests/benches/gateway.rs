//! Gateway benchmarks with real WebSocket clients against real node and
//! gateway processes on loopback.
//!
//! Build the binaries first, then run:
//!
//! ```sh
//! cargo build --release -p confab-node -p confab-gateway
//! ulimit -n 200000
//! cargo bench -p confab-tests --bench gateway
//! ```
//!
//! Knobs: `CONFAB_BENCH_RATE` (messages/s of the latency runs, default
//! 1000), `CONFAB_BENCH_SECS` (their length, default 10),
//! `CONFAB_BENCH_SENDERS` (concurrent senders of the throughput run,
//! default 50), `CONFAB_BENCH_FANOUT` (sockets in the fan-out room, default
//! 10,000), `CONFAB_BENCH_IDLE` (idle sockets, default 50,000),
//! `CONFAB_BENCH_SIGNINS` (accounts of the sign-in RSS run, default 200),
//! `CONFAB_BENCH_SIGNIN_CLIENTS` (its concurrent clients, default 8),
//! `CONFAB_BENCH_DIR` (where the nodes' temporary data directories go,
//! default `target/bench-tmp`: on the build's disk, not a tmpfs `/tmp`).
//!
//! Parts: `latency`, `federated`, `throughput`, `fanout`, `idle`, `signin`;
//! all by default, or those named in `CONFAB_BENCH_ONLY` (comma-separated)
//! or after `--` (`cargo bench -p confab-tests --bench gateway -- signin`).
//!
//! Each figure is printed beside a ceiling measured in the same run: a raw
//! WebSocket echo round trip on loopback (tokio-tungstenite on both ends,
//! no gateway, no node) for latencies, one core's `verify_strict` rate
//! for throughput, and one bare argon2id hash for sign-ins, because the
//! machine is shared and noisy.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpSocket};
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Whether the part `what` runs: named in `CONFAB_BENCH_ONLY` or among the
/// arguments (cargo adds `--bench`, which names nothing), or nothing named.
fn wanted(what: &str) -> bool {
    let mut named: Vec<String> = std::env::var("CONFAB_BENCH_ONLY")
        .map(|o| o.split(',').map(|w| w.trim().to_string()).collect())
        .unwrap_or_default();
    named.extend(std::env::args().skip(1).filter(|a| !a.starts_with('-')));
    named.retain(|w| !w.is_empty());
    named.is_empty() || named.iter().any(|w| w == what)
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

/// The file system type (`/proc/self/mountinfo`) of the mount holding
/// `path`, which must exist.
fn fs_type(path: &Path) -> String {
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut best = (0, String::from("unknown"));
    for line in info.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let (Some(mount), Some(kind)) = (
            left.split_whitespace().nth(4),
            right.split_whitespace().next(),
        ) else {
            continue;
        };
        let mount = mount.replace("\\040", " ");
        if path.starts_with(&mount) && mount.len() >= best.0 {
            best = (mount.len(), kind.to_string());
        }
    }
    best.1
}

/// A new temporary directory for a node's files, on a real disk: under
/// `CONFAB_BENCH_DIR`, or under the target directory (not `/tmp`, which
/// is a tmpfs on many systems, so flushes would cost nothing).
fn scratch_dir() -> tempfile::TempDir {
    let parent = std::env::var_os("CONFAB_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("bench-tmp"));
    std::fs::create_dir_all(&parent).expect("the bench's scratch directory");
    let kind = fs_type(&parent);
    if matches!(kind.as_str(), "tmpfs" | "ramfs") {
        println!(
            "(note: {} is on {kind}, not a disk: durable writes cost nothing there. Set CONFAB_BENCH_DIR to a directory on a disk)",
            parent.display()
        );
    }
    tempfile::tempdir_in(&parent).expect("tempdir")
}

fn binary(name: &str) -> PathBuf {
    let p = target_dir().join("release").join(name);
    assert!(
        p.exists(),
        "{} is missing: run `cargo build --release -p confab-node -p confab-gateway` first",
        p.display()
    );
    p
}

fn free_tcp() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn free_udp() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Median and p99 of microsecond samples, in milliseconds.
fn quantiles(mut v: Vec<u64>) -> (f64, f64, usize) {
    v.sort_unstable();
    let n = v.len();
    if n == 0 {
        return (f64::NAN, f64::NAN, 0);
    }
    let at = |q: f64| v[((n as f64 * q).ceil() as usize).clamp(1, n) - 1] as f64 / 1000.0;
    (at(0.5), at(0.99), n)
}

/// A node process (and maybe a gateway process) from config files.
struct Proc {
    _dir: tempfile::TempDir,
    node: Child,
    gateway: Option<Child>,
    web: SocketAddr,
    id: String,
}

impl Drop for Proc {
    fn drop(&mut self) {
        for c in self
            .gateway
            .iter_mut()
            .chain(std::iter::once(&mut self.node))
        {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn node_toml(
    dir: &Path,
    name: &str,
    fed: u16,
    client: u16,
    web: u16,
    in_process: bool,
    peers: &str,
    gateways: &str,
) -> String {
    format!(
        r#"
[node]
name = "{name}"
data_dir = "{data}"
[federation]
listen = "127.0.0.1:{fed}"
peers = [{peers}]
[client]
listen = "127.0.0.1:{client}"
gateways = [{gateways}]
[gateway]
enabled = {in_process}
listen = "127.0.0.1:{web}"
max_connections_per_user = 1000000
requests_per_minute = 100000000
[limits]
messages_per_minute = 10000000
[metrics]
enabled = false
[log]
level = "warn"
"#,
        data = dir.join("data").display()
    )
}

/// A node's files and ports, its key made, not yet running.
struct Prepared {
    dir: tempfile::TempDir,
    name: String,
    separate: Option<u32>,
    fed: u16,
    client: u16,
    web: u16,
    id: String,
    gw_id: String,
}

fn id_of(bin: &str, config: &Path) -> String {
    let out = Command::new(binary(bin))
        .args(["--config", config.to_str().unwrap_or_default(), "id"])
        .output()
        .expect("id");
    String::from_utf8(out.stdout)
        .unwrap_or_default()
        .trim()
        .to_string()
}

impl Prepared {
    /// A node with its gateway in-process (the default deployment), or
    /// (`separate: Some(n)`) with a gateway process of its own whose limits
    /// allow `n` sockets per user.
    fn new(name: &str, separate: Option<u32>) -> Prepared {
        let dir = scratch_dir();
        let (fed, client, web) = (free_udp(), free_udp(), free_tcp());
        let mut p = Prepared {
            dir,
            name: name.to_string(),
            separate,
            fed,
            client,
            web,
            id: String::new(),
            gw_id: String::new(),
        };
        p.write(&[]);
        p.id = id_of("confab-node", &p.dir.path().join("node.toml"));
        if let Some(per_user) = separate {
            std::fs::write(
                p.dir.path().join("gateway.toml"),
                format!(
                    r#"
[gateway]
name = "bench"
listen = "127.0.0.1:{web}"
data_dir = "{gw}"
[node]
addr = "127.0.0.1:{client}"
node_id = "{id}"
[limits]
max_connections_per_user = {per_user}
requests_per_minute = 100000000
[log]
level = "warn"
"#,
                    gw = p.dir.path().join("gw").display(),
                    id = p.id
                ),
            )
            .expect("gateway config");
            p.gw_id = id_of("confab-gateway", &p.dir.path().join("gateway.toml"));
        }
        p
    }

    fn write(&self, peers: &[(String, u16)]) {
        let peer_list: String = peers
            .iter()
            .map(|(id, port)| format!("{{ node = \"{id}\", addr = \"127.0.0.1:{port}\" }},"))
            .collect();
        let gateways = if self.gw_id.is_empty() {
            String::new()
        } else {
            format!("\"{}\"", self.gw_id)
        };
        std::fs::write(
            self.dir.path().join("node.toml"),
            node_toml(
                self.dir.path(),
                &self.name,
                self.fed,
                self.client,
                self.web,
                self.separate.is_none(),
                &peer_list,
                &gateways,
            ),
        )
        .expect("config");
    }

    /// Starts it, federating with `peers`.
    fn launch(self, peers: &[(String, u16)]) -> Proc {
        self.write(peers);
        let node = Command::new(binary("confab-node"))
            .args([
                "--config",
                self.dir
                    .path()
                    .join("node.toml")
                    .to_str()
                    .unwrap_or_default(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("confab-node");
        let gateway = self.separate.map(|_| {
            Command::new(binary("confab-gateway"))
                .args([
                    "--config",
                    self.dir
                        .path()
                        .join("gateway.toml")
                        .to_str()
                        .unwrap_or_default(),
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("confab-gateway")
        });
        Proc {
            web: SocketAddr::from(([127, 0, 0, 1], self.web)),
            id: self.id,
            _dir: self.dir,
            node,
            gateway,
        }
    }
}

impl Proc {
    /// A lone node (see [`Prepared::new`]).
    fn start(name: &str, separate: Option<u32>) -> Proc {
        Prepared::new(name, separate).launch(&[])
    }

    /// The pid of the process that serves browsers.
    fn web_pid(&self) -> u32 {
        self.gateway.as_ref().unwrap_or(&self.node).id()
    }

    fn url(&self) -> String {
        format!("ws://{}/ws", self.web)
    }

    async fn ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(mut s) = tokio::net::TcpStream::connect(self.web).await {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let _ = s
                    .write_all(
                        b"GET /health/ready HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
                    )
                    .await;
                let mut out = String::new();
                let _ = s.read_to_string(&mut out).await;
                if out.starts_with("HTTP/1.1 200") {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "the gateway never became ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The open-file limit of this process (the gateway's is the same).
fn open_files_max() -> usize {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(1024)
}

/// `wanted` sockets, or as many as the open-file limit lets one process
/// hold, saying so.
fn sockets_allowed(wanted: usize) -> usize {
    let max = open_files_max().saturating_sub(500);
    if wanted > max {
        println!(
            "(note: {wanted} sockets asked, but the open-file limit is {}; measuring {max}. Raise it with `ulimit -n` where permitted)",
            open_files_max()
        );
        max
    } else {
        wanted
    }
}

/// A `kB` field of `/proc/<pid>/status`, 0 if absent.
fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmRSS:")
}

/// The most RSS the process has had.
fn peak_rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmHWM:")
}

/// CPU seconds (user + system) a process has used.
fn cpu_secs(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces) start at ')'.
    let rest = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// A protocol client with requests answered in order (no pipelining).
struct Client {
    ws: Ws,
    next: u64,
}

impl Client {
    async fn connect(url: &str, source: Option<IpAddr>) -> Client {
        let ws = match source {
            None => {
                // Browsers set TCP_NODELAY; so do these clients.
                tokio_tungstenite::connect_async_with_config(url, None, true)
                    .await
                    .expect("connect")
                    .0
            }
            Some(ip) => {
                let addr: SocketAddr = url
                    .trim_start_matches("ws://")
                    .trim_end_matches("/ws")
                    .parse()
                    .expect("address");
                let sock = TcpSocket::new_v4().expect("socket");
                sock.bind(SocketAddr::new(ip, 0)).expect("bind source");
                let stream = sock.connect(addr).await.expect("tcp connect");
                let _ = stream.set_nodelay(true);
                tokio_tungstenite::client_async(
                    url,
                    tokio_tungstenite::MaybeTlsStream::Plain(stream),
                )
                .await
                .expect("ws handshake")
                .0
            }
        };
        let mut c = Client { ws, next: 0 };
        c.frame().await; // hello
        c
    }

    async fn frame(&mut self) -> Value {
        loop {
            match self.ws.next().await {
                Some(Ok(Message::Text(t))) => {
                    return serde_json::from_str(t.as_str()).unwrap_or(Value::Null);
                }
                Some(Ok(_)) => continue,
                other => panic!("socket ended: {other:?}"),
            }
        }
    }

    async fn call(&mut self, kind: &str, fields: Value) -> Value {
        self.next += 1;
        let id = self.next;
        let mut req = json!({"id": id, "type": kind});
        if let (Some(r), Value::Object(f)) = (req.as_object_mut(), fields) {
            r.extend(f);
        }
        self.ws
            .send(Message::Text(req.to_string().into()))
            .await
            .expect("send");
        loop {
            let v = self.frame().await;
            if v["id"] == json!(id) {
                if let Some(e) = v.get("error") {
                    panic!("{kind} failed: {e}");
                }
                return v["ok"].clone();
            }
        }
    }
}

/// Raw WebSocket echo on loopback: the latency ceiling.
async fn echo_ceiling(rounds: usize) -> (f64, f64) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        if let Ok((s, _)) = listener.accept().await {
            let _ = s.set_nodelay(true);
            let mut ws = tokio_tungstenite::accept_async(s).await.expect("accept");
            while let Some(Ok(m)) = ws.next().await {
                if m.is_text() && ws.send(m).await.is_err() {
                    break;
                }
            }
        }
    });
    let (mut ws, _) =
        tokio_tungstenite::connect_async_with_config(format!("ws://{addr}/"), None, true)
            .await
            .expect("connect");
    let mut samples = Vec::with_capacity(rounds);
    for i in 0..rounds {
        let t = Instant::now();
        ws.send(Message::Text(format!("{{\"n\":{i}}}").into()))
            .await
            .expect("send");
        let _ = ws.next().await;
        samples.push(t.elapsed().as_micros() as u64);
    }
    let (p50, p99, _) = quantiles(samples);
    (p50, p99)
}

fn verify_ceiling() -> f64 {
    use ed25519_dalek::{Signer, SigningKey};
    let key = SigningKey::from_bytes(&[7; 32]);
    let msg = [1u8; 300];
    let sig = key.sign(&msg);
    let vk = key.verifying_key();
    let n = 5000;
    let t = Instant::now();
    for _ in 0..n {
        assert!(vk.verify_strict(&msg, &sig).is_ok());
    }
    n as f64 / t.elapsed().as_secs_f64()
}

/// One bare argon2id hash at the node's cost (`passwords::MEMORY_KIB`,
/// `PASSES`, one lane), its memory made once and reused as the node does:
/// the sign-in ceiling. The time of each of `rounds`, in µs.
fn argon2_ceiling(rounds: usize) -> Vec<u64> {
    use argon2::{Algorithm, Argon2, Block, Params, Version};
    use confab_node::service::passwords::{MEMORY_KIB, PASSES};
    let params = Params::new(MEMORY_KIB, PASSES, 1, Some(32)).expect("argon2 parameters");
    let mut blocks = vec![Block::default(); params.block_count()];
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let mut out = [0u8; 32];
    let mut samples = Vec::with_capacity(rounds);
    for i in 0..=rounds {
        let salt = [i as u8; 16];
        let t = Instant::now();
        argon
            .hash_password_into_with_memory(b"correct horse battery", &salt, &mut out, &mut blocks)
            .expect("argon2id");
        // The first fills the pages in; not counted.
        if i > 0 {
            samples.push(t.elapsed().as_micros() as u64);
        }
    }
    samples
}

/// `accounts` sign-ups (`register`) or logins of users `u0`, `u1`, …,
/// by `clients` concurrent clients, each on a fresh socket from the
/// user's own address (`source`), as browsers would; the time of each
/// request, from sending it to its reply, in µs.
async fn sign_ins(url: &str, accounts: usize, clients: usize, register: bool) -> Vec<u64> {
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::with_capacity(clients);
    for _ in 0..clients {
        let (next, url) = (next.clone(), url.to_string());
        tasks.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                if i >= accounts {
                    return samples;
                }
                let mut c = Client::connect(&url, source(i)).await;
                let t = Instant::now();
                let grant = c
                    .call(
                        if register { "register" } else { "login" },
                        json!({"username": format!("u{i}"), "password": "correct horse battery"}),
                    )
                    .await;
                samples.push(t.elapsed().as_micros() as u64);
                assert!(grant["access_token"].is_string(), "no token: {grant}");
                let _ = c.ws.close(None).await;
            }
        }));
    }
    let mut all = Vec::with_capacity(accounts);
    for t in tasks {
        all.extend(t.await.expect("a sign-in client"));
    }
    all
}

async fn signed_in(
    url: &str,
    user: &str,
    register: bool,
    source: Option<IpAddr>,
) -> (Client, String) {
    let mut c = Client::connect(url, source).await;
    let grant = c
        .call(
            if register { "register" } else { "login" },
            json!({"username": user, "password": "correct horse battery"}),
        )
        .await;
    (
        c,
        grant["access_token"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

/// A distinct loopback source address per client, so per-address limits
/// (sign-in attempts) and the 64k ports of one address are not in the way.
fn source(i: usize) -> Option<IpAddr> {
    Some(IpAddr::V4(Ipv4Addr::new(
        127,
        1 + (i / 60_000) as u8,
        ((i / 240) % 250) as u8 + 1,
        (i % 240) as u8 + 2,
    )))
}

/// send → receive latency at a steady total rate from `senders` users to
/// one subscribed receiver (maybe on another node).
async fn latency(
    sender_url: &str,
    receiver_url: &str,
    receiver_user: &str,
    rate: u64,
    secs: u64,
    senders: usize,
) -> (f64, f64, usize, usize) {
    let (mut owner, _) = signed_in(sender_url, "owner", true, source(0)).await;
    let (mut b, _) = signed_in(receiver_url, "receiver", true, source(1)).await;
    let room = owner
        .call(
            "create_room",
            json!({"settings": {"name": "bench", "visibility": "public"}}),
        )
        .await["room"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    owner
        .call("invite", json!({"room": room, "user": receiver_user}))
        .await;
    let mut clients = Vec::with_capacity(senders);
    for i in 0..senders {
        let (mut c, _) = signed_in(sender_url, &format!("sender{i}"), true, source(2 + i)).await;
        c.call("join_room", json!({"room": room})).await;
        clients.push(c);
    }
    // The invitation may take a moment to cross federation.
    loop {
        b.next += 1;
        let id = b.next;
        b.ws.send(Message::Text(
            json!({"id": id, "type": "join_room", "room": room})
                .to_string()
                .into(),
        ))
        .await
        .expect("send");
        let ok = loop {
            let v = b.frame().await;
            if v["id"] == json!(id) {
                break v.get("error").is_none();
            }
        };
        if ok {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    b.call("subscribe", json!({"room": room})).await;
    let total = (rate * secs) as usize;
    let per = total / senders;
    let total = per * senders;
    let (_, rx) = b.ws.split();
    let receiver = tokio::spawn(async move {
        let mut rx = rx;
        let mut samples = Vec::with_capacity(total);
        while samples.len() < total {
            let Ok(Some(Ok(Message::Text(t)))) =
                tokio::time::timeout(Duration::from_secs(10), rx.next()).await
            else {
                break;
            };
            let v: Value = serde_json::from_str(t.as_str()).unwrap_or(Value::Null);
            if v["push"] == "room_event" && v["item"]["kind"] == "message" {
                if let Some(sent) = v["item"]["body"]
                    .as_str()
                    .and_then(|b| b.split(' ').nth(1))
                    .and_then(|t| t.parse::<u64>().ok())
                {
                    samples.push(now_us().saturating_sub(sent));
                }
            }
        }
        samples
    });
    let acked = Arc::new(AtomicU64::new(0));
    let start = Instant::now() + Duration::from_millis(100);
    let mut tasks = Vec::new();
    for (k, c) in clients.into_iter().enumerate() {
        let (mut tx, mut rx) = c.ws.split();
        let acked = acked.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = 0;
            while n < per {
                match tokio::time::timeout(Duration::from_secs(10), rx.next()).await {
                    Ok(Some(Ok(Message::Text(t)))) if t.as_str().contains("\"ok\"") => {
                        n += 1;
                        acked.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(Some(Ok(_))) => {}
                    _ => break,
                }
            }
        }));
        let room = room.clone();
        tasks.push(tokio::spawn(async move {
            // Senders are spread evenly over the schedule.
            for i in 0..per {
                let at = (i * senders + k) as f64 / rate as f64;
                tokio::time::sleep_until((start + Duration::from_secs_f64(at)).into()).await;
                let body = format!("m {} {k}-{i}", now_us());
                let req = json!({"id": i + 1000, "type": "send", "room": room, "body": body, "idempotency_key": format!("k{k}-{i}")});
                if tx.send(Message::Text(req.to_string().into())).await.is_err() {
                    break;
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let samples = receiver.await.unwrap_or_default();
    let (p50, p99, n) = quantiles(samples);
    (p50, p99, n, acked.load(Ordering::Relaxed) as usize)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let rate = env("CONFAB_BENCH_RATE", 1000);
    let senders = env("CONFAB_BENCH_LATENCY_SENDERS", 20) as usize;
    let secs = env("CONFAB_BENCH_SECS", 10);
    println!(
        "# gateway benchmarks ({} cores)",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let (echo_p50, echo_p99) = echo_ceiling(2000).await;
    println!(
        "ceiling: raw WebSocket echo round trip on loopback: p50 {echo_p50:.3} ms, p99 {echo_p99:.3} ms"
    );
    let verify = verify_ceiling();
    println!("ceiling: raw verify_strict, one core: {verify:.0}/s");

    if wanted("latency") {
        let n = Proc::start("solo", None);
        n.ready().await;
        let url = n.url();
        let user = format!("@receiver:{}", n.id);
        let (p50, p99, got, acked) = latency(&url, &url, &user, rate, secs, senders).await;
        println!(
            "send -> receive, one node, {rate} msg/s for {secs} s: p50 {p50:.3} ms, p99 {p99:.3} ms ({got} received, {acked} acknowledged); vs echo p50 {:.1}x, p99 {:.1}x",
            p50 / echo_p50,
            p99 / echo_p99
        );
    }

    if wanted("federated") {
        let (pa, pb) = (Prepared::new("alpha", None), Prepared::new("beta", None));
        let (a_peer, b_peer) = ((pa.id.clone(), pa.fed), (pb.id.clone(), pb.fed));
        let a = pa.launch(&[b_peer]);
        let b = pb.launch(&[a_peer]);
        a.ready().await;
        b.ready().await;
        let user = format!("@receiver:{}", b.id);
        let (p50, p99, got, acked) = latency(&a.url(), &b.url(), &user, rate, secs, senders).await;
        println!(
            "send -> receive, across two federated nodes, {rate} msg/s for {secs} s: p50 {p50:.3} ms, p99 {p99:.3} ms ({got} received, {acked} acknowledged); vs echo p50 {:.1}x, p99 {:.1}x",
            p50 / echo_p50,
            p99 / echo_p99
        );
    }

    if wanted("throughput") {
        let n = Proc::start("busy", None);
        n.ready().await;
        let url = n.url();
        let senders = env("CONFAB_BENCH_SENDERS", 50) as usize;
        let per = env("CONFAB_BENCH_PER_SENDER", 400) as usize;
        let (mut owner, _) = signed_in(&url, "owner", true, None).await;
        let room = owner
            .call(
                "create_room",
                json!({"settings": {"name": "busy", "visibility": "public"}}),
            )
            .await["room"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let mut clients = Vec::new();
        for i in 0..senders {
            let (mut c, _) = signed_in(&url, &format!("s{i}"), true, source(1 + i)).await;
            c.call("join_room", json!({"room": room})).await;
            clients.push(c);
        }
        owner.call("subscribe", json!({"room": room})).await;
        let delivered = Arc::new(AtomicU64::new(0));
        let d = delivered.clone();
        let expect = (senders * per) as u64;
        let watcher = tokio::spawn(async move {
            while d.load(Ordering::Relaxed) < expect {
                match tokio::time::timeout(Duration::from_secs(20), owner.ws.next()).await {
                    Ok(Some(Ok(Message::Text(t)))) if t.as_str().contains("\"room_event\"") => {
                        d.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(Some(Ok(_))) => {}
                    _ => break,
                }
            }
        });
        let pid = n.web_pid();
        let cpu0 = cpu_secs(pid);
        let start = Instant::now();
        let mut tasks = Vec::new();
        for (i, mut c) in clients.into_iter().enumerate() {
            let room = room.clone();
            tasks.push(tokio::spawn(async move {
                for j in 0..per {
                    c.call("send", json!({"room": room, "body": format!("msg {i} {j}"), "idempotency_key": format!("{i}-{j}")}))
                        .await;
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
        let accepted_secs = start.elapsed().as_secs_f64();
        let _ = watcher.await;
        let all_secs = start.elapsed().as_secs_f64();
        let cpu = cpu_secs(pid) - cpu0;
        let got = delivered.load(Ordering::Relaxed);
        println!(
            "throughput, {senders} senders x {per} messages, one node: {:.0} msg/s accepted (durable), {:.0} msg/s delivered to a subscriber ({got} of {expect}); node CPU {:.0} µs per message; vs verify_strict {:.2}x",
            expect as f64 / accepted_secs,
            got as f64 / all_secs,
            cpu / expect as f64 * 1e6,
            (expect as f64 / accepted_secs) / verify
        );
    }

    if wanted("fanout") {
        let sockets = sockets_allowed(env("CONFAB_BENCH_FANOUT", 10_000) as usize);
        let n = Proc::start("fan", Some(sockets as u32 + 10));
        n.ready().await;
        let url = n.url();
        let (mut owner, _) = signed_in(&url, "owner", true, source(0)).await;
        let (mut reader, token) = signed_in(&url, "reader", true, source(1)).await;
        let room = owner
            .call(
                "create_room",
                json!({"settings": {"name": "all-hands", "visibility": "public"}}),
            )
            .await["room"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        reader.call("join_room", json!({"room": room})).await;
        let mut rxs = Vec::with_capacity(sockets);
        for i in 0..sockets {
            let mut c = Client::connect(&url, source(2 + i)).await;
            c.call("authenticate", json!({"access_token": token})).await;
            c.call("subscribe", json!({"room": room})).await;
            rxs.push(c);
        }
        let mut samples = Vec::new();
        for round in 0..5 {
            let sent = Instant::now();
            owner
                .call("send", json!({"room": room, "body": format!("fan {round}"), "idempotency_key": format!("f{round}")}))
                .await;
            let waits = rxs.iter_mut().map(|c| async {
                loop {
                    let v = c.frame().await;
                    if v["push"] == "room_event" && v["item"]["kind"] == "message" {
                        return Instant::now();
                    }
                }
            });
            let last = futures_util::future::join_all(waits)
                .await
                .into_iter()
                .max();
            if let Some(last) = last {
                samples.push(last.duration_since(sent).as_micros() as u64);
            }
        }
        let (p50, _, _) = quantiles(samples.clone());
        let worst = samples.iter().max().copied().unwrap_or(0) as f64 / 1000.0;
        println!(
            "fan-out, one message to {sockets} sockets in one room on one gateway: until the last socket has it, median of 5 {p50:.1} ms, worst {worst:.1} ms (target <= 250 ms)"
        );
    }

    if wanted("idle") {
        let sockets = sockets_allowed(env("CONFAB_BENCH_IDLE", 50_000) as usize);
        let n = Proc::start("idle", Some(sockets as u32 + 10));
        n.ready().await;
        let url = n.url();
        let (_c, token) = signed_in(&url, "idler", true, source(0)).await;
        let pid = n.web_pid();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let before = rss_kib(pid);
        let mut held = Vec::with_capacity(sockets);
        for i in 0..sockets {
            let src = IpAddr::V4(Ipv4Addr::new(
                127,
                0,
                1 + (i / 20_000) as u8,
                2 + (i % 200) as u8,
            ));
            let mut c = Client::connect(&url, Some(src)).await;
            c.call("authenticate", json!({"access_token": token})).await;
            held.push(c);
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let after = rss_kib(pid);
        println!(
            "idle sockets: {sockets} signed-in sockets on one gateway process: RSS {:.1} MiB -> {:.1} MiB, {:.2} KiB per socket (target <= 8 KiB)",
            before as f64 / 1024.0,
            after as f64 / 1024.0,
            (after.saturating_sub(before)) as f64 / sockets as f64
        );
    }

    if wanted("signin") {
        const TARGET_KIB: u64 = 64 * 1024;
        let accounts = env("CONFAB_BENCH_SIGNINS", 200) as usize;
        let clients = env("CONFAB_BENCH_SIGNIN_CLIENTS", 8) as usize;
        // The ceiling is timed before and after the run (the machine is
        // shared), while the node is idle.
        let mut hashes = argon2_ceiling(5);
        // A fresh node, gateway in-process: argon2 runs in this process.
        let n = Proc::start("signin", None);
        n.ready().await;
        let url = n.url();
        let pid = n.web_pid();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let before = rss_kib(pid);
        let t = Instant::now();
        let ups = sign_ins(&url, accounts, clients, true).await;
        let ups_secs = t.elapsed().as_secs_f64();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let after_ups = rss_kib(pid);
        let t = Instant::now();
        let ins = sign_ins(&url, accounts, clients, false).await;
        let ins_secs = t.elapsed().as_secs_f64();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let after = rss_kib(pid);
        let peak = peak_rss_kib(pid);
        let (before_ms, _, _) = quantiles(hashes.clone());
        let later = argon2_ceiling(5);
        let (after_ms, _, _) = quantiles(later.clone());
        hashes.extend(later);
        let (hash_ms, _, _) = quantiles(hashes);
        println!(
            "ceiling: one bare argon2id hash (m={} KiB, t={}, p=1), in-process: median of 10 {hash_ms:.1} ms (of 5 before the run {before_ms:.1} ms, of 5 after {after_ms:.1} ms)",
            confab_node::service::passwords::MEMORY_KIB,
            confab_node::service::passwords::PASSES
        );
        let mib = |k: u64| k as f64 / 1024.0;
        // What the node's own sizing gives on this machine.
        let slots = confab_node::service::passwords::Passwords::for_this_machine().slots();
        for (what, samples, secs) in [("sign-up", ups, ups_secs), ("login", ins, ins_secs)] {
            let (p50, p99, got) = quantiles(samples);
            println!(
                "sign-in RSS: {got} {what}s, {clients} clients at once: p50 {p50:.1} ms, p99 {p99:.1} ms, {:.1}/s; vs one bare hash p50 {:.1}x, p99 {:.1}x",
                got as f64 / secs,
                p50 / hash_ms,
                p99 / hash_ms
            );
        }
        println!(
            "sign-in RSS: fresh node {:.1} MiB -> {:.1} MiB after {accounts} sign-ups -> {:.1} MiB after {accounts} logins (peak {:.1} MiB; the node hashes {slots} at once, {slots} x {} MiB of argon2 blocks); after / target {:.2} (target <= 64 MiB)",
            mib(before),
            mib(after_ups),
            mib(after),
            mib(peak),
            confab_node::service::passwords::MEMORY_KIB / 1024,
            after as f64 / TARGET_KIB as f64
        );
    }
}
