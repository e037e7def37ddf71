//! Test helper for the crash test: posts messages to a room in the store
//! at `argv[1]` from several threads through the node's post path (with
//! idempotency keys) and prints each event id on stdout only after the
//! store reports it durable as the node does before acknowledging a post
//! (in the log). The test SIGKILLs it at random.

use std::io::Write;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use confab_node::store::Store;
use confab_tests::{create_room_event, test_key, test_user, text};
use confab_wire::EventKind;
use confab_wire::event::Visibility;

const T0: u64 = 1_700_000_000_000;

fn main() -> anyhow::Result<()> {
    let dir = std::env::args().nth(1).context("usage: crash_writer DIR")?;
    let store = Store::open(std::path::Path::new(&dir))?;
    let create = create_room_event(1, "alice", "crash", Visibility::Public, T0)?;
    let room = match store.open_room(&create.room())? {
        Some(r) => r,
        None => {
            let r = store.create_room(&create)?;
            store.wait_durable()?;
            r
        }
    };
    let room = Arc::new(Mutex::new(room));
    let out = Arc::new(Mutex::new(std::io::stdout()));
    let key = test_key(1);
    let alice = test_user(1, "alice")?;
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (room, out, store, key, alice) = (
                room.clone(),
                out.clone(),
                store.clone(),
                key.clone(),
                alice.clone(),
            );
            std::thread::spawn(move || -> anyhow::Result<()> {
                for i in 0u64.. {
                    let id = {
                        let mut r = room.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
                        let once = format!("{t}-{i}-{}", std::process::id());
                        confab_node::rooms::post(
                            &store,
                            &mut r,
                            &key,
                            &alice,
                            EventKind::Message,
                            &text(&format!("thread {t} message {i}")),
                            T0 + i,
                            Some(&once),
                        )?
                        .into_event()?
                        .id()
                    };
                    store.wait_logged()?;
                    let mut o = out.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
                    writeln!(o, "{id}")?;
                    o.flush()?;
                }
                Ok(())
            })
        })
        .collect();
    for t in threads {
        t.join()
            .map_err(|_| anyhow::anyhow!("writer thread panicked"))??;
    }
    Ok(())
}
