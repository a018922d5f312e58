//! `--ca-file`: extra root certificates (PEM), read and checked when the settings are resolved,
//! so that a bad file stops the run before any request. Uses nothing else of the crate.

use std::path::{Path, PathBuf};

/// The PEM root certificates of `--ca-file`, read and checked when the settings are resolved.
pub struct CaFile {
    pub path: PathBuf,
    certificates: Vec<reqwest::Certificate>,
}

impl std::fmt::Debug for CaFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaFile")
            .field("path", &self.path)
            .field("certificates", &self.certificates.len())
            .finish()
    }
}

impl CaFile {
    /// Reads one or several PEM certificates; the error (without the path, which the caller
    /// names) says what is wrong with the file.
    pub fn read(path: &Path) -> Result<CaFile, String> {
        let pem = std::fs::read(path).map_err(|e| format!("cannot be read: {e}"))?;
        let certificates = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| format!("is not a PEM file: {e}"))?;
        if certificates.is_empty() {
            return Err(
                "holds no PEM certificate (a \"-----BEGIN CERTIFICATE-----\" block)".into(),
            );
        }
        Ok(CaFile {
            path: path.to_owned(),
            certificates,
        })
    }

    /// The certificates, to add to the HTTP client's roots.
    pub fn certificates(&self) -> &[reqwest::Certificate] {
        &self.certificates
    }
}
