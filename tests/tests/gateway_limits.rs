//! Regression tests for the limits of `gateway/PROTOCOL.md` §8, through real sockets against a node and gateways in-process (test keys 210 to 219).
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::Duration;

use confab_gateway::Gateway;
use confab_gateway::client_addr::TrustedProxies;
use confab_gateway::config::GatewayConfig;
use confab_gateway::http::DOWNLOADS_PER_USER_MAX;
use confab_gateway::metrics::LimitLabel;
use confab_node::service::UPLOADS_PER_USER_MAX;
use confab_node::service::transport::InProcess;
use confab_node::tls::PinSet;
use confab_tests::net::eventually;
use confab_tests::test_key;
use confab_tests::web::{HANG_GUARD, HttpReply, WebNode, Ws, gateway_config, http, test_settings};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::{Instant, timeout};

/// A gateway of its own on `n`'s service, its configuration changed by `tune`.
async fn gateway(n: &WebNode, tune: impl FnOnce(&mut GatewayConfig)) -> Gateway {
    let mut c = gateway_config("limits");
    tune(&mut c);
    let g = Gateway::start(c, InProcess(n.service.clone()))
        .await
        .unwrap();
    assert!(g.wait_ready(HANG_GUARD).await, "gateway never connected");
    g
}

fn ws_url(g: &Gateway) -> String {
    format!("ws://{}/ws", g.local_addr())
}

/// Loopback as a trusted proxy: a test then names any client address in
/// `X-Forwarded-For`.
fn loopback_proxy() -> TrustedProxies {
    TrustedProxies::parse(&["127.0.0.1".to_string()]).unwrap()
}

/// A socket whose client address, as the gateway counts it, is `ip`.
async fn ws_from(url: &str, ip: &str) -> Ws {
    Ws::connect_with(url, &[("x-forwarded-for", ip)])
        .await
        .unwrap()
}

fn token(grant: &Value) -> String {
    grant["access_token"].as_str().unwrap().to_string()
}

/// Refusals `g` counted under `limit` (`confab_gateway_limited_total`).
fn refused(g: &Gateway, limit: &str) -> u64 {
    g.state()
        .metrics
        .limited
        .get_or_create(&LimitLabel {
            limit: limit.into(),
        })
        .get()
}

/// A PNG (signature and IHDR, enough to sniff) padded to `len` bytes
/// with `fill`, so different fills are different blobs.
fn png(len: usize, fill: u8) -> Vec<u8> {
    let mut b =
        b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\0\0\0\0".to_vec();
    b.resize(len.max(b.len()), fill);
    b
}

async fn upload(addr: SocketAddr, token: &str, body: &[u8]) -> HttpReply {
    let auth = format!("Bearer {token}");
    let h = [("authorization", auth.as_str()), ("x-filename", "f.png")];
    http(addr, "POST", "/api/upload", &h, body).await.unwrap()
}

async fn download(addr: SocketAddr, token: &str, blob: &str) -> HttpReply {
    let auth = format!("Bearer {token}");
    let path = format!("/api/blob/{}", &blob[1..]);
    http(addr, "GET", &path, &[("authorization", &auth)], &[])
        .await
        .unwrap()
}

/// A TCP connection to `to` from the loopback address `from` (the whole
/// of 127.0.0.0/8 is this machine): another client address.
async fn connect_from(from: [u8; 4], to: SocketAddr) -> TcpStream {
    let s = TcpSocket::new_v4().unwrap();
    s.bind(SocketAddr::from((from, 0))).unwrap();
    timeout(HANG_GUARD, s.connect(to)).await.unwrap().unwrap()
}

/// The next response head on `s`: its status and its text (lowercase);
/// `None` if the server closed (or reset) the connection before a byte.
async fn next_head(s: &mut TcpStream) -> Option<(u16, String)> {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        let read = timeout(HANG_GUARD, s.read(&mut b))
            .await
            .expect("no answer within the hang guard");
        match read {
            Ok(0) | Err(_) if head.is_empty() => return None,
            Ok(0) | Err(_) => panic!("cut off in a head: {}", String::from_utf8_lossy(&head)),
            Ok(_) => head.push(b[0]),
        }
    }
    let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok());
    Some((status.expect("a status line"), text))
}

/// The body of the response whose head is `head`, as JSON.
async fn body(s: &mut TcpStream, head: &str) -> Value {
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().unwrap());
    let mut b = vec![0; len];
    timeout(HANG_GUARD, s.read_exact(&mut b))
        .await
        .unwrap()
        .unwrap();
    serde_json::from_slice(&b).unwrap_or(Value::Null)
}

/// `GET /health/live` on a kept-alive connection; the status, if answered.
async fn live(s: &mut TcpStream) -> Option<u16> {
    // A refused connection may already be reset: the write may fail.
    let _ = s
        .write_all(b"GET /health/live HTTP/1.1\r\nhost: gw\r\n\r\n")
        .await;
    let (status, head) = next_head(s).await?;
    body(s, &head).await;
    Some(status)
}

/// A new connection from `from` that is served (kept open), once there is
/// one: a slot a closed connection held is free once the gateway has seen
/// it go.
async fn served_again(from: [u8; 4], addr: SocketAddr) -> TcpStream {
    let deadline = Instant::now() + HANG_GUARD;
    loop {
        let mut s = connect_from(from, addr).await;
        if live(&mut s).await == Some(200) {
            return s;
        }
        assert!(Instant::now() < deadline, "the freed slot never came back");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An upload announcing `size` bytes, of which it sends none: returned
/// once the gateway asks for the body (`100 Continue`), which it does only
/// after the node gave the upload its slot.
async fn stalled_upload(addr: SocketAddr, token: &str, size: usize) -> TcpStream {
    let mut s = timeout(HANG_GUARD, TcpStream::connect(addr))
        .await
        .unwrap()
        .unwrap();
    let req = format!(
        "POST /api/upload HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {token}\r\n\
         x-filename: slow.png\r\ncontent-length: {size}\r\nexpect: 100-continue\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let (status, head) = next_head(&mut s).await.expect("the upload was cut off");
    assert_eq!(status, 100, "{head}");
    s
}

/// A download that reads the response head, then nothing. Its receive
/// buffer is small, so with a file far larger than the kernel's buffers
/// the gateway is stuck mid-body while the connection stays open.
async fn stalled_download(addr: SocketAddr, token: &str, blob: &str) -> TcpStream {
    let sock = TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    let mut s = timeout(HANG_GUARD, sock.connect(addr))
        .await
        .unwrap()
        .unwrap();
    let req = format!(
        "GET /api/blob/{} HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {token}\r\n\r\n",
        &blob[1..]
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let (status, head) = next_head(&mut s).await.expect("the download was cut off");
    assert_eq!(status, 200, "{head}");
    s
}

/// More than a stalled download can get rid of unread (hyper's write queue
/// of some 4 MiB, a send buffer of at most `tcp_wmem`'s 4 MiB by default,
/// the reader's small receive buffer), so it cannot finish.
const BIG: usize = 12 << 20;

/// A node that takes uploads of [`BIG`].
async fn big_upload_node(seed: u8) -> WebNode {
    let mut settings = test_settings();
    settings.max_upload_bytes = 16 << 20;
    WebNode::with_settings(&test_key(seed), PinSet::new(), settings)
        .await
        .unwrap()
}

// ---------------------------------------------------------------------
// Uploads (item 4)
// ---------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_user_gets_four_uploads_at_once_and_others_still_upload() {
    let n = WebNode::start(&test_key(210), PinSet::new()).await.unwrap();
    // Held uploads must not be cancelled as idle while the test runs.
    let g = gateway(&n, |c| c.http.upload_idle_secs = 3600).await;
    let addr = g.local_addr();
    let mut a = Ws::connect(&ws_url(&g)).await.unwrap();
    let alice = token(&a.register("alice").await);
    let mut b = Ws::connect(&ws_url(&g)).await.unwrap();
    let bob = token(&b.register("bob").await);

    let mut held = Vec::new();
    for _ in 0..UPLOADS_PER_USER_MAX {
        held.push(stalled_upload(addr, &alice, 4096).await);
    }
    let r = upload(addr, &alice, &png(64, 1)).await;
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "rate_limited", "{}", r.text());
    let message = r.json()["error"]["message"].to_string();
    assert!(message.contains("you have too many uploads"), "{message}");
    assert!(r.header("retry-after").is_some(), "{:?}", r.headers);
    // Her share is hers: Bob uploads meanwhile.
    let r = upload(addr, &bob, &png(64, 2)).await;
    assert_eq!(r.status, 200, "{}", r.text());

    // One she abandons (closes mid-body) gives its slot back: once its
    // node session is gone, her next upload is taken.
    drop(held.pop());
    eventually("the abandoned upload's node session ends", || {
        n.service.connections().1 == 2 + held.len()
    })
    .await;
    let r = upload(addr, &alice, &png(64, 3)).await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_are_capped_at_sixty_four_per_node() {
    let n = WebNode::start(&test_key(211), PinSet::new()).await.unwrap();
    let g = gateway(&n, |c| c.http.upload_idle_secs = 3600).await;
    let addr = g.local_addr();
    // 16 users at their 4 each fill the node's 64.
    let mut sockets = Vec::new();
    let mut held = Vec::new();
    for i in 0..16 {
        let mut ws = Ws::connect(&ws_url(&g)).await.unwrap();
        let t = token(&ws.register(&format!("user{i}")).await);
        for _ in 0..UPLOADS_PER_USER_MAX {
            held.push(stalled_upload(addr, &t, 4096).await);
        }
        sockets.push(ws);
    }
    let mut late = Ws::connect(&ws_url(&g)).await.unwrap();
    let latecomer = token(&late.register("latecomer").await);
    let r = upload(addr, &latecomer, &png(64, 1)).await;
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "rate_limited", "{}", r.text());
    let message = r.json()["error"]["message"].to_string();
    assert!(!message.contains("you have"), "the node's bound: {message}");
    // One goes: there is a slot for the latecomer again.
    drop(held.pop());
    eventually("the abandoned upload's node session ends", || {
        n.service.connections().1 == 17 + held.len()
    })
    .await;
    let r = upload(addr, &latecomer, &png(64, 2)).await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_that_stops_sending_is_cancelled_and_frees_its_slot() {
    let n = WebNode::start(&test_key(212), PinSet::new()).await.unwrap();
    let g = gateway(&n, |c| c.http.upload_idle_secs = 1).await;
    let addr = g.local_addr();
    let mut a = Ws::connect(&ws_url(&g)).await.unwrap();
    let alice = token(&a.register("alice").await);
    let before = n.service.connections().1;
    // All her slots, two of them partly sent, then nothing more.
    let mut held = Vec::new();
    for i in 0..UPLOADS_PER_USER_MAX {
        let mut s = stalled_upload(addr, &alice, 4096).await;
        if i % 2 == 0 {
            // Best effort: on a slow machine the gateway may have given
            // up on it already, which is what is tested below anyway.
            let _ = s.write_all(&png(100, 9)).await;
        }
        held.push(s);
    }
    // Each is cancelled with an answer, not left hanging.
    for s in &mut held {
        let (status, head) = next_head(s).await.expect("closed without an answer");
        assert_eq!(status, 400, "{head}");
        let e = body(s, &head).await;
        assert_eq!(e["error"]["code"], "bad_request", "{e}");
        assert!(
            e["error"]["message"]
                .to_string()
                .contains("stopped sending")
        );
    }
    // The node let go of them (the node session of each ended, and with
    // it the upload): with all four held her next would be refused.
    eventually("the cancelled uploads' node sessions end", || {
        n.service.connections().1 == before
    })
    .await;
    let r = upload(addr, &alice, &png(64, 1)).await;
    assert_eq!(r.status, 200, "{}", r.text());
}

// ---------------------------------------------------------------------
// Sign-in throttle (item 5)
// ---------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_sign_ins_hold_up_the_failing_addresses_not_the_user() {
    let mut settings = test_settings();
    settings.sign_in_failures_per_address = 3;
    let n = WebNode::with_settings(&test_key(213), PinSet::new(), settings)
        .await
        .unwrap();
    // The gateway's own per-address bucket is wide open: what refuses
    // here is the node's throttle, by the address the proxy names.
    let g = gateway(&n, |c| {
        c.http.trusted_proxies = loopback_proxy();
        c.limits.sign_ins_per_minute_per_address = 10_000;
    })
    .await;
    let url = ws_url(&g);
    ws_from(&url, "198.51.100.10").await.register("alice").await;
    let right = json!({"username": "alice", "password": "correct horse"});
    let wrong = json!({"username": "alice", "password": "wrong horse"});

    // Three strangers fail on her name: the account is under attack.
    let mut strangers = Vec::new();
    for i in 1..=3 {
        let mut s = ws_from(&url, &format!("203.0.113.{i}")).await;
        assert_eq!(s.err("login", wrong.clone()).await, "unauthenticated");
        strangers.push(s);
    }
    // A stranger that failed on her may not try her again, even with the
    // right password (for the window of 15 minutes, not a short backoff).
    let e = strangers[0]
        .call("login", right.clone())
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(e["code"], "rate_limited", "{e}");
    assert!(e["retry_after_ms"].as_u64().unwrap() > 0, "{e}");
    // An address that keeps failing, on any names, backs off.
    let mut tries = 0;
    let e = loop {
        tries += 1;
        assert!(tries <= 40, "never throttled");
        let guess = json!({"username": format!("nobody{tries}"), "password": "guess"});
        let e = strangers[1]
            .call("login", guess)
            .await
            .unwrap()
            .unwrap_err();
        if e["code"] == "rate_limited" {
            break e;
        }
        assert_eq!(e["code"], "unauthenticated", "{e}");
    };
    assert!(e["retry_after_ms"].as_u64().unwrap() > 0, "{e}");

    // Alice, from her office (an address that never failed), gets in.
    let mut office = ws_from(&url, "198.51.100.20").await;
    let grant = office.ok("login", right.clone()).await;
    assert_eq!(grant["user"], n.user("alice").as_str(), "{grant}");
    office.ok("list_rooms", json!({})).await;
    // And from home, where she registered.
    let mut home = ws_from(&url, "198.51.100.10").await;
    home.ok("login", right).await;
}

// ---------------------------------------------------------------------
// Downloads (item 6)
// ---------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aborted_download_ends_its_node_session() {
    let n = big_upload_node(214).await;
    let addr = n.gateway.local_addr();
    let mut a = Ws::connect(&n.ws_url()).await.unwrap();
    let alice = token(&a.register("alice").await);
    let r = upload(addr, &alice, &png(BIG, 7)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let blob = r.json()["blob"].as_str().unwrap().to_string();
    a.close().await;
    eventually("alice is offline", || n.service.connections().1 == 0).await;

    let user = n.user("alice");
    let downloads = || {
        let d = n.gateway.state().downloads.lock().unwrap();
        d.get(&user).copied().unwrap_or(0)
    };
    let s = stalled_download(addr, &alice, &blob).await;
    eventually("the download runs, in a node session of alice's", || {
        downloads() == 1 && n.service.connections().1 == 1
    })
    .await;
    // The client goes away mid-body: the download's slot and its node
    // session end with it (else she would stay "online" for good).
    drop(s);
    eventually("the aborted download's slot is free", || downloads() == 0).await;
    // Again and again, each cut off right after its head, while the
    // gateway is still fetching chunks from the node: an abort must end
    // the session whatever request of it is in flight.
    for _ in 0..32 {
        let s = stalled_download(addr, &alice, &blob).await;
        assert_eq!(downloads(), 1);
        drop(s);
        eventually("the aborted download's slot is free", || downloads() == 0).await;
    }
    eventually("every aborted download's node session ends", || {
        n.service.connections().1 == 0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ninth_download_at_once_is_refused() {
    let n = big_upload_node(215).await;
    let addr = n.gateway.local_addr();
    let mut a = Ws::connect(&n.ws_url()).await.unwrap();
    let alice = token(&a.register("alice").await);
    let mut b = Ws::connect(&n.ws_url()).await.unwrap();
    let bob = token(&b.register("bob").await);
    let big = upload(addr, &alice, &png(BIG, 7)).await.json()["blob"].clone();
    let small = upload(addr, &alice, &png(64, 8)).await.json()["blob"].clone();
    let bobs = upload(addr, &bob, &png(64, 9)).await.json()["blob"].clone();
    let (big, small, bobs) = (
        big.as_str().unwrap(),
        small.as_str().unwrap(),
        bobs.as_str().unwrap(),
    );

    let user = n.user("alice");
    let downloads = || {
        let d = n.gateway.state().downloads.lock().unwrap();
        d.get(&user).copied().unwrap_or(0)
    };
    let mut held = Vec::new();
    for _ in 0..DOWNLOADS_PER_USER_MAX {
        held.push(stalled_download(addr, &alice, big).await);
    }
    // Each is stuck mid-body, so all eight hold their slot.
    assert_eq!(downloads(), DOWNLOADS_PER_USER_MAX);
    let r = download(addr, &alice, small).await;
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "rate_limited", "{}", r.text());
    assert!(r.header("retry-after").is_some(), "{:?}", r.headers);
    // Per user: Bob downloads meanwhile.
    let r = download(addr, &bob, bobs).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.body, png(64, 9));
    // One ends: she may download again.
    drop(held.pop());
    eventually("the aborted download's slot is free", || {
        downloads() == DOWNLOADS_PER_USER_MAX - 1
    })
    .await;
    let r = download(addr, &alice, small).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.body, png(64, 8));
}

// ---------------------------------------------------------------------
// Idle and slow HTTP connections (item 7)
// ---------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_slow_connections_are_closed_after_the_header_timeout() {
    let n = WebNode::start(&test_key(216), PinSet::new()).await.unwrap();
    let g = gateway(&n, |c| {
        c.http.header_read_timeout_secs = 1;
        c.http.max_connections_per_address = 3;
    })
    .await;
    let addr = g.local_addr();
    // One says nothing; one sends half a request's headers; one is
    // answered once and then idles between requests.
    let silent = connect_from([127, 0, 0, 1], addr).await;
    let mut partial = connect_from([127, 0, 0, 1], addr).await;
    partial
        .write_all(b"GET /health/live HTTP/1.1\r\nhost: gw\r\n")
        .await
        .unwrap();
    let mut kept = connect_from([127, 0, 0, 1], addr).await;
    assert_eq!(live(&mut kept).await, Some(200));
    for (what, mut s) in [("silent", silent), ("partial", partial), ("idle", kept)] {
        // The guard is below hyper's own default of 30 s, so only the
        // configured timeout (1 s) closes these in time.
        let mut rest = Vec::new();
        let read = timeout(Duration::from_secs(20), s.read_to_end(&mut rest)).await;
        assert!(read.is_ok(), "the {what} connection was never closed");
        let rest = String::from_utf8_lossy(&rest);
        assert!(
            rest.is_empty() || rest.starts_with("HTTP/1.1 408"),
            "{what}: {rest}"
        );
    }
    // Their slots are free again: the address, at its cap of three
    // before, is served on three connections at once.
    let mut three = Vec::new();
    for _ in 0..3 {
        three.push(served_again([127, 0, 0, 1], addr).await);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_take_every_connection() {
    let n = WebNode::start(&test_key(217), PinSet::new()).await.unwrap();
    let g = gateway(&n, |c| {
        c.http.max_connections_per_address = 4;
        // Idle connections stay for the whole test.
        c.http.header_read_timeout_secs = 3600;
    })
    .await;
    let addr = g.local_addr();
    // Four kept-alive connections, each answered once (so surely
    // counted), then idle.
    let mut idle = Vec::new();
    for _ in 0..4 {
        let mut s = connect_from([127, 0, 0, 1], addr).await;
        assert_eq!(live(&mut s).await, Some(200));
        idle.push(s);
    }
    // A fifth from that address is closed unanswered…
    let mut fifth = connect_from([127, 0, 0, 1], addr).await;
    assert_eq!(live(&mut fifth).await, None);
    assert!(refused(&g, "connections_per_address") >= 1);
    // …while another address is served, and the idle ones still are.
    let mut other = connect_from([127, 0, 0, 2], addr).await;
    assert_eq!(live(&mut other).await, Some(200));
    for s in &mut idle {
        assert_eq!(live(s).await, Some(200));
    }
    // One closes: its address may connect again (once the gateway has
    // seen it go).
    drop(idle.pop());
    served_again([127, 0, 0, 1], addr).await;
}

// ---------------------------------------------------------------------
// WebSocket frames and sockets (item 10)
// ---------------------------------------------------------------------

/// The next reply on `ws` (pushes are kept).
async fn next_reply(ws: &mut Ws) -> Value {
    ws.push("a reply", |v| v.get("push").is_none()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_unknown_frames_count_against_the_request_limit() {
    let n = WebNode::start(&test_key(218), PinSet::new()).await.unwrap();
    // One request a minute: a bucket of one token, refilled only after a
    // minute, so nothing refills during the test.
    let g = gateway(&n, |c| {
        c.limits.requests_per_minute = 1;
        c.http.trusted_proxies = loopback_proxy();
    })
    .await;
    let url = ws_url(&g);
    for (i, garbage, code) in [
        (1, "not json", "bad_json"),
        (2, r#"{"id":5,"type":"fly"}"#, "unknown_request"),
        (3, r#"{"id":6,"type":"join_room"}"#, "bad_request"),
    ] {
        let mut ws = ws_from(&url, &format!("203.0.113.{i}")).await;
        ws.send_text(garbage.into()).await.unwrap();
        let v = next_reply(&mut ws).await;
        assert_eq!(v["error"]["code"], code, "{garbage}: {v}");
        // More of it is refused unread: a flood costs the sender.
        for _ in 0..20 {
            ws.send_text(garbage.into()).await.unwrap();
        }
        for _ in 0..20 {
            let v = next_reply(&mut ws).await;
            assert_eq!(v["error"]["code"], "rate_limited", "{garbage}: {v}");
        }
        // The garbage took the address's token: a good request waits.
        let e = ws.call("ping", json!({})).await.unwrap().unwrap_err();
        assert_eq!(e["code"], "rate_limited", "{garbage}: {e}");
        assert!(e["retry_after_ms"].as_u64().unwrap() > 0, "{e}");
    }
    // Signed in, the bucket is the user's: garbage on one socket holds up
    // her other sockets too.
    let mut a = ws_from(&url, "203.0.113.20").await;
    let grant = a.register("alice").await;
    a.send_text("{".into()).await.unwrap();
    assert_eq!(next_reply(&mut a).await["error"]["code"], "bad_json");
    assert_eq!(a.err("ping", json!({})).await, "rate_limited");
    let mut other = ws_from(&url, "203.0.113.21").await;
    let auth = json!({"access_token": grant["access_token"]});
    other.ok("authenticate", auth).await;
    assert_eq!(other.err("ping", json!({})).await, "rate_limited");
    assert!(refused(&g, "requests") >= 60);
}

/// The status of a refused WebSocket upgrade from client address `ip`
/// and its body (101 and empty if it was accepted).
async fn upgrade(url: &str, ip: &str) -> (u16, String) {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = url.into_client_request().unwrap();
    req.headers_mut()
        .insert("x-forwarded-for", ip.parse().unwrap());
    match timeout(HANG_GUARD, tokio_tungstenite::connect_async(req))
        .await
        .unwrap()
    {
        Ok(_) => (101, String::new()),
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
            let body = String::from_utf8_lossy(r.body().as_deref().unwrap_or_default());
            (r.status().as_u16(), body.into_owned())
        }
        Err(e) => panic!("upgrade failed: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_sockets_are_capped_per_address() {
    let n = WebNode::start(&test_key(219), PinSet::new()).await.unwrap();
    let g = gateway(&n, |c| {
        c.limits.max_unauthenticated_sockets_per_address = 3;
        c.http.trusted_proxies = loopback_proxy();
    })
    .await;
    let url = ws_url(&g);
    let x = "203.0.113.7";
    let mut xs = Vec::new();
    for _ in 0..3 {
        xs.push(ws_from(&url, x).await);
    }
    let (status, body) = upgrade(&url, x).await;
    assert_eq!(status, 429, "{body}");
    assert!(body.contains("rate_limited"), "{body}");
    assert!(refused(&g, "unauthenticated_sockets") >= 1);
    // Another address is not affected.
    let mut y = ws_from(&url, "203.0.113.8").await;
    y.ok("ping", json!({})).await;
    // A socket that signs in no longer counts: one more may open, and
    // then the address is at its cap again.
    xs[0].register("alice").await;
    xs.push(ws_from(&url, x).await);
    assert_eq!(upgrade(&url, x).await.0, 429);
    // One not signed in closes: its place is free again.
    let open = g.state().sessions.len();
    xs.pop().unwrap().close().await;
    eventually("the closed socket is forgotten", || {
        g.state().sessions.len() == open - 1
    })
    .await;
    ws_from(&url, x).await.ok("ping", json!({})).await;
}
