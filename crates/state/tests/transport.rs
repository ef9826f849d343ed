//! The Raft network over a replaced connector: RPCs reach an in-process server over
//! in-memory streams (no socket), and the client pools the connections it opens.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use openraft::error::RaftError;
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{VoteRequest, VoteResponse};
use openraft::{BasicNode, Vote};
use state::NodeId;
use state::network::{HttpNetwork, RaftRpc};
use state::transport::{Connector, Stream};

/// A peer that grants every vote, served on one end of an in-memory stream.
fn serve_granting_peer(io: tokio::io::DuplexStream, paths: Arc<Mutex<Vec<String>>>) {
    let service = service_fn(move |req: Request<Incoming>| {
        let paths = paths.clone();
        async move {
            paths.lock().unwrap().push(req.uri().path().to_string());
            let body = req.into_body().collect().await?.to_bytes();
            let vote: VoteRequest<NodeId> = serde_json::from_slice(&body).expect("a vote request");
            let answer: Result<VoteResponse<NodeId>, RaftError<NodeId>> =
                Ok(VoteResponse::new(vote.vote, None, true));
            let out = serde_json::to_vec(&answer).expect("encodable");
            Ok::<_, hyper::Error>(Response::new(Full::new(Bytes::from(out))))
        }
    });
    tokio::spawn(async move {
        let _ = http1::Builder::new()
            .serve_connection(TokioIo::new(io), service)
            .await;
    });
}

#[tokio::test]
async fn raft_rpcs_go_through_the_connector_given_and_reuse_its_connections() {
    let dialled: Arc<Mutex<Vec<String>>> = Arc::default();
    let paths: Arc<Mutex<Vec<String>>> = Arc::default();
    let (seen, served) = (dialled.clone(), paths.clone());
    let connector = Connector::new(move |uri: hyper::Uri| {
        seen.lock().unwrap().push(uri.to_string());
        let (client, server) = tokio::io::duplex(64 * 1024);
        serve_granting_peer(server, served.clone());
        async move { Ok(Stream::tokio(client)) }
    });
    let mut network = HttpNetwork::with_connector(1, connector);
    // A name no resolver knows: only the connector can reach it.
    let mut peer = network
        .new_client(2, &BasicNode::new("master-2.simulated:7000"))
        .await;
    let option = RPCOption::new(Duration::from_secs(30));
    for term in [1, 2] {
        let vote = Vote::new(term, 1);
        let answer = peer
            .vote(VoteRequest::new(vote, None), option.clone())
            .await
            .expect("the vote is answered");
        assert!(answer.vote_granted);
        assert_eq!(answer.vote, vote);
    }
    assert_eq!(
        *dialled.lock().unwrap(),
        ["http://master-2.simulated:7000/"],
        "one connection, opened by the connector and reused"
    );
    let vote_path = RaftRpc::Vote.path();
    assert_eq!(*paths.lock().unwrap(), [vote_path, vote_path]);
}

#[tokio::test]
async fn a_connector_that_fails_makes_the_peer_unreachable() {
    let connector = Connector::new(|_uri: hyper::Uri| async {
        Err::<Stream, _>("the simulated link is cut".into())
    });
    let mut network = HttpNetwork::with_connector(1, connector);
    let mut peer = network
        .new_client(2, &BasicNode::new("master-2.simulated:7000"))
        .await;
    let err = peer
        .vote(
            VoteRequest::new(Vote::new(1, 1), None),
            RPCOption::new(Duration::from_secs(30)),
        )
        .await
        .expect_err("no connection, no answer");
    // openraft backs off from an unreachable peer instead of retrying at once.
    assert!(
        matches!(err, openraft::error::RPCError::Unreachable(_)),
        "{err:?}"
    );
}
