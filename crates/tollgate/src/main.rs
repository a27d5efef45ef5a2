//! The `tollgate` binary: parses the command line and runs a subcommand.

fn main() -> std::process::ExitCode {
    tollgate::cli::main()
}
