//! `coalmine-loadgen`: simulated Envoys against coalmine; see `coalmine::loadgen`.
//! Progress goes to stderr; the last line of stdout is one JSON object.

use clap::Parser;

fn main() -> anyhow::Result<()> {
    let args = coalmine::loadgen::Args::parse();
    raise_open_files_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if let Some(spec) = &args.fanout_sink {
        return runtime.block_on(coalmine::loadgen::run_sink(spec));
    }
    let report = runtime.block_on(coalmine::loadgen::run(args))?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

/// One socket per simulated proxy (and, for the raw fan-out, two per connection): as
/// many open files as allowed. Root may raise the hard limit too; a started server
/// inherits the limit.
fn raise_open_files_limit() {
    const WANTED: u64 = 1 << 20;
    if rlimit::setrlimit(rlimit::Resource::NOFILE, WANTED, WANTED).is_err() {
        if let Err(e) = rlimit::increase_nofile_limit(WANTED) {
            eprintln!("loadgen: could not raise the open-files limit: {e}");
        }
    }
    if let Ok((soft, _)) = rlimit::getrlimit(rlimit::Resource::NOFILE) {
        eprintln!("loadgen: open-files limit {soft}");
    }
}
