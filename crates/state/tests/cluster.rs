//! Real openraft nodes on the redb store, talking over the HTTP network on loopback.
//!
//! Waits are generous upper bounds for progress, not timing assertions.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response as HttpResponse, StatusCode};
use hyper_util::rt::TokioIo;
use openraft::{BasicNode, Config};
use state::network::{HttpNetwork, RaftRpc, answer};
use state::types::Raft;
use state::{Command, NodeId, Response, StateReader};
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

const PATIENCE: Duration = Duration::from_secs(30);

fn config() -> Config {
    Config {
        cluster_name: "drover-test".into(),
        heartbeat_interval: 100,
        election_timeout_min: 600,
        election_timeout_max: 1200,
        ..Default::default()
    }
}

struct Master {
    id: NodeId,
    addr: String,
    raft: Raft,
    reader: StateReader,
    server: JoinHandle<()>,
}

impl Master {
    async fn start(id: NodeId, dir: &TempDir, listener: TcpListener) -> Master {
        Self::start_with(id, dir, listener, config()).await
    }

    async fn start_with(
        id: NodeId,
        dir: &TempDir,
        listener: TcpListener,
        config: Config,
    ) -> Master {
        let addr = listener.local_addr().expect("bound").to_string();
        let path = dir.path().join(format!("master-{id}.redb"));
        // A stopped node's tasks may still be dropping their handles on the file.
        let deadline = tokio::time::Instant::now() + PATIENCE;
        let (log, sm) = loop {
            match state::open(&path).await {
                Ok(stores) => break stores,
                Err(e) if tokio::time::Instant::now() < deadline => {
                    eprintln!("retrying open: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("open store: {e}"),
            }
        };
        let reader = sm.reader();
        let config = Arc::new(config.validate().expect("valid raft config"));
        let raft = Raft::new(id, config, HttpNetwork::new(id), log, sm)
            .await
            .expect("raft starts");
        let server = tokio::spawn(serve(listener, raft.clone()));
        Master {
            id,
            addr,
            raft,
            reader,
            server,
        }
    }

    async fn stop(self) {
        self.server.abort();
        self.raft.shutdown().await.expect("raft stops");
    }

    fn node(&self) -> BasicNode {
        BasicNode::new(self.addr.clone())
    }
}

/// The master's internal Raft endpoints, as crates/master will serve them.
async fn serve(listener: TcpListener, raft: Raft) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let raft = raft.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<Incoming>| {
                let raft = raft.clone();
                async move {
                    let rpc = RaftRpc::from_path(req.uri().path());
                    let body = req.into_body().collect().await?.to_bytes();
                    let (status, out) = match rpc {
                        None => (StatusCode::NOT_FOUND, b"no such Raft RPC".to_vec()),
                        Some(rpc) => match answer(&raft, rpc, &body).await {
                            Ok(out) => (StatusCode::OK, out),
                            Err(e) => (StatusCode::BAD_REQUEST, e.to_string().into_bytes()),
                        },
                    };
                    let mut resp = HttpResponse::new(Full::new(Bytes::from(out)));
                    *resp.status_mut() = status;
                    Ok::<_, hyper::Error>(resp)
                }
            });
            // A peer that hangs up mid-request is not this test's concern.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn listener() -> TcpListener {
    TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback")
}

async fn wait_for_leader(masters: &[&Master]) -> NodeId {
    let ids: Vec<NodeId> = masters.iter().map(|m| m.id).collect();
    let metrics = masters[0]
        .raft
        .wait(Some(PATIENCE))
        .metrics(
            |m| m.current_leader.is_some_and(|l| ids.contains(&l)),
            "a leader among the live masters",
        )
        .await
        .expect("a leader is elected");
    metrics.current_leader.expect("leader known")
}

async fn wait_applied(master: &Master, index: u64) {
    master
        .raft
        .wait(Some(PATIENCE))
        .applied_index_at_least(Some(index), "entry applied")
        .await
        .expect("the entry is applied");
}

fn by_id<'a>(masters: &'a [&'a Master], id: NodeId) -> &'a Master {
    masters
        .iter()
        .find(|m| m.id == id)
        .expect("leader is one of the masters")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_masters_replicate_and_survive_the_loss_of_the_leader() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut masters = Vec::new();
    for id in 1..=3 {
        masters.push(Master::start(id, &dir, listener().await).await);
    }
    let members: BTreeMap<NodeId, BasicNode> = masters.iter().map(|m| (m.id, m.node())).collect();
    masters[0]
        .raft
        .initialize(members)
        .await
        .expect("cluster initialises");

    let all: Vec<&Master> = masters.iter().collect();
    let leader = by_id(&all, wait_for_leader(&all).await);
    let written = leader
        .raft
        .client_write(Command::InitCluster {
            cluster_id: "c1".into(),
        })
        .await
        .expect("write commits");
    assert_eq!(
        written.data,
        Response::ClusterId {
            cluster_id: "c1".into()
        }
    );
    for m in &masters {
        wait_applied(m, written.log_id.index).await;
        assert_eq!(
            m.reader.read(|a| a.state.cluster_id().map(str::to_string)),
            Some("c1".to_string()),
            "master {}",
            m.id
        );
    }

    // Stop the leader; the other two elect a new one and keep accepting writes.
    let old_leader = leader.id;
    let pos = masters
        .iter()
        .position(|m| m.id == old_leader)
        .expect("leader present");
    masters.remove(pos).stop().await;
    let live: Vec<&Master> = masters.iter().collect();
    let leader = by_id(&live, wait_for_leader(&live).await);
    assert_ne!(leader.id, old_leader);
    let written = leader
        .raft
        .client_write(Command::PutMaster {
            id: 7,
            addr: "10.0.0.7:8080".into(),
            domain: None,
            protocol: 2,
        })
        .await
        .expect("write commits without the old leader");
    assert_eq!(written.data, Response::Ok);
    for m in &masters {
        wait_applied(m, written.log_id.index).await;
        assert!(m.reader.read(|a| a.state.masters().contains_key(&7)));
    }
    for m in masters {
        m.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_master_rebuilds_its_state_from_snapshot_and_log() {
    let dir = tempfile::tempdir().expect("temp dir");
    let listener1 = listener().await;
    let addr = listener1.local_addr().expect("bound");
    let last_index = {
        let m = Master::start(1, &dir, listener1).await;
        m.raft
            .initialize(BTreeMap::from([(1, m.node())]))
            .await
            .expect("initialises");
        wait_for_leader(&[&m]).await;
        m.raft
            .client_write(Command::InitCluster {
                cluster_id: "c1".into(),
            })
            .await
            .expect("write");
        m.raft
            .trigger()
            .snapshot()
            .await
            .expect("snapshot requested");
        m.raft
            .wait(Some(PATIENCE))
            .metrics(|x| x.snapshot.is_some(), "snapshot built")
            .await
            .expect("snapshot built");
        // After the snapshot: only in the log.
        let w = m
            .raft
            .client_write(Command::PutMaster {
                id: 1,
                addr: addr.to_string(),
                domain: None,
                protocol: 2,
            })
            .await
            .expect("write");
        m.stop().await;
        w.log_id.index
    };

    // Same file, same address.
    let listener1 = TcpListener::bind(addr).await.expect("rebind");
    let m = Master::start(1, &dir, listener1).await;
    wait_applied(&m, last_index).await;
    m.reader.read(|a| {
        assert_eq!(a.state.cluster_id(), Some("c1"));
        assert_eq!(
            a.state.masters().get(&1).map(|x| x.addr.clone()),
            Some(addr.to_string())
        );
    });
    m.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_master_catches_up_from_a_snapshot_sent_in_chunks() {
    let dir = tempfile::tempdir().expect("temp dir");
    let small_chunks = Config {
        snapshot_max_chunk_size: 64,
        ..config()
    };
    let m1 = Master::start_with(1, &dir, listener().await, small_chunks.clone()).await;
    m1.raft
        .initialize(BTreeMap::from([(1, m1.node())]))
        .await
        .expect("initialises");
    wait_for_leader(&[&m1]).await;
    let mut last = 0;
    for id in 1..=5 {
        let w = m1
            .raft
            .client_write(Command::PutMaster {
                id,
                addr: format!("10.0.0.{id}:8080"),
                domain: None,
                protocol: 2,
            })
            .await
            .expect("write");
        last = w.log_id.index;
    }
    m1.raft
        .trigger()
        .snapshot()
        .await
        .expect("snapshot requested");
    m1.raft
        .wait(Some(PATIENCE))
        .metrics(
            |m| m.snapshot.is_some_and(|s| s.index == last),
            "snapshot built",
        )
        .await
        .expect("snapshot built");
    m1.raft
        .trigger()
        .purge_log(last)
        .await
        .expect("purge requested");
    m1.raft
        .wait(Some(PATIENCE))
        .metrics(|m| m.purged.is_some_and(|p| p.index == last), "log purged")
        .await
        .expect("log purged");

    // The log is gone: the new master can only catch up by installing the snapshot.
    let m2 = Master::start_with(2, &dir, listener().await, small_chunks).await;
    m1.raft
        .add_learner(2, m2.node(), true)
        .await
        .expect("learner added");
    wait_applied(&m2, last).await;
    assert_eq!(m2.reader.read(|a| a.state.masters().len()), 5);
    let installed = m2
        .raft
        .metrics()
        .borrow()
        .snapshot
        .expect("the learner has a snapshot");
    assert_eq!(installed.index, last);
    m2.stop().await;
    m1.stop().await;
}
