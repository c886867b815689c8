//! The `stripe-sync` binary: everything lives in the library; this only turns
//! the outcome into the process exit status.

fn main() -> std::process::ExitCode {
    stripe_sync::main_entry()
}

// mimalloc: replay allocates small strings on the parsing threads and frees
// them on the routing thread; glibc's malloc pays for every such cross-thread
// free (measured in issue 12: malloc/free were a fifth of a replay's CPU).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
