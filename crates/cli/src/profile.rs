//! The CLI's config file: which master to ask and with which token (and the CA to trust,
//! which the TLS side reads). TOML at `$DROVER_CONFIG`, else
//! `$XDG_CONFIG_HOME/drover/config.toml`, else `~/.config/drover/config.toml`; mode 0600,
//! since it holds a secret. Flags and environment variables win over it.

use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The largest config file read: a few lines are expected.
const MAX_BYTES: u64 = 64 * 1024;

/// What the config file says; every key is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// `http://HOST:PORT` or `https://HOST:PORT` (or just `HOST:PORT`).
    pub master: Option<String>,
    /// An ACL token's secret.
    pub token: Option<String>,
    /// The cluster CA the client trusts (kept as given; read by the TLS side).
    pub ca_file: Option<String>,
}

impl Profile {
    /// The file as TOML (values quoted as JSON strings, which TOML's basic strings read).
    fn to_toml(&self) -> String {
        let mut out = String::from(
            "# drover CLI config (written by drover); holds a secret: keep it 0600.\n",
        );
        for (key, value) in [
            ("master", &self.master),
            ("token", &self.token),
            ("ca_file", &self.ca_file),
        ] {
            if let Some(v) = value {
                let quoted = serde_json::to_string(v).unwrap_or_else(|_| "\"\"".into());
                out.push_str(&format!("{key} = {quoted}\n"));
            }
        }
        out
    }
}

/// Where the config file is, by the rule above; `None` when no home is known.
pub fn path() -> Option<PathBuf> {
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(p) = env("DROVER_CONFIG") {
        return Some(PathBuf::from(p));
    }
    if let Some(x) = env("XDG_CONFIG_HOME") {
        return Some(PathBuf::from(x).join("drover").join("config.toml"));
    }
    env("HOME").map(|h| {
        PathBuf::from(h)
            .join(".config")
            .join("drover")
            .join("config.toml")
    })
}

/// The config file, or an empty profile when there is none; a file that cannot be read or
/// parsed is an error naming it.
pub fn load() -> Result<Profile, String> {
    match path() {
        Some(p) => load_from(&p),
        None => Ok(Profile::default()),
    }
}

/// The config file at `path` (empty when it does not exist).
pub fn load_from(path: &Path) -> Result<Profile, String> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Profile::default()),
        Err(e) => {
            return Err(format!(
                "cannot read the config file {}: {e}",
                path.display()
            ));
        }
    };
    if !meta.is_file() || meta.len() > MAX_BYTES {
        return Err(format!(
            "the config file {} is not a file of at most {MAX_BYTES} bytes; fix or remove it (drover login writes it)",
            path.display()
        ));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the config file {}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| {
        format!(
            "the config file {} is not valid: {e}; keys are master, token and ca_file (drover login writes it)",
            path.display()
        )
    })
}

/// Writes `profile` to `path` with mode 0600 (creating its directory), replacing the file
/// whole so no reader sees half of it.
pub fn save_to(path: &Path, profile: &Profile) -> Result<(), String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let tmp = path.with_extension("toml.tmp");
    let written = write_private(&tmp, profile.to_toml().as_bytes())
        .and_then(|()| std::fs::rename(&tmp, path));
    written.map_err(|e| format!("cannot write the config file {}: {e}", path.display()))
}

/// Writes `bytes` to a file only its owner can read, and syncs it.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    // An existing file keeps its mode: set it again.
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_profile_reads_back_with_mode_0600() {
        let dir = std::env::temp_dir().join(format!("drover-profile-{}", std::process::id()));
        let path = dir.join("sub").join("config.toml");
        let profile = Profile {
            master: Some("http://127.0.0.1:8080".into()),
            token: Some("ab\"c\\d".into()),
            ca_file: None,
        };
        save_to(&path, &profile).expect("saved");
        assert_eq!(load_from(&path).expect("read"), profile);
        let mode = std::fs::metadata(&path)
            .expect("exists")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_missing_file_is_an_empty_profile_and_a_bad_one_is_named() {
        let dir = std::env::temp_dir().join(format!("drover-profile-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        assert_eq!(load_from(&dir.join("none.toml")), Ok(Profile::default()));
        let bad = dir.join("bad.toml");
        std::fs::write(&bad, "master = 3\nsecret = \"x\"\n").expect("written");
        let e = load_from(&bad).expect_err("refused");
        assert!(e.contains("bad.toml"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
