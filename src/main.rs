//! The `coalmine` binary: parses the command line and runs it.
#![forbid(unsafe_code)]

use clap::Parser;

fn main() -> std::process::ExitCode {
    coalmine::cli::run(coalmine::cli::Args::parse())
}
