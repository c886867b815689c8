//! The `stripe-sync` binary: everything lives in the library; this only turns
//! the outcome into the process exit status.

fn main() -> std::process::ExitCode {
    stripe_sync::main_entry()
}
