//! `confabctl`: the Confab operator's command line.
//!
//! Parses a command ([`cli`]), and either runs it here (`backup verify`,
//! `completions`, `id`: no node needed) or connects to the
//! node's admin service ([`connect`]), sends the command built by
//! [`request`] and prints the answer ([`output`]). Every failure ends the
//! process with the exit code of its [`error::Kind`], which the top-level
//! `--help` lists.
//!
//! | module       | what                                                |
//! |--------------|-----------------------------------------------------|
//! | [`cli`]      | the grammar (clap derive)                           |
//! | [`args`]     | value parsers: USER, ROOM, EVENT, permissions, …    |
//! | [`duration`] | `90s`, `2h`, `1h30m`                                |
//! | [`request`]  | parsed command → `AdminCommand`                     |
//! | [`connect`]  | Unix socket and QUIC transports, one request        |
//! | [`output`]   | tables, records, JSON                               |
//! | [`backup`]   | backup writer and offline verify                    |
//! | [`password`] | generated and piped-in passwords                    |
//! | [`error`]    | failures and exit codes                             |

mod args;
mod backup;
mod cli;
mod connect;
mod duration;
mod error;
mod output;
mod password;
mod request;

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use confab_wire::NodeId;
use confab_wire::admin::{AdminOutput, AdminRequest, Cell};
use confab_wire::fed::TraceId;

use crate::backup::{AtomicFile, BackupSink};
use crate::cli::{BackupCommand, Cli, Command, UserCommand};
use crate::connect::{Session, Target};
use crate::error::{Failure, Kind, Result};

/// The id of the one request a run sends.
const REQUEST_ID: u64 = 1;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout with 0; usage errors exit 2.
            if e.use_stderr() && std::env::args_os().any(|a| a == "--json") {
                // The first paragraph, on one line: a missing-arguments
                // error names them on the lines after its first.
                let rendered = e.render().to_string();
                let first = rendered
                    .split("\n\n")
                    .next()
                    .unwrap_or_default()
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .collect::<Vec<_>>()
                    .join(" ");
                let message = first.strip_prefix("error: ").unwrap_or(&first);
                Printer { json: true }.line(&output::json_error(&Failure::usage(message)));
            }
            e.exit();
        }
    };
    let printer = Printer { json: cli.json };
    match run(&cli, &printer) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            printer.fail(&f);
            ExitCode::from(f.kind.exit_code())
        }
    }
}

/// Prints answers in the chosen form.
#[derive(Debug)]
struct Printer {
    json: bool,
}

impl Printer {
    fn output(&self, out: &AdminOutput) {
        self.output_with(out, &[]);
    }

    /// `out`, and fields of its own (a generated password) after it.
    fn output_with(&self, out: &AdminOutput, extra: &[(String, Cell)]) {
        if self.json {
            self.line(&output::json_with(output::json(out), extra));
        } else {
            self.line(&output::human(out));
            if !extra.is_empty() {
                self.line(&output::human(&AdminOutput::Record(extra.to_vec())));
            }
        }
    }

    /// Human notes that have no place in JSON.
    fn note(&self, text: &str) {
        if !self.json {
            self.line(text);
        }
    }

    fn fail(&self, f: &Failure) {
        if self.json {
            self.line(&output::json_error(f));
        }
        eprintln!("confabctl: {}", f.message);
    }

    fn line(&self, text: &str) {
        // Unit tests run commands for their effects; libtest does not
        // capture direct writes to stdout.
        if cfg!(test) {
            return;
        }
        // A closed pipe (`confabctl user list | head`) is not an error.
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{text}");
    }
}

fn run(cli: &Cli, p: &Printer) -> Result<()> {
    let offline = matches!(
        cli.command,
        Command::Completions { .. } | Command::Id | Command::Backup(BackupCommand::Verify { .. })
    );
    if offline && cli.act_as.is_some() {
        return Err(Failure::usage(
            "--as applies only to commands that post room events, not to commands that run \
             without a node",
        ));
    }
    match &cli.command {
        Command::Completions { shell } => {
            // Into a buffer first: clap_complete panics if the write fails
            // (`confabctl completions bash | head`).
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut Cli::command(), "confabctl", &mut script);
            p.line(String::from_utf8_lossy(&script).trim_end());
            return Ok(());
        }
        Command::Id => return id(cli, p),
        Command::Backup(BackupCommand::Verify { file }) => {
            let summary = backup::verify(file)?;
            p.output(&AdminOutput::Record(summary.fields()));
            p.note(&format!(
                "{} is whole: every record and the checksum match.",
                file.display()
            ));
            return Ok(());
        }
        _ => {}
    }
    let target = target(cli)?;
    // Read or made before connecting: a bad pipe costs no round trip.
    let password = prepare_password(&cli.command)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::internal(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(remote(cli, &target, password, p))
}

/// Where to connect: `--node` (with `--node-id` and `--key`) or the socket.
fn target(cli: &Cli) -> Result<Target> {
    match (&cli.node_addr, cli.node_id, &cli.key_file) {
        (Some(addr), Some(node), Some(key)) => Ok(Target::Quic {
            addr: addr.clone(),
            node,
            key: key.clone(),
        }),
        (Some(_), None, _) => Err(Failure::usage(
            "--node needs --node-id NODE_ID too: the node's id, which `confab-node id` prints on \
             its machine",
        )),
        (Some(_), Some(_), None) => Err(Failure::usage(
            "--node needs --key FILE too: your admin key (`confabctl id --key FILE` makes one)",
        )),
        (None, Some(_), _) => Err(Failure::usage(
            "--node-id goes with --node HOST:PORT (without --node, confabctl uses the socket)",
        )),
        (None, None, Some(_)) => Err(Failure::usage(
            "--key goes with --node HOST:PORT, or with `confabctl id` (without --node, confabctl \
             uses the socket)",
        )),
        (None, None, None) => Ok(Target::Socket(cli.socket.clone())),
    }
}

/// A password for the commands that set one, and whether it was made here.
struct Password {
    text: String,
    generated: bool,
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Password")
            .field("generated", &self.generated)
            .finish_non_exhaustive()
    }
}

fn prepare_password(command: &Command) -> Result<Option<Password>> {
    let from_stdin = match command {
        Command::User(
            UserCommand::Create { password_stdin, .. }
            | UserCommand::ResetPassword { password_stdin, .. },
        ) => *password_stdin,
        _ => return Ok(None),
    };
    if !from_stdin {
        return Ok(Some(Password {
            text: password::generate()?,
            generated: true,
        }));
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        // Typed at a terminal, the password would be echoed.
        return Err(Failure::usage(
            "--password-stdin reads the password from a pipe, not a terminal: like `printf \
             '%s\\n' \"$PW\" | confabctl user create bob --password-stdin`; leave it out to get \
             a generated password",
        ));
    }
    Ok(Some(Password {
        text: password::read_line(stdin.lock())?,
        generated: false,
    }))
}

async fn remote(cli: &Cli, target: &Target, password: Option<Password>, p: &Printer) -> Result<()> {
    // Files are claimed before connecting, so a refused --out costs
    // nothing; dropped unfinished, they leave nothing behind.
    let mut sink = match &cli.command {
        Command::Backup(BackupCommand::Create { out, force }) => {
            Some(BackupSink::create(out, *force)?)
        }
        _ => None,
    };
    let export = match &cli.command {
        Command::User(UserCommand::Export {
            out: Some(out),
            force,
            ..
        }) => Some(AtomicFile::create(out, *force)?),
        _ => None,
    };

    let mut session = Session::open(target).await?;
    // USER arguments need the node's id, so the request is built only now.
    let request = match build_request(cli, &session.welcome.node, password.as_ref()) {
        Ok(r) => r,
        Err(f) => {
            session.close().await;
            return Err(f);
        }
    };
    let mut outputs = Vec::new();
    let result = session
        .request(request, |out, _more| match out {
            AdminOutput::BackupChunk(bytes) => match sink.as_mut() {
                Some(s) => s.chunk(&bytes),
                None => Err(Failure::internal(
                    "the node sent backup data for another command",
                )),
            },
            other => {
                outputs.push(other);
                Ok(())
            }
        })
        .await;
    session.close().await;
    result?;
    let outputs = merge(outputs);

    if let Some(sink) = sink {
        // The CLI's own reading of what it wrote says all the node's
        // summary would.
        let summary = sink.finish()?;
        drop(outputs);
        let mut fields = vec![("file".to_string(), Cell::text(backup_path(cli).display()))];
        fields.extend(summary.fields());
        p.output(&AdminOutput::Record(fields));
        p.note(&format!(
            "Wrote {} (verified). Keep it safe: it holds the node's secret key.",
            output::size(summary.bytes)
        ));
        return Ok(());
    }
    if let Command::User(UserCommand::Export { name, out, .. }) = &cli.command {
        let doc = outputs.iter().find_map(|o| match o {
            AdminOutput::Json(doc) => Some(doc),
            _ => None,
        });
        let Some(doc) = doc else {
            return Err(Failure::internal(
                "the node's answer to an export held no JSON",
            ));
        };
        match (export, out) {
            (Some(mut file), Some(path)) => {
                file.write(doc.as_bytes())?;
                if !doc.ends_with('\n') {
                    file.write(b"\n")?;
                }
                let bytes = file.len();
                file.commit()?;
                p.output(&AdminOutput::Done(format!(
                    "Wrote the data of {} to {} ({}).",
                    name.name,
                    path.display(),
                    output::size(bytes)
                )));
            }
            _ => p.line(doc.trim_end()),
        }
        return Ok(());
    }
    let extra = match &password {
        Some(pw) if pw.generated => vec![("password".to_string(), Cell::text(&pw.text))],
        _ => vec![],
    };
    let last = outputs.len().saturating_sub(1);
    for (i, out) in outputs.iter().enumerate() {
        p.output_with(out, if i == last { &extra } else { &[] });
    }
    if !extra.is_empty() {
        p.note(
            "This password is shown only now: hand it over safely (in person or through a \
             password manager, not by chat or email).",
        );
    }
    Ok(())
}

/// The request for `cli`'s command, sent to `node`.
fn build_request(cli: &Cli, node: &NodeId, password: Option<&Password>) -> Result<AdminRequest> {
    let cx = request::Context {
        node: *node,
        now_ms: now_ms()?,
        password: password.map(|pw| pw.text.as_str()),
    };
    let command = request::build(&cli.command, &cx)?
        .ok_or_else(|| Failure::internal("this command runs without a node"))?;
    let act_as = request::act_as(&command, cli.act_as.as_ref(), node)?;
    Ok(AdminRequest {
        id: REQUEST_ID,
        trace: TraceId(random_u128()?),
        act_as,
        command,
    })
}

fn backup_path(cli: &Cli) -> &Path {
    match &cli.command {
        Command::Backup(BackupCommand::Create { out, .. }) => out,
        _ => Path::new(""),
    }
}

/// `id --key FILE`: the admin key's id, making the key if it is missing.
fn id(cli: &Cli, p: &Printer) -> Result<()> {
    let Some(path) = &cli.key_file else {
        return Err(Failure::usage(
            "`confabctl id` needs --key FILE: the file that holds (or will hold) your admin key, \
             like ~/.config/confab/admin.key",
        ));
    };
    let existed = std::fs::symlink_metadata(path).is_ok();
    let key = connect::load_or_create_key(path)?;
    let id = key.node_id();
    if p.json {
        p.output(&AdminOutput::Record(vec![
            ("id".into(), Cell::text(id)),
            ("key".into(), Cell::text(path.display())),
            ("created".into(), Cell::Bool(!existed)),
        ]));
    } else {
        p.line(&id.to_string());
        if !existed {
            eprintln!(
                "confabctl: made a new admin key in {} (mode 0600)",
                path.display()
            );
        }
        eprintln!(
            "confabctl: to allow this key, add it to the node's node.toml: [admin] keys = \
             [\"{id}\"]"
        );
    }
    Ok(())
}

fn now_ms() -> Result<u64> {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| Failure::internal("the system clock is set before 1970"))?;
    u64::try_from(since.as_millis()).map_err(|_| Failure::internal("the system clock is far off"))
}

fn random_u128() -> Result<u128> {
    let mut b = [0u8; 16];
    getrandom::getrandom(&mut b)
        .map_err(|e| Failure::new(Kind::Internal, format!("no randomness: {e}")))?;
    Ok(u128::from_le_bytes(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("confabctl").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn the_socket_is_the_default_target() {
        let t = target(&parse(&["status", "--socket", "/srv/data/admin.sock"])).unwrap();
        assert_eq!(t, Target::Socket("/srv/data/admin.sock".into()));
    }

    #[test]
    fn quic_needs_all_three_flags() {
        let id = confab_wire::NodeKey::from_secret(&[1; 32])
            .node_id()
            .to_string();
        let t = target(&parse(&[
            "status",
            "--node",
            "n.example:4433",
            "--node-id",
            &id,
            "--key",
            "k",
        ]))
        .unwrap();
        assert!(matches!(t, Target::Quic { ref addr, .. } if addr == "n.example:4433"));
        for (args, needs) in [
            (
                vec!["status", "--node", "n.example:4433", "--key", "k"],
                "--node-id",
            ),
            (
                vec!["status", "--node", "n.example:4433", "--node-id", &id],
                "--key FILE",
            ),
            (vec!["status", "--node-id", &id], "goes with --node"),
            (vec!["status", "--key", "k"], "goes with --node"),
        ] {
            let e = target(&parse(&args)).unwrap_err();
            assert_eq!(e.kind.exit_code(), 2);
            assert!(e.message.contains(needs), "{args:?}: {e}");
        }
    }

    #[test]
    fn id_makes_and_then_reads_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys").join("admin.key");
        let p = Printer { json: true };
        let cli = parse(&["id", "--key", path.to_str().unwrap()]);
        id(&cli, &p).unwrap();
        let first = connect::load_or_create_key(&path).unwrap().node_id();
        id(&cli, &p).unwrap();
        assert_eq!(connect::load_or_create_key(&path).unwrap().node_id(), first);
        assert_eq!(id(&parse(&["id"]), &p).unwrap_err().kind.exit_code(), 2);
    }

    #[test]
    fn offline_commands_refuse_as() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("missing.confab");
        let cli = parse(&["backup", "verify", file.to_str().unwrap()]);
        assert_eq!(
            run(&cli, &Printer { json: true }).unwrap_err().kind,
            Kind::NotFound
        );
        let cli = parse(&["completions", "bash", "--as", "alice"]);
        assert_eq!(
            run(&cli, &Printer { json: true })
                .unwrap_err()
                .kind
                .exit_code(),
            2
        );
    }

    /// A node stand-in on a Unix socket: welcomes, then answers the one
    /// request with `replies` (their ids set to the request's); returns
    /// the request.
    #[cfg(unix)]
    fn fake_node(
        path: &Path,
        node: NodeId,
        replies: Vec<(
            bool,
            std::result::Result<AdminOutput, confab_wire::admin::AdminError>,
        )>,
    ) -> std::thread::JoinHandle<AdminRequest> {
        use confab_wire::admin::{
            ADMIN_PROTOCOL_VERSION, AdminMessage, AdminReply, AdminWelcome, decode_admin_frame,
        };
        use std::io::Read;
        let listener = std::os::unix::net::UnixListener::bind(path).unwrap();
        std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut d = confab_wire::FrameDecoder::default();
            let mut buf = vec![0; 64 * 1024];
            loop {
                let n = s.read(&mut buf).unwrap();
                assert!(n > 0, "the CLI hung up before its request");
                d.push(&buf[..n]);
                while let Some(f) = d.next_frame().unwrap() {
                    match decode_admin_frame(&f).unwrap() {
                        AdminMessage::Hello(_) => {
                            let w = AdminMessage::Welcome(AdminWelcome {
                                version: ADMIN_PROTOCOL_VERSION,
                                node,
                                name: "acme".into(),
                            });
                            s.write_all(&w.to_frame_bytes().unwrap()).unwrap();
                        }
                        AdminMessage::Request(r) => {
                            for (more, result) in replies {
                                let m = AdminMessage::Reply(AdminReply {
                                    id: r.id,
                                    more,
                                    result,
                                });
                                s.write_all(&m.to_frame_bytes().unwrap()).unwrap();
                            }
                            return r;
                        }
                        other => panic!("unexpected {other:?}"),
                    }
                }
            }
        })
    }

    #[cfg(unix)]
    #[test]
    fn user_create_sends_a_generated_password_for_a_local_user() {
        use confab_wire::admin::AdminCommand;
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("admin.sock");
        let node = confab_wire::NodeKey::from_secret(&[5; 32]).node_id();
        let done = AdminOutput::Done("Made @bob.".into());
        let server = fake_node(&sock, node, vec![(false, Ok(done))]);
        let cli = parse(&["user", "create", "bob", "--socket", sock.to_str().unwrap()]);
        run(&cli, &Printer { json: false }).unwrap();
        let req = server.join().unwrap();
        assert_eq!(req.act_as, None);
        match req.command {
            AdminCommand::UserCreate {
                name,
                password,
                display_name,
            } => {
                assert_eq!(name, "bob");
                assert_eq!(password.len(), password::GENERATED_LEN);
                assert_eq!(display_name, None);
            }
            other => panic!("{other:?}"),
        }
    }

    #[cfg(unix)]
    #[test]
    fn node_errors_keep_their_code() {
        use confab_wire::admin::{AdminError, AdminErrorCode};
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("admin.sock");
        let node = confab_wire::NodeKey::from_secret(&[5; 32]).node_id();
        let err = AdminError::new(AdminErrorCode::NotFound, "no room !abc");
        let server = fake_node(&sock, node, vec![(false, Err(err))]);
        let room = confab_wire::RoomId([3; 32]).to_string();
        let cli = parse(&[
            "kick",
            "bob",
            "--room",
            &room,
            "--as",
            "alice",
            "--socket",
            sock.to_str().unwrap(),
        ]);
        let f = run(&cli, &Printer { json: true }).unwrap_err();
        assert_eq!(f.kind.exit_code(), 3);
        assert_eq!(f.message, "no room !abc");
        assert_eq!(server.join().unwrap().act_as, Some("alice".into()));
    }

    #[cfg(unix)]
    #[test]
    fn backup_create_streams_chunks_into_a_verified_file() {
        use confab_wire::backup::{BackupHeader, BackupWriter};
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("admin.sock");
        let node = confab_wire::NodeKey::from_secret(&[5; 32]).node_id();
        let header = BackupHeader {
            node,
            name: "acme".into(),
            created: 1,
            software: "t".into(),
        };
        let (mut w, mut bytes) = BackupWriter::new(&header).unwrap();
        w.tree(b"meta", &mut bytes).unwrap();
        for i in 0..2000u32 {
            w.entry(&i.to_be_bytes(), &[7; 600], &mut bytes).unwrap();
        }
        w.finish(&mut bytes);
        let mut replies: Vec<_> = bytes
            .chunks(256 * 1024)
            .map(|c| (true, Ok(AdminOutput::BackupChunk(c.to_vec()))))
            .collect();
        replies.push((false, Ok(AdminOutput::Done("Backup taken.".into()))));
        let server = fake_node(&sock, node, replies);
        let out = dir.path().join("node.confab");
        let cli = parse(&[
            "backup",
            "create",
            "--out",
            out.to_str().unwrap(),
            "--socket",
            sock.to_str().unwrap(),
        ]);
        run(&cli, &Printer { json: false }).unwrap();
        server.join().unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), bytes);
        assert_eq!(backup::verify(&out).unwrap().entries, 2000);

        // A second run refuses the existing file before it connects.
        let f = run(&cli, &Printer { json: false }).unwrap_err();
        assert_eq!(f.kind.exit_code(), 5);
    }
}

/// Joins an answer the node sent in several replies: tables of the same
/// columns into one, JSON pieces into one document.
fn merge(outputs: Vec<AdminOutput>) -> Vec<AdminOutput> {
    let mut out: Vec<AdminOutput> = Vec::new();
    for o in outputs {
        match (out.last_mut(), o) {
            (
                Some(AdminOutput::Table { columns, rows }),
                AdminOutput::Table {
                    columns: more_columns,
                    rows: more,
                },
            ) if *columns == more_columns => rows.extend(more),
            (Some(AdminOutput::Json(doc)), AdminOutput::Json(more)) => doc.push_str(&more),
            (_, o) => out.push(o),
        }
    }
    out
}

#[cfg(test)]
mod merge_tests {
    use super::*;

    #[test]
    fn pieces_of_one_answer_are_joined() {
        let t = |n: i64| AdminOutput::Table {
            columns: vec!["n".into()],
            rows: vec![vec![Cell::Int(n)]],
        };
        let merged = merge(vec![
            t(1),
            t(2),
            AdminOutput::Json("{\"a\"".into()),
            AdminOutput::Json(":1}".into()),
        ]);
        assert_eq!(
            merged,
            vec![
                AdminOutput::Table {
                    columns: vec!["n".into()],
                    rows: vec![vec![Cell::Int(1)], vec![Cell::Int(2)]],
                },
                AdminOutput::Json("{\"a\":1}".into()),
            ]
        );
    }
}
