//! Mail delivery with lettre: a file outbox (the default) or SMTP.
//! (Placeholder until the mail module lands.)

use std::path::Path;

/// `[mail]` (placeholder).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct MailConfig {}

impl MailConfig {
    /// Resolves relative paths.
    pub fn resolve_paths(&mut self, _base: &Path, _data_dir: &Path) {}
    /// Cross-field checks.
    pub fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}
