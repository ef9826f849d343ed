//! A certificate chain (leaf first, then the CA) and its private key, as PEM, and the files
//! they are kept in.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::TlsError;
use super::ca::Fingerprint;

/// A certificate chain and its key: what a master or an agent presents.
#[derive(Clone)]
pub struct Identity {
    chain_pem: String,
    key_pem: String,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the key.
        f.write_str("Identity")
    }
}

impl Identity {
    /// An identity from its chain and key in PEM.
    pub fn new(chain_pem: String, key_pem: String) -> Self {
        Identity { chain_pem, key_pem }
    }

    /// The chain in PEM (leaf first).
    pub fn chain_pem(&self) -> &str {
        &self.chain_pem
    }

    /// The key in PEM.
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// The chain as DER certificates, leaf first.
    pub fn chain(&self) -> Result<Vec<CertificateDer<'static>>, TlsError> {
        let chain = CertificateDer::pem_slice_iter(self.chain_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| pem_error("certificate chain", e))?;
        if chain.is_empty() {
            return Err(pem_error("certificate chain", "no certificate in it"));
        }
        Ok(chain)
    }

    /// The private key as DER.
    pub fn key(&self) -> Result<PrivateKeyDer<'static>, TlsError> {
        PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes()).map_err(|e| pem_error("key", e))
    }

    /// The leaf certificate's fingerprint (what a revocation names).
    pub fn fingerprint(&self) -> Result<Fingerprint, TlsError> {
        Ok(Fingerprint::of(&self.chain()?[0]))
    }

    /// Reads `<name>.pem` and `<name>-key.pem` from `dir`; `None` when neither exists.
    pub fn load(dir: &Path, name: &str) -> Result<Option<Self>, TlsError> {
        let (chain_path, key_path) = Self::paths(dir, name);
        if !chain_path.exists() && !key_path.exists() {
            return Ok(None);
        }
        let identity = Identity::new(read_file(&chain_path)?, read_file(&key_path)?);
        identity.chain().map_err(|e| at(&chain_path, e))?;
        identity.key().map_err(|e| at(&key_path, e))?;
        Ok(Some(identity))
    }

    /// Writes `<name>.pem` and `<name>-key.pem` into `dir` (mode 0600).
    pub fn save(&self, dir: &Path, name: &str) -> Result<(), TlsError> {
        let (chain_path, key_path) = Self::paths(dir, name);
        write_private(&chain_path, self.chain_pem.as_bytes())?;
        write_private(&key_path, self.key_pem.as_bytes())
    }

    fn paths(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        (
            dir.join(format!("{name}.pem")),
            dir.join(format!("{name}-key.pem")),
        )
    }
}

fn pem_error(what: &str, e: impl fmt::Display) -> TlsError {
    TlsError::Pem {
        path: PathBuf::from(what),
        what: e.to_string(),
    }
}

/// The same error, naming the file it came from.
fn at(path: &Path, e: TlsError) -> TlsError {
    match e {
        TlsError::Pem { what, .. } => TlsError::Pem {
            path: path.to_path_buf(),
            what,
        },
        other => other,
    }
}

/// Reads a whole file as text, naming it on failure.
pub fn read_file(path: &Path) -> Result<String, TlsError> {
    std::fs::read_to_string(path).map_err(|source| TlsError::File {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes `bytes` to `path` readable by its owner only (mode 0600), through a temporary
/// file renamed into place so a crash never leaves half a key.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), TlsError> {
    use std::os::unix::fs::OpenOptionsExt;
    let file_error = |source| TlsError::File {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(file_error)?;
    }
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(file_error)?;
    file.write_all(bytes).map_err(file_error)?;
    file.sync_all().map_err(file_error)?;
    std::fs::rename(&tmp, path).map_err(file_error)
}
