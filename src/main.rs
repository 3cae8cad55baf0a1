//! The binary: everything is in the library; `cli::main` parses, runs, maps the exit code.

fn main() -> std::process::ExitCode {
    intune_reset::cli::main()
}
