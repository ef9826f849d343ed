//! What `drover master`, `drover agent` and the cluster commands need for TLS: join token
//! flags, an agent's certificate (kept in its work dir, fetched with a join token on its
//! first start), and the CLI's trust in the cluster CA (`--ca-file`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use state::tls::ca::read_ca_cert;
use state::tls::join::JoinRequest;
use state::tls::joiner;
use state::tls::{Identity, JoinKind, JoinToken, config};
use state::transport::Connector;

/// The join token flags of `drover master` and `drover agent`.
#[derive(Args, Clone, Default)]
pub struct JoinTokenFlags {
    /// Join token (from the first master's data dir, or `drover token create`); needed on
    /// the first start of every agent and of every master but the first.
    #[arg(
        long,
        env = "DROVER_JOIN_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    join_token: Option<String>,
    /// A file holding the join token (e.g. <first master's data dir>/agent-join-token).
    #[arg(long, value_name = "FILE", conflicts_with = "join_token")]
    join_token_file: Option<PathBuf>,
}

impl JoinTokenFlags {
    /// The join token given, if any; a malformed one or an unreadable file is an error
    /// that says so.
    pub fn token(&self) -> Result<Option<JoinToken>, String> {
        let text = match (&self.join_token, &self.join_token_file) {
            (Some(text), _) => text.clone(),
            (None, Some(path)) => std::fs::read_to_string(path)
                .map_err(|e| format!("--join-token-file {}: {e}", path.display()))?,
            (None, None) => return Ok(None),
        };
        JoinToken::parse(&text)
            .map(Some)
            .map_err(|e| format!("--join-token: {e}"))
    }
}

/// The agent certificate's file name in its work dir (`agent.pem`, `agent-key.pem`).
const AGENT_IDENTITY: &str = "agent";
/// The CA certificate's file in an agent's work dir.
const AGENT_CA_FILE: &str = "ca.pem";

/// The connector of a secure agent: mutual TLS with the certificate in `work_dir`, or, on
/// its first start, with one the masters grant for `token`. Waits for a master to answer;
/// a refusal ends it.
pub async fn agent_connector(
    work_dir: &Path,
    masters: &[String],
    token: Option<JoinToken>,
    connect_timeout: Duration,
) -> Result<Connector, String> {
    let tcp = Connector::tcp(Some(connect_timeout));
    let ca_path = work_dir.join(AGENT_CA_FILE);
    let kept = Identity::load(work_dir, AGENT_IDENTITY).map_err(|e| e.to_string())?;
    let (ca, identity) = match kept {
        Some(identity) if ca_path.exists() => {
            (read_ca_cert(&ca_path).map_err(|e| e.to_string())?, identity)
        }
        _ => {
            let Some(token) = token else {
                return Err(format!(
                    "this agent has no certificate in {} and no join token: give it --join-token TOKEN or --join-token-file FILE (the agent join token the first master wrote to <its data dir>/agent-join-token, or one from `drover token create --agent`), or run without TLS with --insecure (trusted networks only)",
                    work_dir.display()
                ));
            };
            let token = token
                .expect(JoinKind::Agent)
                .map_err(|e| format!("--join-token: {e}"))?;
            let agent_id = {
                let dir = agent::work_dir::WorkDir::open(work_dir).map_err(|e| e.to_string())?;
                dir.agent_id().map_err(|e| e.to_string())?
            };
            let request = JoinRequest {
                token: token.to_string(),
                agent_id: Some(agent_id.0.clone()),
                hosts: Vec::new(),
            };
            let grant = joiner::join_patiently(masters, &token, &request, tcp.clone())
                .await
                .map_err(|e| e.to_string())?;
            let identity = Identity::new(grant.chain_pem, grant.key_pem);
            state::tls::identity::write_private(&ca_path, grant.ca_pem.as_bytes())
                .map_err(|e| e.to_string())?;
            identity
                .save(work_dir, AGENT_IDENTITY)
                .map_err(|e| e.to_string())?;
            tracing::info!(agent = %agent_id, "joined the cluster: certificate kept in {}", work_dir.display());
            (read_ca_cert(&ca_path).map_err(|e| e.to_string())?, identity)
        }
    };
    let client = config::client_config(&ca, Some(&identity)).map_err(|e| e.to_string())?;
    Ok(tcp.with_tls(client))
}

/// The CLI's connector: plain TCP, or TLS trusting only the CA in `ca_file`.
pub fn cli_connector(ca_file: Option<&Path>) -> Result<Connector, String> {
    trusting(Connector::tcp(Some(Duration::from_secs(2))), ca_file)
}

/// `tcp` as it is, or with TLS over it trusting only the CA in `ca_file`.
pub fn trusting(tcp: Connector, ca_file: Option<&Path>) -> Result<Connector, String> {
    let Some(path) = ca_file else {
        return Ok(tcp);
    };
    let ca = read_ca_cert(path).map_err(|e| format!("--ca-file: {e}"))?;
    let client = config::client_config(&ca, None).map_err(|e| format!("--ca-file: {e}"))?;
    Ok(tcp.with_tls(client))
}
