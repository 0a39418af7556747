//! The `flowtrail` binary: parse the command line, run the pipeline, map errors to exit codes.
#![forbid(unsafe_code)]

fn main() {
    let args = flowtrail::cli::Args::parse_from_env();
    let code = if args.tui { flowtrail::tui::run(&args) } else { flowtrail::pipeline::run(args) };
    std::process::exit(code);
}
