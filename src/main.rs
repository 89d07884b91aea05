fn main() -> std::process::ExitCode {
    oidc_bridge::cli::main()
}
