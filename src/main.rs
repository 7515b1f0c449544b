//! The `sockeye` binary: parse arguments, run the command, exit with its status.

fn main() -> std::process::ExitCode {
    sockeye::cli::main_with_args(std::env::args_os().collect())
}
