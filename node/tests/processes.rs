//! Real `confab-node` processes started from their config files, with an
//! in-process node as the third peer that writes the load: one process is
//! SIGKILLed mid-ingest and restarted on its data; all three converge to
//! one digest, checked in the stores of the stopped processes.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use confab_node::federation::driver::Federation;
use confab_node::federation::sync::Rooms;
use confab_node::local::now_ms;
use confab_node::rooms::NodeRooms;
use confab_node::store::Store;
use confab_wire::event::{Content, CreateRoom, MessageContent, ReasonContent, Visibility};
use confab_wire::{EventHeader, EventKind, NodeId, NodeKey, RoomId, UserId};

const BIN: &str = env!("CARGO_BIN_EXE_confab-node");

/// A node process, killed when dropped (a failing test leaves none).
struct Proc {
    child: Option<Child>,
    config: PathBuf,
    data: PathBuf,
    id: NodeId,
    addr: SocketAddr,
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Proc {
    fn prepare(dir: &Path, name: &str) -> Proc {
        let data = dir.join(name);
        let config = dir.join(format!("{name}.toml"));
        let addr = free_udp_addr();
        let mut p = Proc {
            child: None,
            config,
            data,
            id: NodeKey::from_secret(&[0; 32]).node_id(),
            addr,
        };
        // A first config without peers, to make the key and learn the id.
        p.write_config(name, &[]);
        let out = Command::new(BIN)
            .args(["--config", p.config.to_str().unwrap(), "id"])
            .output()
            .unwrap();
        assert!(out.status.success(), "confab-node id failed: {out:?}");
        p.id = String::from_utf8(out.stdout)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        p
    }

    fn write_config(&self, name: &str, peers: &[(NodeId, SocketAddr)]) {
        let peers: Vec<String> = peers
            .iter()
            .map(|(id, addr)| format!("{{ node = \"{id}\", addr = \"{addr}\" }}"))
            .collect();
        let text = format!(
            "[node]\nname = \"{name}\"\ndata_dir = \"{}\"\n\n\
             [federation]\nlisten = \"{}\"\npeers = [{}]\n\n\
             [client]\nlisten = \"127.0.0.1:0\"\n\n\
             [gateway]\nenabled = false\n\n[metrics]\nenabled = false\n\n\
             [log]\nlevel = \"warn\"\n",
            self.data.display(),
            self.addr,
            peers.join(", ")
        );
        std::fs::write(&self.config, text).unwrap();
    }

    /// Starts the process and waits until it says it runs.
    fn start(&mut self) {
        let mut child = Command::new(BIN)
            .args(["--config", self.config.to_str().unwrap()])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        loop {
            match lines.next() {
                Some(Ok(l)) if l.contains("federation:") => break,
                Some(Ok(_)) => {}
                other => panic!("confab-node exited before starting: {other:?}"),
            }
        }
        // Keep draining stdout so the process never blocks on it.
        std::thread::spawn(move || for _ in lines {});
        self.child = Some(child);
    }

    fn sigkill(&mut self) {
        let mut c = self.child.take().unwrap();
        c.kill().unwrap();
        c.wait().unwrap();
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

    fn digest(&self, room: &RoomId) -> ([u8; 32], u64) {
        let store = Store::open(&self.data.join("db")).unwrap();
        let r = store.open_room(room).unwrap().expect("the room is stored");
        (r.engine().digest(), r.engine().len())
    }
}

fn free_udp_addr() -> SocketAddr {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.local_addr().unwrap()
}

async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while !f() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkilled_node_process_restarts_and_converges() {
    let dir = tempfile::tempdir().unwrap();
    // The in-process peer that writes.
    let t_key = NodeKey::from_secret(&[61; 32]);
    let t_id = t_key.node_id();
    let mut a = Proc::prepare(dir.path(), "a");
    let mut b = Proc::prepare(dir.path(), "b");
    let rooms = Arc::new(Mutex::new(
        NodeRooms::open(Store::temporary().unwrap(), t_id).unwrap(),
    ));
    let pins = [a.id, b.id].into_iter().collect();
    let t = Federation::start(
        t_key.clone(),
        "t",
        "127.0.0.1:0".parse().unwrap(),
        pins,
        rooms.clone(),
    )
    .unwrap();
    let t_addr = t.local_addr().unwrap();
    a.write_config("a", &[(t_id, t_addr), (b.id, b.addr)]);
    b.write_config("b", &[(t_id, t_addr), (a.id, a.addr)]);
    a.start();
    b.start();
    t.connect(a.id, a.addr);
    t.connect(b.id, b.addr);

    // T's owner makes a room and invites a user of each process.
    let owner = UserId::new(t_id, "owner").unwrap();
    let create = t_key
        .sign_event(
            EventHeader::create(
                owner.clone(),
                CreateRoom::named("load", Visibility::Private, false),
                now_ms(),
            ),
            &Content::Empty,
        )
        .unwrap();
    let room = create.room();
    rooms.lock().unwrap().create_room(&create).unwrap();
    let post = |kind: EventKind, content: Content| {
        let ev = rooms
            .lock()
            .unwrap()
            .post(&t_key, &owner, &room, kind, &content, now_ms(), None)
            .and_then(|p| p.into_event())
            .unwrap();
        rooms.lock().unwrap().store().wait_durable().unwrap();
        t.publish(room, ev.signed(), None);
    };
    for p in [&a, &b] {
        post(
            EventKind::Invite {
                target: UserId::new(p.id, "guest").unwrap(),
            },
            Content::Reason(ReasonContent::default()),
        );
    }
    eventually("both processes hold the room", || {
        [a.id, b.id].iter().all(|p| {
            t.peer_view(p, &room)
                .is_some_and(|v| v.iter().any(|o| o.origin == t_id))
        })
    })
    .await;

    // Load, with A killed a third of the way in and restarted at two thirds.
    const MESSAGES: usize = 1500;
    for i in 0..MESSAGES {
        let content = Content::Message(MessageContent {
            body: format!("load message {i}"),
            ..Default::default()
        });
        post(EventKind::Message, content);
        if i == MESSAGES / 3 {
            a.sigkill();
        }
        if i == 2 * MESSAGES / 3 {
            a.start();
        }
        if i % 50 == 0 {
            tokio::task::yield_now().await;
        }
    }
    let mine = rooms.lock().unwrap().vector(&room);
    eventually("both processes report holding everything", || {
        [a.id, b.id].iter().all(|p| {
            t.peer_view(p, &room).is_some_and(|v| {
                v.iter()
                    .map(|o| (o.origin, o.seq, o.head))
                    .eq(mine.iter().map(|o| (o.origin, o.seq, o.head)))
            })
        })
    })
    .await;
    a.sigterm();
    b.sigterm();
    t.shutdown().await;
    let expected = {
        let r = rooms.lock().unwrap();
        let e = r.room(&room).unwrap().engine();
        (e.digest(), e.len())
    };
    // create + 2 invites + the messages
    assert_eq!(expected.1, 3 + MESSAGES as u64);
    assert_eq!(
        a.digest(&room),
        expected,
        "A (killed and restarted) converged"
    );
    assert_eq!(b.digest(&room), expected, "B converged");
}
