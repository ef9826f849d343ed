//! dev's security: where the first master keeps the cluster CA and join tokens, bootstrap
//! the cluster's management token, and make the CLI use both — in the user's config file
//! when they have none (removed again when dev stops, if still dev's), else in a config
//! under dev's data dir that `export DROVER_CONFIG=…` points the CLI at.

use std::path::{Path, PathBuf};
use std::time::Duration;

use master::peer::{Method, PeerClient};
use state::tls::JoinKind;

use crate::profile::{self, Profile};

/// The first master's CA and join token files (it makes them on its first start).
pub struct Secure {
    dir: PathBuf,
}

impl Secure {
    /// The files of master `first_id` under dev's `data_dir`.
    pub fn of(data_dir: &Path, first_id: u8) -> Self {
        Secure {
            dir: data_dir.join(format!("master-{first_id}")),
        }
    }

    /// The join token file of `kind`.
    pub fn join_token(&self, kind: JoinKind) -> PathBuf {
        let file = master::tls::JOIN_TOKEN_FILES
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or("agent-join-token", |(_, f)| f);
        self.dir.join(file)
    }

    /// The cluster CA certificate.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join(state::tls::ca::CA_CERT_FILE)
    }

    /// A client that trusts only the cluster CA.
    pub fn client(&self) -> Result<PeerClient, String> {
        crate::secure::cli_connector(Some(&self.ca_file())).map(PeerClient::with_connector)
    }
}

/// Where dev wrote the CLI's config.
pub enum CliConfig {
    /// The user's own config file, which did not exist: `drover node list` just works.
    User(PathBuf),
    /// The user has a config of their own (left alone): this one is dev's.
    Own(PathBuf),
}

impl CliConfig {
    /// The line to print: where the config is and, for dev's own, how to use it.
    pub fn hint(&self) -> String {
        match self {
            CliConfig::User(p) => format!(
                "CLI:  {} holds this cluster's token (removed when dev stops)",
                p.display()
            ),
            CliConfig::Own(p) => format!(
                "CLI:  export DROVER_CONFIG={}   (your own config was left as it is)",
                p.display()
            ),
        }
    }

    /// Removes the user's config dev wrote, unless someone changed it since (e.g. a
    /// `drover login` while dev ran).
    pub fn remove(&self, written: &Profile) {
        if let CliConfig::User(p) = self
            && profile::load_from(p).is_ok_and(|now| now == *written)
        {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Bootstraps ACLs on `master`; the management token's secret.
pub async fn bootstrap(client: &PeerClient, master: &str) -> Result<String, String> {
    let (status, body) = client
        .call(
            Method::POST,
            master,
            "/v1/acl/bootstrap",
            None,
            Duration::from_secs(30),
        )
        .await
        .map_err(|e| format!("cannot bootstrap ACLs at {master}: {e}"))?;
    if !status.is_success() {
        return Err(format!(
            "ACL bootstrap at {master} answered {status}: {}",
            crate::cluster::message(&body)
        ));
    }
    let created: client::CreatedToken =
        client::decode("POST /v1/acl/bootstrap", body).map_err(|e| e.to_string())?;
    Ok(created.secret_id)
}

/// Writes the CLI config for `master`, `token` and the CA in `ca_file` (see the module's
/// rule).
pub fn write_cli_config(
    data_dir: &Path,
    master: &str,
    token: &str,
    ca_file: &Path,
) -> Result<(CliConfig, Profile), String> {
    // Absolute: the CLI may run from any directory.
    let ca_file = std::fs::canonicalize(ca_file)
        .map_err(|e| format!("the cluster CA {}: {e}", ca_file.display()))?;
    let written = Profile {
        master: Some(format!("https://{master}")),
        token: Some(token.to_string()),
        ca_file: Some(ca_file.display().to_string()),
    };
    let user = profile::path().filter(|p| !p.exists());
    let config = match user {
        Some(p) => CliConfig::User(p),
        None => CliConfig::Own(data_dir.join("cli-config.toml")),
    };
    let path = match &config {
        CliConfig::User(p) | CliConfig::Own(p) => p,
    };
    profile::save_to(path, &written)?;
    Ok((config, written))
}
