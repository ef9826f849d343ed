//! Where a secure master's CA and certificate come from when it starts: its data dir (a
//! restart), a join token (every master but the first), or, for the master that forms the
//! cluster, a new CA with two join tokens written next to it.

use state::tls::identity::write_private;
use state::tls::join::JoinRequest;
use state::tls::joiner::{self, JoinError};
use state::tls::{ClusterCa, Identity, JoinKind, JoinToken, TlsError};
use state::transport::Connector;

use super::{MASTER_IDENTITY, MasterPki};
use crate::config::MasterConfig;

/// The files the forming master writes its join tokens to, in its data dir (mode 0600).
pub const JOIN_TOKEN_FILES: [(JoinKind, &str); 2] = [
    (JoinKind::Master, "master-join-token"),
    (JoinKind::Agent, "agent-join-token"),
];

/// Why a secure master cannot start.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// Neither a CA in the data dir, nor a join token, nor the first start of the forming
    /// master.
    #[error(
        "master {id} has no cluster CA in {dir} and no join token: give it --join-token TOKEN or --join-token-file FILE (the master join token the first master wrote to <its data dir>/master-join-token, or one from `drover token create --master`). Only master {lowest} (the lowest id in --masters) creates the CA, on its first start with an empty data dir. Or run without TLS with --insecure (trusted networks only)"
    )]
    NeedsJoinToken {
        /// This master.
        id: u64,
        /// Its data dir.
        dir: String,
        /// The master that forms the cluster.
        lowest: u64,
    },
    /// The masters refused the token.
    #[error(transparent)]
    Join(#[from] JoinError),
    /// A grant without what a master needs.
    #[error(
        "the master that admitted this one sent no CA key; it runs an older drover, or the token is an agent's"
    )]
    NoCaKey,
    /// A grant of another CA than the token pins.
    #[error("the CA the masters sent is not the one the join token pins; refusing it")]
    WrongCa,
    /// The token given is not a master's.
    #[error("--join-token: {0}")]
    Token(#[from] state::tls::join::JoinTokenError),
    /// A file or certificate problem.
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// The PKI of the master `config` describes, made, fetched or read as its situation needs
/// (see the module's doc). A master waiting for the masters to admit it logs why and
/// retries; a refusal of the token ends it.
pub async fn prepare(
    config: &MasterConfig,
    token: Option<JoinToken>,
) -> Result<MasterPki, PkiError> {
    let dir = &config.data_dir;
    let hosts = hosts(config);
    if let (Some(ca), Some(identity)) =
        (ClusterCa::load(dir)?, Identity::load(dir, MASTER_IDENTITY)?)
    {
        let bootstrap = read_tokens(dir, &ca);
        return Ok(MasterPki::new(ca, identity, bootstrap));
    }
    if let Some(token) = token {
        let token = token.expect(JoinKind::Master)?;
        return join(config, token, hosts).await;
    }
    let lowest = config.masters.keys().next().copied().unwrap_or(config.id);
    let fresh = !dir.join(crate::startup::STORE_FILE).exists();
    if lowest != config.id || !fresh {
        return Err(PkiError::NeedsJoinToken {
            id: config.id,
            dir: dir.display().to_string(),
            lowest,
        });
    }
    let ca = ClusterCa::create()?;
    let identity = ca.issue_master(&hosts)?;
    // The CA first, the tokens last: whoever sees a token file finds the CA beside it.
    identity.save(dir, MASTER_IDENTITY)?;
    ca.save(dir)?;
    let mut bootstrap = Vec::new();
    let mut paths = Vec::new();
    for (kind, file) in JOIN_TOKEN_FILES {
        let token = JoinToken::generate(ca.fingerprint(), kind)?;
        let path = dir.join(file);
        write_private(&path, format!("{token}\n").as_bytes())?;
        paths.push(path.display().to_string());
        bootstrap.push(token);
    }
    tracing::info!(
        ca = %ca.fingerprint(),
        "created the cluster CA in {}; the master join token is in {}, the agent join token in {}",
        dir.display(),
        paths[0],
        paths[1]
    );
    Ok(MasterPki::new(ca, identity, bootstrap))
}

/// Joins with `token`, asking the other masters in turn until one admits this master.
async fn join(
    config: &MasterConfig,
    token: JoinToken,
    hosts: Vec<String>,
) -> Result<MasterPki, PkiError> {
    let request = JoinRequest {
        token: token.to_string(),
        agent_id: None,
        hosts,
    };
    let peers: Vec<String> = config.peers().map(|(_, addr)| addr.to_string()).collect();
    let tcp = Connector::tcp(Some(crate::startup::PEER_CONNECT_TIMEOUT));
    let grant = joiner::join_patiently(&peers, &token, &request, tcp).await?;
    let ca_key = grant.ca_key_pem.ok_or(PkiError::NoCaKey)?;
    let ca = ClusterCa::from_pem(&grant.ca_pem, &ca_key, &config.data_dir)?;
    if ca.fingerprint() != token.ca {
        return Err(PkiError::WrongCa);
    }
    let identity = Identity::new(grant.chain_pem, grant.key_pem);
    identity.save(&config.data_dir, MASTER_IDENTITY)?;
    ca.save(&config.data_dir)?;
    tracing::info!(ca = %ca.fingerprint(), "joined the cluster: CA and master certificate kept in {}", config.data_dir.display());
    Ok(MasterPki::new(ca, identity, Vec::new()))
}

/// The join tokens the forming master wrote into `dir` (none on other masters).
fn read_tokens(dir: &std::path::Path, ca: &ClusterCa) -> Vec<JoinToken> {
    JOIN_TOKEN_FILES
        .iter()
        .filter_map(|(_, file)| std::fs::read_to_string(dir.join(file)).ok())
        .filter_map(|text| JoinToken::parse(&text).ok())
        .filter(|token| token.ca == ca.fingerprint())
        .collect()
}

/// The names this master's certificate carries: the host of its `--masters` entry and its
/// `--listen` IP (unless that is 0.0.0.0 or [::]).
fn hosts(config: &MasterConfig) -> Vec<String> {
    let mut hosts = Vec::new();
    if let Some((host, _)) = config.advertised().rsplit_once(':') {
        hosts.push(
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
        );
    }
    let ip = config.listen.ip();
    if !ip.is_unspecified() && !hosts.contains(&ip.to_string()) {
        hosts.push(ip.to_string());
    }
    hosts
}
