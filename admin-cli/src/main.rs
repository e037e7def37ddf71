//! `confabctl`: the Confab operator's command line.
//!
//! The admin service it talks to arrives with the admin issue; until then
//! this binary only documents itself.

use clap::Parser;

/// Operate a Confab node: roles, mutes, bans, reports, users, peers,
/// backups, status.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {}

fn main() -> std::process::ExitCode {
    let _cli = Cli::parse();
    eprintln!("confabctl: no admin commands are available in this version");
    std::process::ExitCode::FAILURE
}
