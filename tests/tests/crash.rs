//! Durability under SIGKILL: a writer process acknowledges events only
//! after they are durable; killed at random moments many times, the store
//! must reopen cleanly with every acknowledged event present.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use confab_node::store::Store;
use confab_tests::create_room_event;
use confab_wire::EventId;
use confab_wire::event::Visibility;

/// xorshift, seeded: the kill points are reproducible.
fn next(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

#[test]
fn every_acknowledged_event_survives_sigkill() {
    let seed = 0x5eed_c0fe_u64;
    println!("kill-point seed {seed:#x}");
    let mut rng = seed;
    let dir = tempfile::tempdir().unwrap();
    let room = create_room_event(1, "alice", "crash", Visibility::Public, 1_700_000_000_000)
        .unwrap()
        .room();
    let mut acked: Vec<EventId> = Vec::new();
    for round in 0..15 {
        let kill_after = 1 + (next(&mut rng) % 400) as usize;
        let mut child = Command::new(env!("CARGO_BIN_EXE_crash_writer"))
            .arg(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut seen = 0;
        while seen < kill_after {
            match lines.next() {
                Some(Ok(line)) => {
                    acked.push(line.parse().unwrap());
                    seen += 1;
                }
                _ => panic!("round {round}: writer ended early"),
            }
        }
        child.kill().unwrap(); // SIGKILL
        // Lines printed before death were acknowledged too.
        for line in lines {
            match line {
                Ok(l) if !l.is_empty() => acked.push(l.parse().unwrap()),
                _ => break,
            }
        }
        child.wait().unwrap();

        let store = Store::open(dir.path()).unwrap();
        let mut r = store.open_room(&room).unwrap().unwrap();
        for id in &acked {
            assert!(
                store.event(id).unwrap().is_some(),
                "round {round}: acknowledged event {id} lost"
            );
            assert!(r.engine().contains(id), "round {round}: {id} not indexed");
        }
        assert!(r.engine().len() as usize > acked.len(), "round {round}");
        let check = store.check_log().unwrap();
        assert!(
            check.agrees(),
            "round {round}: index and log disagree: {check:?}"
        );
        assert_eq!(check.records, r.engine().len(), "round {round}");
        let digest = r.engine().digest();
        assert!(
            r.audit().is_clean(),
            "round {round}: state disagrees with a fold from scratch"
        );
        assert_eq!(r.engine().digest(), digest);
    }
    println!("{} acknowledged events survived 15 kills", acked.len());
}
