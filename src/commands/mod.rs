//! One file per subcommand: each a short function wiring the pieces together.

pub mod completions;
pub mod inspect;
pub mod replay;
pub mod sign;
pub mod verify;

use std::io::Read;
use std::path::Path;

use anyhow::Context;

/// Read a whole payload from a file, or stdin for `-`, byte for byte.
pub fn read_payload(path: &Path) -> anyhow::Result<Vec<u8>> {
    let mut buf = Vec::new();
    if path.as_os_str() == "-" {
        std::io::stdin()
            .lock()
            .read_to_end(&mut buf)
            .context("cannot read the payload from stdin")?;
    } else {
        buf = std::fs::read(path)
            .with_context(|| format!("cannot read payload file {}", path.display()))?;
    }
    Ok(buf)
}

/// Seconds since the epoch, by the system clock.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
