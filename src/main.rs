//! The `docqa` command line: parses flags into a resolved configuration, calls the library and
//! prints results (stdout) and diagnostics (stderr). No pipeline logic lives here.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::run()
}
