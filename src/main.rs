fn main() -> std::process::ExitCode {
    intune_reset::cli::main()
}
