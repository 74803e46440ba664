//! Secrets in the data directory: written once, readable by their owner only.

use anyhow::Context;

/// Creates `path`, which must not exist, readable by its owner only (0600), with `contents`
/// flushed to disk: how the secrets in the data directory are written.
pub fn create(path: &std::path::Path, contents: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(contents)?;
    file.sync_all()?;
    Ok(())
}
