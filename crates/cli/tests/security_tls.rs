//! Secure clusters (no `--insecure`): the masters make and share a CA, join with tokens
//! that pin it, `/internal/*` knows its callers by their certificates, and the public API
//! (HTTPS with the cluster CA) still needs ACL tokens.

mod common;
mod lb_support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::secure::{self, ca_file, start_secure, token_file};
use common::{Cluster, ELECTION, EXIT, TempDir, domain_json, drover_command, run_to_exit};
use master::peer::Method;
use serde_json::{Value, json};
use state::tls::join::JoinRequest;
use state::tls::joiner::{self, JoinError};
use state::tls::{Identity, JoinToken};
use state::transport::Connector;

/// Asks the cluster to admit a (fake) agent `id` with the token in `file`.
fn join_agent(cluster: &Cluster, token: &str, id: &str) -> Result<Identity, JoinError> {
    let token = JoinToken::parse(token).expect("a well-formed token");
    let request = JoinRequest {
        token: token.to_string(),
        agent_id: Some(id.to_string()),
        hosts: Vec::new(),
    };
    let masters: Vec<String> = cluster.ids().iter().map(|id| cluster.addr(*id)).collect();
    secure::block_on(joiner::join(
        &masters,
        &token,
        &request,
        Connector::tcp(None),
    ))
    .map(|grant| Identity::new(grant.chain_pem, grant.key_pem))
}

fn read_token(cluster: &Cluster, name: &str) -> String {
    std::fs::read_to_string(token_file(cluster, name)).expect("the token file")
}

/// Waits for a leader that master `via` names over TLS.
fn wait_for_secure_leader(cluster: &mut Cluster, via: &[u32]) -> String {
    let ca = ca_file(cluster);
    cluster.wait_for(ELECTION, "a leader over TLS", |c| {
        via.iter().find_map(|id| secure::leader(&c.addr(*id), &ca))
    })
}

/// A secure one-master cluster with a leader.
fn one_master(name: &str) -> Cluster {
    let mut cluster = Cluster::new(name, 1);
    start_secure(&mut cluster);
    wait_for_secure_leader(&mut cluster, &[1]);
    cluster
}

#[test]
fn a_process_without_a_master_certificate_cannot_append_or_vote() {
    let cluster = one_master("tls-raft");
    let ca = ca_file(&cluster);
    let addr = cluster.addr(1);
    let agent = join_agent(&cluster, &read_token(&cluster, "agent-join-token"), "a-1")
        .expect("the agent token admits an agent");
    let append = json!({"vote": {"leader_id": {"term": 99, "node_id": 7}, "committed": true}, "prev_log_id": null, "entries": [], "leader_commit": null});
    for rpc in ["append", "vote", "snapshot"] {
        for (who, identity) in [
            ("no certificate", None),
            ("an agent certificate", Some(&agent)),
        ] {
            let (status, body) = secure::call(
                &addr,
                Method::POST,
                &format!("/internal/raft/{rpc}"),
                Some(&append),
                &ca,
                identity,
            )
            .expect("the master answers");
            assert_eq!(status, 403, "{rpc} with {who}: {body}");
            assert!(
                body["message"]
                    .as_str()
                    .unwrap_or("")
                    .contains("master certificate"),
                "{rpc} with {who}: {body}"
            );
        }
    }
    // Nor can it announce itself as a master.
    let (status, _) = secure::call(
        &addr,
        Method::POST,
        "/internal/masters",
        Some(&json!({"id": 9, "addr": "127.0.0.1:1", "domain": null})),
        &ca,
        Some(&agent),
    )
    .unwrap();
    assert_eq!(status, 403);
    // Another cluster's master certificate is refused at the handshake, and the master
    // goes on serving.
    let foreign = state::tls::ClusterCa::create()
        .and_then(|ca| ca.issue_master(&["127.0.0.1".to_string()]))
        .expect("a certificate of another CA");
    let refused = secure::call(
        &addr,
        Method::POST,
        "/internal/raft/append",
        Some(&append),
        &ca,
        Some(&foreign),
    );
    assert!(
        refused.is_err(),
        "a certificate of another CA must be refused: {refused:?}"
    );
    let (status, _) = secure::call(&addr, Method::GET, "/health", None, &ca, None)
        .expect("the master still answers");
    assert_eq!(status, 200);
    // Plain HTTP gets no answer from a TLS port (the test's client speaks TLS to it, so
    // this is asked by hand).
    assert!(!answers_plain_http(&addr), "plain HTTP must not be served");
}

/// Whether `addr` answers a plain-HTTP request with an HTTP answer.
fn answers_plain_http(addr: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(addr) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(15)));
    let request = format!("GET /ping HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).contains("HTTP/1.")
}

#[test]
fn an_agent_certificate_acts_only_for_its_own_agent() {
    let cluster = one_master("tls-agent-id");
    let ca = ca_file(&cluster);
    let addr = cluster.addr(1);
    let token = read_token(&cluster, "agent-join-token");
    let mine = join_agent(&cluster, &token, "a-1").expect("a-1 joins");
    join_agent(&cluster, &token, "a-2").expect("a-2 joins");
    let report = json!({"reports": []});
    for (method, path, body) in [
        (
            Method::GET,
            "/internal/agents/a-2/assignments?wait_ms=0",
            None,
        ),
        (Method::POST, "/internal/agents/a-2/status", Some(&report)),
        (
            Method::POST,
            "/internal/agents/a-2/heartbeat",
            Some(&json!({})),
        ),
    ] {
        let (status, body) =
            secure::call(&addr, method.clone(), path, body, &ca, Some(&mine)).unwrap();
        assert_eq!(status, 403, "{path}: {body}");
        assert!(
            body["message"]
                .as_str()
                .unwrap_or("")
                .contains("act only for itself"),
            "{path}: {body}"
        );
        let (status, _) = secure::call(&addr, method, path, body_of(path), &ca, None).unwrap();
        assert_eq!(status, 403, "{path} without a certificate");
    }
    // Registering under another agent's id is refused before anything is done.
    let registration = json!({"agent": {"id": "a-2", "hostname": "h", "ip": "127.0.0.9"}});
    let (status, body) = secure::call(
        &addr,
        Method::POST,
        "/internal/agents/register",
        Some(&registration),
        &ca,
        Some(&mine),
    )
    .unwrap();
    assert_eq!(status, 403, "{body}");
    // Its own routes are open to it (the agent is unknown until it registers: 404, not 403).
    let (status, body) = secure::call(
        &addr,
        Method::GET,
        "/internal/agents/a-1/assignments?wait_ms=0",
        None,
        &ca,
        Some(&mine),
    )
    .unwrap();
    assert_ne!(status, 403, "{body}");
}

fn body_of(path: &str) -> Option<&'static Value> {
    static EMPTY: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    (!path.ends_with("assignments?wait_ms=0")).then(|| EMPTY.get_or_init(|| json!({"reports": []})))
}

#[test]
fn wrong_expired_revoked_and_malformed_join_tokens_are_refused_with_a_message() {
    let mut cluster = one_master("tls-tokens");
    let good = read_token(&cluster, "agent-join-token");
    let refused = |cluster: &Cluster, token: &str| match join_agent_raw(cluster, token) {
        Ok((status, body)) => (status, body["message"].as_str().unwrap_or("").to_string()),
        Err(e) => panic!("the master must answer a bad token, not fail: {e}"),
    };
    // Malformed and oversized: 400.
    for bad in [
        "hello",
        "",
        &"x".repeat(100_000),
        "drover-join.zz.agent.1.2",
    ] {
        let (status, message) = refused(&cluster, bad);
        assert_eq!(status, 400, "{bad:.40}: {message}");
        assert!(!message.is_empty());
    }
    // A master token is not an agent's.
    let (status, message) = refused(&cluster, &read_token(&cluster, "master-join-token"));
    assert_eq!(status, 400, "{message}");
    assert!(message.contains("agent join token"), "{message}");
    // The right id with a wrong secret: 401.
    let mut forged = JoinToken::parse(&good).unwrap();
    forged.secret = "0".repeat(64);
    let (status, message) = refused(&cluster, &forged.to_string());
    assert_eq!(status, 401, "{message}");
    // Another cluster's token: 401, naming the CA.
    let other = JoinToken::generate(
        state::tls::ClusterCa::create().unwrap().fingerprint(),
        state::tls::JoinKind::Agent,
    )
    .unwrap();
    let (status, message) = refused(&cluster, &other.to_string());
    assert_eq!(status, 401, "{message}");
    assert!(message.contains("another cluster"), "{message}");

    // drover token create/list/revoke, with a management token over HTTPS.
    let addr = cluster.addr(1);
    let ca = ca_file(&cluster);
    let management = common::acl::bootstrap(&addr);
    let no_config = cluster.dir().join("no-cli-config.toml");
    let token_cli = |args: &[&str], secret: &str| {
        let mut cmd = drover_command(None);
        cmd.arg("token")
            .args(args)
            .arg("--master")
            .arg(&addr)
            .arg("--ca-file")
            .arg(&ca)
            .arg("--token")
            .arg(secret)
            .env("DROVER_CONFIG", &no_config);
        run_to_exit(cmd, EXIT)
    };
    let token_ok = |args: &[&str]| {
        let (status, out, err) = token_cli(args, &management);
        assert!(status.success(), "drover token {args:?}: {err}");
        out
    };
    // A read token may not make join tokens.
    let (_, reader) = common::acl::create_token(&addr, &management, "reader", &["read"]);
    let (status, _, err) = token_cli(&["create", "--agent"], &reader);
    assert!(!status.success(), "a read token made a join token");
    assert!(err.contains("403"), "{err}");
    let short = token_ok(&["create", "--agent", "--ttl", "1s"]);
    let short = short.trim();
    cluster.wait_until(Duration::from_secs(30), "the 1 s token expires", |c| {
        refused(c, short).1.contains("expired")
    });
    let revocable = token_ok(&["create", "--agent"]).trim().to_string();
    let id = JoinToken::parse(&revocable).unwrap().id;
    assert!(token_ok(&["list"]).contains(&id));
    token_ok(&["revoke", &id]);
    let (status, message) = refused(&cluster, &revocable);
    assert_eq!(status, 401, "{message}");
    assert!(message.contains("revoked"), "{message}");
    // The bootstrap token still works.
    assert_eq!(refused(&cluster, &good).0, 200);
}

/// `POST /internal/join/agent` with any text as the token.
fn join_agent_raw(cluster: &Cluster, token: &str) -> Result<(u16, Value), String> {
    let real = JoinToken::parse(&read_token(cluster, "agent-join-token")).unwrap();
    let config = state::tls::join::pinned_client_config(&real.ca).map_err(|e| e.to_string())?;
    let client = master::peer::PeerClient::with_connector(Connector::tcp(None).with_tls(config));
    let body = json!({"token": token, "agent_id": "a-9"});
    secure::block_on(client.call(
        Method::POST,
        &cluster.addr(1),
        "/internal/join/agent",
        Some(&body),
        Duration::from_secs(30),
    ))
    .map(|(s, v)| (s.as_u16(), v))
    .map_err(|e| e.to_string())
}

/// A `drover agent` process, killed when dropped.
struct AgentProcess(Child);

impl Drop for AgentProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn agent_command(cluster: &Cluster, work_dir: &std::path::Path) -> Command {
    agent_command_at(cluster, work_dir, "127.0.0.1", "ports:[]")
}

/// [`agent_command`] advertising `ip`, with `ports` (`ports:[A-B]`) for its tasks.
fn agent_command_at(
    cluster: &Cluster,
    work_dir: &std::path::Path,
    ip: &str,
    ports: &str,
) -> Command {
    let mut cmd = drover_command(None);
    cmd.arg("agent")
        .arg("--masters")
        .arg(cluster.addr(1))
        .arg("--work-dir")
        .arg(work_dir)
        .arg("--hostname")
        .arg("secure-agent")
        .arg("--advertise-ip")
        .arg(ip)
        .arg("--resources")
        .arg(format!("cpus:1;mem:512;disk:1000;{ports}"))
        .arg("--domain")
        .arg(domain_json("local", "local-a"));
    cmd
}

#[test]
fn an_agent_needs_a_join_token_and_with_one_joins_and_registers() {
    let cluster = one_master("tls-real-agent");
    let dir = TempDir::new("tls-real-agent-work");
    // Without a token (and without --insecure) the agent refuses to start.
    let (status, _, err) = run_to_exit(agent_command(&cluster, &dir.path().join("none")), EXIT);
    assert!(!status.success());
    assert!(err.contains("--join-token"), "{err}");
    // With a bad one it is refused with the master's words.
    let mut cmd = agent_command(&cluster, &dir.path().join("bad"));
    cmd.arg("--join-token").arg("drover-join.nonsense");
    let (status, _, err) = run_to_exit(cmd, EXIT);
    assert!(!status.success());
    assert!(err.contains("not a drover join token"), "{err}");

    let work = dir.path().join("good");
    let mut cmd = agent_command(&cluster, &work);
    cmd.arg("--join-token-file")
        .arg(token_file(&cluster, "agent-join-token"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("agent.stderr")).unwrap());
    let _agent = AgentProcess(cmd.spawn().expect("spawn drover agent"));
    let management = common::acl::bootstrap(&cluster.addr(1));
    let registered = || {
        let r = common::acl::with_token(&cluster.addr(1), "GET", "/v1/nodes", None, &management);
        r.status == 200 && r.body.contains("secure-agent")
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !registered() {
        assert!(
            Instant::now() < deadline,
            "the agent did not register over TLS: {}",
            std::fs::read_to_string(dir.path().join("agent.stderr")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    for file in ["agent.pem", "agent-key.pem", "ca.pem"] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(work.join(file))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{file}");
    }

    // Removing the agent (operator's `drover node remove`) revokes its certificate: its
    // own routes refuse it from then on, with a message that says how to come back.
    let r = common::acl::with_token(&cluster.addr(1), "GET", "/v1/nodes", None, &management);
    let nodes: Value = serde_json::from_str(&r.body).unwrap();
    let agent_id = nodes["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["hostname"] == "secure-agent")
        .and_then(|n| n["id"].as_str())
        .expect("the agent's id")
        .to_string();
    let ca = ca_file(&cluster);
    let identity = Identity::new(
        std::fs::read_to_string(work.join("agent.pem")).unwrap(),
        std::fs::read_to_string(work.join("agent-key.pem")).unwrap(),
    );
    let heartbeat = format!("/internal/agents/{agent_id}/heartbeat");
    let beat = json!({});
    let (status, body) = secure::call(
        &cluster.addr(1),
        Method::POST,
        &heartbeat,
        Some(&beat),
        &ca,
        Some(&identity),
    )
    .unwrap();
    assert_eq!(status, 200, "before the removal: {body}");
    let no_config = cluster.dir().join("no-cli-config.toml");
    let mut cmd = drover_command(None);
    cmd.args(["node", "remove", &agent_id, "--master", &cluster.addr(1)])
        .args(["--token", &management])
        .arg("--ca-file")
        .arg(&ca)
        .env("DROVER_CONFIG", &no_config);
    let (status, out, err) = run_to_exit(cmd, EXIT);
    assert!(status.success(), "{out}{err}");
    assert!(out.contains("revoked"), "{out}");
    let (status, body) = secure::call(
        &cluster.addr(1),
        Method::POST,
        &heartbeat,
        Some(&beat),
        &ca,
        Some(&identity),
    )
    .unwrap();
    assert_eq!(status, 403, "after the removal: {body}");
    assert!(
        body["message"].as_str().unwrap_or("").contains("revoked"),
        "{body}"
    );
    let r = common::acl::with_token(&cluster.addr(1), "GET", "/v1/nodes", None, &management);
    let nodes: Value = serde_json::from_str(&r.body).unwrap();
    let state = nodes["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == agent_id.as_str())
        .map(|n| n["state"].clone());
    assert_eq!(state, Some(json!("gone")), "{nodes}");
    // Removing it again says so; an unknown id is a 404 that names the command to list.
    let path = format!("/v1/nodes/{agent_id}");
    let r = common::acl::with_token(&cluster.addr(1), "DELETE", &path, None, &management);
    assert_eq!(r.status, 200, "{r}");
    assert!(r.body.contains("removed already"), "{r}");
    let r = common::acl::with_token(
        &cluster.addr(1),
        "DELETE",
        "/v1/nodes/nope",
        None,
        &management,
    );
    assert_eq!(r.status, 404, "{r}");
    assert!(r.message().contains("drover node list"), "{r}");
}

#[test]
fn a_secure_cluster_of_three_forms_survives_leader_loss_and_serves_the_cli() {
    let mut cluster = Cluster::new("tls-three", 3);
    start_secure(&mut cluster);
    let leader = wait_for_secure_leader(&mut cluster, &[1, 2, 3]);
    let old = cluster.id_of(&leader);
    for id in cluster.ids() {
        let key = cluster.master(id).data_dir.join("ca-key.pem");
        assert!(
            key.exists(),
            "master {id} keeps the CA key, to sign after a failover"
        );
    }
    // The forming master's tokens reach the replicated state (committed: the next leader
    // has them), where the other masters, which know them from nowhere else, find them.
    let token = read_token(&cluster, "agent-join-token");
    let parsed = JoinToken::parse(&token).unwrap();
    let master_2 = Identity::load(&cluster.master(2).data_dir, "master")
        .unwrap()
        .expect("master 2 keeps its certificate");
    let ca = ca_file(&cluster);
    cluster.wait_until(ELECTION, "the bootstrap tokens are committed", |c| {
        secure::call(
            &c.addr(2),
            Method::GET,
            "/internal/join-tokens",
            None,
            &ca,
            Some(&master_2),
        )
        .is_ok_and(|(_, list)| list.to_string().contains(&parsed.id))
    });
    cluster.kill(old);
    let rest: Vec<u32> = cluster.ids().into_iter().filter(|id| *id != old).collect();
    let new = cluster.wait_for(ELECTION, "a new leader over TLS", |c| {
        rest.iter()
            .find_map(|id| secure::leader(&c.addr(*id), &ca))
            .filter(|l| *l != leader)
    });
    assert_ne!(new, leader);
    // An agent joins through the new leader (it signs with its own copy of the CA key).
    let masters: Vec<String> = rest.iter().map(|id| cluster.addr(*id)).collect();
    let request = JoinRequest {
        token,
        agent_id: Some("a-1".into()),
        hosts: Vec::new(),
    };
    // The new leader may still be applying the log it committed: poll to a deadline.
    let grant = cluster.wait_for(ELECTION, "an agent joins after the failover", |_| {
        secure::block_on(joiner::join(
            &masters,
            &parsed,
            &request,
            Connector::tcp(None),
        ))
        .ok()
    });
    // Its VIPs' projection is answered through any master (a follower forwards it).
    let agent = Identity::new(grant.chain_pem, grant.key_pem);
    for m in &masters {
        let (status, body) = secure::call(
            m,
            Method::GET,
            "/internal/agents/a-1/vips",
            None,
            &ca,
            Some(&agent),
        )
        .unwrap();
        assert_eq!(status, 200, "through {m}: {body}");
        assert!(body["apps"].is_array(), "through {m}: {body}");
    }

    // The CLI trusts the CA it is given, and nothing else; the API still wants a token.
    let management = common::acl::bootstrap(&new);
    let no_config = cluster.dir().join("no-cli-config.toml");
    let mut cmd = drover_command(None);
    cmd.args([
        "node",
        "list",
        "--master",
        &masters[0],
        "--token",
        &management,
    ])
    .arg("--ca-file")
    .arg(&ca)
    .env("DROVER_CONFIG", &no_config);
    let (status, out, err) = run_to_exit(cmd, EXIT);
    assert!(status.success(), "{err}");
    assert!(out.contains("master"), "{out}");
    let mut cmd = drover_command(None);
    cmd.args([
        "node",
        "list",
        "--master",
        &masters[0],
        "--token",
        &management,
    ])
    .env("DROVER_CONFIG", &no_config);
    let (status, _, _) = run_to_exit(cmd, EXIT);
    assert!(!status.success(), "plain HTTP to a TLS master must fail");
    let other_ca = cluster.dir().join("other-ca.pem");
    std::fs::write(
        &other_ca,
        state::tls::ClusterCa::create().unwrap().cert_pem(),
    )
    .unwrap();
    let mut cmd = drover_command(None);
    cmd.args([
        "node",
        "list",
        "--master",
        &masters[0],
        "--token",
        &management,
    ])
    .arg("--ca-file")
    .arg(&other_ca)
    .env("DROVER_CONFIG", &no_config);
    let (status, _, _) = run_to_exit(cmd, EXIT);
    assert!(
        !status.success(),
        "a master of another CA must not be trusted"
    );
}

#[test]
fn a_master_without_a_join_token_refuses_to_start() {
    let mut cluster = Cluster::new("tls-no-token", 3);
    cluster.insecure = false;
    let (status, _, err) = run_to_exit(cluster.command(2), EXIT);
    assert!(!status.success());
    assert!(err.contains("--join-token"), "{err}");
}

#[test]
fn drover_lb_follows_a_secure_cluster_over_https_with_a_read_token() {
    let cluster = one_master("tls-lb");
    let dir = TempDir::new("tls-lb-work");
    let addr = cluster.addr(1);
    let ca = ca_file(&cluster);
    let management = common::acl::bootstrap(&addr);
    let app = json!({
        "id": "/edge/web", "cmd": "sleep 1000", "instances": 0, "cpus": 0.1, "mem": 16,
        "portDefinitions": [{"port": 0}],
        "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "web.example.test"},
    });
    let r = common::acl::with_token(&addr, "POST", "/v2/apps", Some(&app), &management);
    assert_eq!(r.status, 201, "{r}");
    let lb = |extra: &[&std::ffi::OsStr]| {
        let (http, admin) = (common::free_port(), common::free_port());
        let mut cmd = drover_command(None);
        cmd.args(["lb", "--masters", &addr, "--bind-ip", "127.0.0.1"])
            .args(["--http", &format!("127.0.0.1:{http}")])
            .args(["--admin", &format!("127.0.0.1:{admin}")])
            .args(["--resync-ms", "500", "--token", &management])
            .args(extra)
            .env_remove("DROVER_CA_FILE");
        (cmd, format!("127.0.0.1:{admin}"))
    };

    // A secure cluster serves only HTTPS: without the CA the balancer refuses to start and
    // says what to give it.
    let (cmd, _) = lb(&[]);
    let (status, _, err) = run_to_exit(cmd, EXIT);
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.contains("--ca-file") && err.contains("ca.pem"), "{err}");
    // --ca-file and --insecure contradict each other.
    let (cmd, _) = lb(&["--insecure".as_ref(), "--ca-file".as_ref(), ca.as_os_str()]);
    let (status, _, err) = run_to_exit(cmd, EXIT);
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.contains("--insecure"), "{err}");

    // With the cluster CA and a read token it follows the masters over HTTPS: the app's
    // virtual host is in its routes.
    let (mut cmd, admin) = lb(&["--ca-file".as_ref(), ca.as_os_str()]);
    let log = dir.path().join("lb.stderr");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    let _lb = AgentProcess(cmd.spawn().expect("spawn drover lb"));
    let routed = || {
        common::http::get(&admin, "/routes").is_ok_and(|r| {
            r.status == 200
                && serde_json::from_str::<Value>(&r.body).is_ok_and(|v| {
                    v["services"].as_array().is_some_and(|s| {
                        s.iter().any(|s| {
                            s["app"] == "/edge/web"
                                && s["edge"]["vhosts"]
                                    .as_array()
                                    .is_some_and(|h| h.iter().any(|h| h == "web.example.test"))
                        })
                    })
                })
        })
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !routed() {
        assert!(
            Instant::now() < deadline,
            "drover lb did not read the secure master's apps: {}",
            common::tail(&log, 40)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn an_agent_of_a_secure_cluster_serves_vips_reading_only_their_projection_with_its_certificate() {
    let cluster = one_master("tls-vip");
    let dir = TempDir::new("tls-vip-work");
    let addr = cluster.addr(1);
    let ca = ca_file(&cluster);
    let management = common::acl::bootstrap(&addr);
    let (ip, task_port, vip_port) = ("127.0.9.1", common::free_port(), common::free_port());
    let work = dir.path().join("agent");
    let log = dir.path().join("agent.stderr");
    let mut cmd = agent_command_at(
        &cluster,
        &work,
        ip,
        &format!("ports:[{task_port}-{task_port}]"),
    );
    cmd.arg("--join-token-file")
        .arg(token_file(&cluster, "agent-join-token"))
        .args(["--vip-addr", ip, "--stop-tasks-on-exit"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    let _agent = AgentProcess(cmd.spawn().expect("spawn drover agent"));
    let app = json!({
        "id": "/vip/web", "cmd": lb_support::SERVE_ID, "instances": 1, "cpus": 0.1, "mem": 16,
        "env": {"DB_PASSWORD": "hunter2"},
        "portDefinitions": [{"port": 0, "labels": {"VIP_0": format!("/web:{vip_port}")}}],
    });
    let r = common::acl::with_token(&addr, "POST", "/v2/apps", Some(&app), &management);
    assert_eq!(r.status, 201, "{r}");

    // A client at the agent's VIP address reaches the app's instance.
    let running = || {
        let r = common::acl::with_token(&addr, "GET", "/v2/apps/vip/web/tasks", None, &management);
        let tasks: Value = serde_json::from_str(&r.body).ok()?;
        let task = tasks["tasks"].as_array()?.first()?.clone();
        (task["state"] == "TASK_RUNNING").then(|| task["id"].as_str().map(str::to_string))?
    };
    let vip = format!("{ip}:{vip_port}");
    let name = "web.marathon.l4lb.drover.directory";
    let deadline = Instant::now() + Duration::from_secs(90);
    let instance = loop {
        if let Some(id) = running()
            && lb_support::get(&vip, name, "/")
                .is_ok_and(|(status, body)| status == 200 && body == id)
        {
            break id;
        }
        assert!(
            Instant::now() < deadline,
            "the agent's VIP {vip} did not reach the instance: {}",
            common::tail(&log, 40)
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(instance.starts_with("vip_web."), "{instance}");

    // What it read: the projection, with its own certificate only.
    let agent_id = std::fs::read_to_string(work.join("agent-id")).unwrap();
    let agent_id = agent_id.trim();
    let identity = Identity::new(
        std::fs::read_to_string(work.join("agent.pem")).unwrap(),
        std::fs::read_to_string(work.join("agent-key.pem")).unwrap(),
    );
    let vips = format!("/internal/agents/{agent_id}/vips");
    let (status, body) =
        secure::call(&addr, Method::GET, &vips, None, &ca, Some(&identity)).unwrap();
    assert_eq!(status, 200, "{body}");
    let apps = body["apps"].as_array().expect("apps");
    assert_eq!(apps.len(), 1, "{body}");
    for field in ["env", "cmd", "args", "container"] {
        assert!(apps[0].get(field).is_none(), "{field} in {body}");
    }
    assert!(!body.to_string().contains("hunter2"), "{body}");
    assert_eq!(
        apps[0]["portDefinitions"][0]["labels"]["VIP_0"],
        format!("/web:{vip_port}")
    );
    assert_eq!(apps[0]["tasks"][0]["id"], instance.as_str());
    // Without a client certificate, or with another agent's, the projection is refused.
    let other = join_agent(
        &cluster,
        &read_token(&cluster, "agent-join-token"),
        "a-other",
    )
    .expect("another agent joins");
    for path in [
        vips.clone(),
        format!("/internal/agents/{agent_id}/vip-events"),
    ] {
        let (status, body) = secure::call(&addr, Method::GET, &path, None, &ca, None).unwrap();
        assert_eq!(status, 403, "{path} without a certificate: {body}");
        let (status, body) =
            secure::call(&addr, Method::GET, &path, None, &ca, Some(&other)).unwrap();
        assert_eq!(
            status, 403,
            "{path} with another agent's certificate: {body}"
        );
    }
    // An agent certificate is no API credential: the full definitions stay out of reach.
    let (status, body) =
        secure::call(&addr, Method::GET, "/v2/apps", None, &ca, Some(&identity)).unwrap();
    assert_eq!(status, 401, "{body}");
}
