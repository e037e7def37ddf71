//! Operating real `confab-node` processes (each with its gateway
//! in-process): one message followed through the JSON logs of both
//! gateways and both nodes by its trace id; the metrics of node and
//! gateway accepted by `promtool check metrics`; health probes; a clean
//! stop on SIGTERM.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const BIN: &str = env!("CARGO_BIN_EXE_confab-node");
const GUARD: Duration = Duration::from_secs(60);

struct Proc {
    child: Option<Child>,
    config: PathBuf,
    log: PathBuf,
    id: String,
    fed: SocketAddr,
    web: Option<SocketAddr>,
    ops: Option<SocketAddr>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn free_udp() -> SocketAddr {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.local_addr().unwrap()
}

impl Proc {
    fn prepare(dir: &Path, name: &str) -> Proc {
        let mut p = Proc {
            child: None,
            config: dir.join(format!("{name}.toml")),
            log: dir.join(format!("{name}.log")),
            id: String::new(),
            fed: free_udp(),
            web: None,
            ops: None,
        };
        p.write_config(dir, name, None);
        let out = Command::new(BIN)
            .args(["--config", p.config.to_str().unwrap(), "id"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        p.id = String::from_utf8(out.stdout).unwrap().trim().to_string();
        p
    }

    fn write_config(&self, dir: &Path, name: &str, peer: Option<(&str, SocketAddr)>) {
        let peers = peer
            .map(|(id, addr)| format!("{{ node = \"{id}\", addr = \"{addr}\" }}"))
            .unwrap_or_default();
        let text = format!(
            "[node]\nname = \"{name}\"\ndata_dir = \"{}\"\n\n\
             [federation]\nlisten = \"{}\"\npeers = [{peers}]\n\n\
             [client]\nlisten = \"127.0.0.1:0\"\n\n\
             [gateway]\nlisten = \"127.0.0.1:0\"\n\n[metrics]\nlisten = \"127.0.0.1:0\"\n\n\
             [welcome_bot]\nenabled = false\n\n\
             [log]\nlevel = \"debug\"\njson = true\n",
            dir.join(name).display(),
            self.fed,
        );
        std::fs::write(&self.config, text).unwrap();
    }

    fn start(&mut self) {
        let log = std::fs::File::create(&self.log).unwrap();
        let mut child = Command::new(BIN)
            .args(["--config", self.config.to_str().unwrap()])
            // The config's level, not the test runner's RUST_LOG.
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        loop {
            match lines.next() {
                Some(Ok(l)) if l.trim_start().starts_with("web:") => {
                    let addr = l.trim().trim_start_matches("web:").trim();
                    let addr = addr.trim_start_matches("http://").trim_end_matches('/');
                    self.web = Some(addr.parse().unwrap());
                }
                Some(Ok(l)) if l.trim_start().starts_with("metrics:") => {
                    let addr = l.trim().trim_start_matches("metrics:").trim();
                    let addr = addr.trim_start_matches("http://");
                    let addr = addr.split('/').next().unwrap_or_default();
                    self.ops = Some(addr.parse().unwrap());
                    break;
                }
                Some(Ok(_)) => {}
                other => panic!("confab-node exited before starting: {other:?}"),
            }
        }
        std::thread::spawn(move || for _ in lines {});
        self.child = Some(child);
    }

    fn sigterm(&mut self) {
        let mut c = self.child.take().unwrap();
        let ok = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
        let status = c.wait().unwrap();
        assert!(status.success(), "graceful stop failed: {status}");
    }

    /// The log's JSON lines.
    fn lines(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

struct Client {
    ws: Socket,
    next: u64,
    kept: Vec<Value>,
}

impl Client {
    async fn connect(addr: SocketAddr) -> Client {
        let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
            .await
            .unwrap();
        Client {
            ws,
            next: 1,
            kept: Vec::new(),
        }
    }

    async fn frame(&mut self) -> Value {
        loop {
            let m = tokio::time::timeout(GUARD, self.ws.next())
                .await
                .expect("no frame within the guard")
                .unwrap()
                .unwrap();
            if let Message::Text(t) = m {
                return serde_json::from_str(&t).unwrap();
            }
        }
    }

    async fn ok(&mut self, kind: &str, mut fields: Value) -> Value {
        let id = self.next;
        self.next += 1;
        fields["id"] = json!(id);
        fields["type"] = json!(kind);
        self.ws
            .send(Message::Text(fields.to_string().into()))
            .await
            .unwrap();
        loop {
            let v = self.frame().await;
            if v["id"] == id {
                assert!(v.get("error").is_none(), "{kind}: {v}");
                return v["ok"].clone();
            }
            self.kept.push(v);
        }
    }

    async fn push(&mut self, f: impl Fn(&Value) -> bool) -> Value {
        if let Some(i) = self.kept.iter().position(&f) {
            return self.kept.remove(i);
        }
        loop {
            let v = self.frame().await;
            if f(&v) {
                return v;
            }
            self.kept.push(v);
        }
    }
}

fn has(lines: &[Value], target: &str, message: &str, trace: &str) -> bool {
    lines.iter().any(|l| {
        l["target"].as_str().is_some_and(|t| t.starts_with(target))
            && l["fields"]["message"] == message
            && l["fields"]["trace"] == trace
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_message_is_traced_through_both_gateways_and_both_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = Proc::prepare(dir.path(), "a");
    let mut b = Proc::prepare(dir.path(), "b");
    a.write_config(dir.path(), "a", Some((&b.id, b.fed)));
    b.write_config(dir.path(), "b", Some((&a.id, a.fed)));
    a.start();
    b.start();

    let mut alice = Client::connect(a.web.unwrap()).await;
    alice
        .ok(
            "register",
            json!({"username": "alice", "password": "correct horse"}),
        )
        .await;
    let mut bob = Client::connect(b.web.unwrap()).await;
    bob.ok(
        "register",
        json!({"username": "bob", "password": "correct horse"}),
    )
    .await;
    let room = alice
        .ok(
            "create_room",
            json!({"settings": {"name": "traced", "visibility": "private"}}),
        )
        .await["room"]
        .as_str()
        .unwrap()
        .to_string();
    alice.ok("subscribe", json!({"room": room})).await;
    let bob_id = format!("@bob:{}", b.id);
    alice
        .ok("invite", json!({"room": room, "user": bob_id}))
        .await;
    bob.push(|v| v["push"] == "room_update" && v["summary"]["invited"] == true)
        .await;
    bob.ok("join_room", json!({"room": room})).await;
    bob.ok("subscribe", json!({"room": room})).await;
    alice
        .push(|v| v["push"] == "room_event" && v["item"]["kind"] == "join")
        .await;

    let sent = alice
        .ok(
            "send",
            json!({"room": room, "body": "follow me", "idempotency_key": "t1"}),
        )
        .await;
    let event = sent["event"].as_str().unwrap().to_string();
    bob.push(|v| v["push"] == "room_event" && v["item"]["id"] == event.as_str())
        .await;

    // The trace id node A gave the event on its way to the peers.
    let a_lines = a.lines();
    let trace = a_lines
        .iter()
        .find(|l| {
            l["fields"]["message"] == "event to peers" && l["fields"]["event"] == event.as_str()
        })
        .and_then(|l| l["fields"]["trace"].as_str())
        .unwrap_or_else(|| panic!("node A logged no trace for {event}"))
        .to_string();
    assert_eq!(trace.len(), 32, "{trace}");
    assert!(
        has(&a_lines, "confab_gateway", "request to the node", &trace),
        "Alice's gateway did not log the request with trace {trace}"
    );
    assert!(has(&a_lines, "confab_node", "event to gateways", &trace));
    let b_lines = b.lines();
    assert!(
        has(
            &b_lines,
            "confab_node",
            "events accepted from a peer",
            &trace
        ),
        "node B did not log the accepted event with trace {trace}: {:?}",
        b_lines
            .iter()
            .filter(|l| l["target"]
                .as_str()
                .is_some_and(|t| t.starts_with("confab")))
            .map(|l| l["fields"].to_string())
            .collect::<Vec<_>>()
    );
    assert!(has(&b_lines, "confab_node", "event to gateways", &trace));
    assert!(
        has(&b_lines, "confab_gateway", "room event to sockets", &trace),
        "Bob's gateway did not log the push with trace {trace}"
    );

    a.sigterm();
    b.sigterm();
}

/// A GET over plain HTTP/1.1: (status, body).
async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(GUARD, s.read_to_end(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// `promtool check metrics` on an exposition; its complaints, if any.
fn promtool(text: &str) -> String {
    use std::io::Write;
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian's prometheus package; .ci/run installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        String::new()
    } else {
        said
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_pass_promtool_and_health_probes_answer() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = Proc::prepare(dir.path(), "m");
    a.start();
    let ops = a.ops.unwrap();
    let web = a.web.unwrap();
    assert_eq!(get(ops, "/health/live").await.0, 200);
    assert_eq!(get(ops, "/health/ready").await.0, 200);
    assert_eq!(get(web, "/health/ready").await.0, 200);
    // Some traffic, so the families have samples.
    let mut alice = Client::connect(web).await;
    alice
        .ok(
            "register",
            json!({"username": "alice", "password": "correct horse"}),
        )
        .await;
    let room = alice
        .ok(
            "create_room",
            json!({"settings": {"name": "m", "visibility": "public"}}),
        )
        .await["room"]
        .as_str()
        .unwrap()
        .to_string();
    alice
        .ok(
            "send",
            json!({"room": room, "body": "counted", "idempotency_key": "m1"}),
        )
        .await;
    alice.ok("subscribe", json!({"room": room})).await;
    let (status, node) = get(ops, "/metrics").await;
    assert_eq!(status, 200);
    let node = dechunk(&node);
    for family in [
        "confab_store_flush_batch",
        "confab_store_flush_seconds",
        "confab_store_durable_wait_seconds",
        "confab_federation_events_rejected",
        "confab_node_rooms",
        "confab_node_peer_lag_events",
    ] {
        assert!(
            node.contains(&format!("# TYPE {family}")),
            "{family} missing from:\n{node}"
        );
    }
    assert_eq!(promtool(&node), "", "the node's metrics:\n{node}");
    // No series names the room (or anyone): metrics are counts.
    assert!(
        !node.contains(&room[1..]),
        "a room id in the metrics:\n{node}"
    );
    assert!(!node.contains("alice"), "a user in the metrics:\n{node}");
    // The in-process gateway's metrics are the node's, never on the chat.
    assert!(node.contains("confab_gateway_sockets"), "{node}");
    let (status, _) = get(web, "/metrics").await;
    assert_eq!(status, 404);
    a.sigterm();
}

/// The body of a chunked response, joined (or the body as it is).
fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    loop {
        let Some((size, after)) = rest.split_once("\r\n") else {
            return body.to_string();
        };
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            return body.to_string();
        };
        if n == 0 {
            return out;
        }
        let Some(chunk) = after.get(..n) else {
            return body.to_string();
        };
        out.push_str(chunk);
        rest = after.get(n + 2..).unwrap_or("");
    }
}
