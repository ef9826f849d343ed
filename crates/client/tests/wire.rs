//! Every API type against an answer of a real master (main at 86fea64, `drover dev`, apps
//! `examples/apps/http-service.json` and `too-big.json`; lists cut to a few entries): each
//! fixture decodes into its type and serializes back to the same JSON, so the types cannot
//! drift from the wire.

use client::*;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Decodes `fixture` as `T`, serializes it again and compares: same fields, same values.
fn round_trip<T: DeserializeOwned + Serialize>(fixture: &str) -> T {
    let wire: Value = serde_json::from_str(fixture).expect("the fixture is JSON");
    let typed: T = decode("fixture", wire.clone()).unwrap_or_else(|e| panic!("{e}"));
    let again = serde_json::to_value(&typed).expect("the type serializes");
    assert_eq!(again, wire, "the type does not give back the wire's JSON");
    typed
}

#[test]
fn nodes_round_trips() {
    round_trip::<Nodes>(NODES);
}

#[test]
fn cluster_health_round_trips() {
    round_trip::<ClusterHealth>(CLUSTER_HEALTH);
}

#[test]
fn plan_round_trips() {
    round_trip::<Plan>(PLAN);
}

#[test]
fn info_round_trips() {
    round_trip::<Info>(INFO);
}

#[test]
fn drover_info_round_trips() {
    round_trip::<client::system::DroverInfo>(DROVER_INFO);
}

#[test]
fn leader_round_trips() {
    round_trip::<Leader>(LEADER);
}

#[test]
fn process_health_round_trips() {
    round_trip::<ProcessHealth>(PROCESS_HEALTH);
}

#[test]
fn masters_list_round_trips() {
    round_trip::<client::system::MastersList>(MASTERS_LIST);
}

#[test]
fn tasks_round_trips() {
    round_trip::<Tasks>(TASKS);
}

#[test]
fn apps_round_trips() {
    round_trip::<AppList>(APPS);
}

#[test]
fn app_round_trips() {
    round_trip::<AppEnvelope>(APP);
}

#[test]
fn app_version_round_trips() {
    round_trip::<App>(APP_VERSION);
}

#[test]
fn versions_round_trips() {
    round_trip::<Versions>(VERSIONS);
}

#[test]
fn deployments_round_trips() {
    round_trip::<Vec<Deployment>>(DEPLOYMENTS);
}

#[test]
fn queue_round_trips() {
    round_trip::<Queue>(QUEUE);
}

#[test]
fn error_422_round_trips() {
    round_trip::<ErrorBody>(ERROR_422);
}

#[test]
fn error_409_round_trips() {
    round_trip::<ErrorBody>(ERROR_409);
}

#[test]
fn error_404_round_trips() {
    round_trip::<ErrorBody>(ERROR_404);
}

#[test]
fn an_apps_definition_reads_back_as_a_valid_definition() {
    let app = round_trip::<AppEnvelope>(APP).app;
    let definition = app.parse_definition().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(definition.id.to_string(), app.id());
    for (key, value) in &definition.labels {
        assert_eq!(app.label(key), Some(value.as_str()), "label {key}");
    }
    assert_eq!(app.label("no-such-label"), None);
    assert_eq!(
        serde_json::to_value(u64::from(definition.instances))
            .ok()
            .as_ref(),
        Some(app.field("instances"))
    );
}

#[test]
fn an_apps_label_is_read_by_key() {
    let wire = serde_json::json!({
        "id": "/web", "labels": {"op": "create-1"}, "version": "2026-01-01T00:00:00.000Z",
        "versionInfo": {
            "lastConfigChangeAt": "2026-01-01T00:00:00.000Z",
            "lastScalingAt": "2026-01-01T00:00:00.000Z"
        }
    });
    let app: App = decode("GET /v2/apps/web", wire).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(app.label("op"), Some("create-1"));
    assert_eq!(app.label("other"), None);
}

#[test]
fn an_agent_id_in_use_refusal_round_trips() {
    let error = round_trip::<ErrorBody>(ERROR_AGENT_ID_IN_USE);
    let refusal = error.refusal.expect("the refusal says why");
    assert_eq!(refusal.reason, "agent_id_in_use");
    assert_eq!(
        (refusal.live_ip.as_str(), refusal.ip.as_str()),
        ("127.0.0.2", "127.0.0.3")
    );
    assert_eq!(round_trip::<ErrorBody>(ERROR_404).refusal, None);
}

#[test]
fn validation_errors_give_marathons_422_body() {
    let mut errors = domain::ValidationErrors::default();
    errors.add("/id", "must not be empty");
    errors.add("/cpus", "must be positive");
    errors.add("/cpus", "must be a number");
    let body = serde_json::to_value(ErrorBody::invalid(&errors)).expect("serializes");
    assert_eq!(
        body,
        serde_json::json!({"message": "Object is not valid", "details": [
            {"path": "/id", "errors": ["must not be empty"]},
            {"path": "/cpus", "errors": ["must be positive", "must be a number"]},
        ]})
    );
    assert_eq!(body, errors.to_json(), "the same body as the domain's own");
    assert_eq!(
        ErrorBody::invalid(&errors).to_string(),
        "Object is not valid; /id: must not be empty; /cpus: must be positive, must be a number"
    );
}

#[test]
fn nodes_tell_masters_from_agents() {
    let nodes = round_trip::<Nodes>(NODES);
    assert!(matches!(&nodes.nodes[0], Node::Master(m) if m.leader));
    assert!(matches!(&nodes.nodes[1], Node::Agent(a) if a.state == NodeState::Active));
}

#[test]
fn an_app_keeps_its_counts_out_of_its_definition() {
    let app = round_trip::<AppEnvelope>(APP).app;
    assert_eq!(app.id(), "/http-service");
    assert_eq!(app.counts().tasks_running, 4);
    assert!(!app.definition.contains_key("tasksRunning"));
    assert!(!app.definition.contains_key("version"));
    assert_eq!(app.tasks.as_ref().map(Vec::len), Some(1));
}

#[test]
fn a_single_version_has_no_status() {
    let app = round_trip::<App>(APP_VERSION);
    assert_eq!(app.counts, None);
    assert_eq!(app.deployments, None);
}

/// The fields of Marathon's `Task` (`docs/docs/rest-api/public/api/v2/types/task.raml`):
/// strict clients (marathon-python maps fields to keyword arguments) refuse any other.
const MARATHON_TASK_FIELDS: &[&str] = &[
    "appId",
    "healthCheckResults",
    "checkResult",
    "host",
    "id",
    "ipAddresses",
    "ports",
    "servicePorts",
    "slaveId",
    "state",
    "stagedAt",
    "startedAt",
    "version",
    "localVolumes",
    "region",
    "zone",
    "role",
];

/// Marathon's `TaskFailure` (the same RAML file).
const MARATHON_TASK_FAILURE_FIELDS: &[&str] = &[
    "appId",
    "host",
    "message",
    "state",
    "taskId",
    "timestamp",
    "version",
    "slaveId",
];

#[test]
fn a_task_carries_only_marathons_fields() {
    let task = round_trip::<Tasks>(TASKS).tasks.remove(0);
    let Value::Object(fields) = serde_json::to_value(&task).unwrap() else {
        panic!("a task is an object");
    };
    for key in fields.keys() {
        assert!(
            MARATHON_TASK_FIELDS.contains(&key.as_str()),
            "a task carries {key}, which Marathon's tasks do not have: {fields:?}"
        );
    }
    let failure = TaskFailure {
        app_id: "/a".into(),
        host: "h".into(),
        message: String::new(),
        state: "TASK_FAILED".into(),
        task_id: "a.instance-1".into(),
        timestamp: "2026-12-01T12:18:43.404Z".into(),
        version: "2026-12-01T12:18:43.399Z".into(),
        slave_id: Some("s".into()),
    };
    let Value::Object(fields) = serde_json::to_value(&failure).unwrap() else {
        panic!("a task failure is an object");
    };
    let keys: Vec<&str> = fields.keys().map(String::as_str).collect();
    assert_eq!(keys, MARATHON_TASK_FAILURE_FIELDS);
}

/// Marathon's `taskStats` (its changelog's example for 0.11, the shape marathon-python and
/// go-marathon read): categories are optional, each with counts and a life time.
const TASK_STATS: &str = r#"{
 "startedAfterLastScaling": {"stats": {"counts": {"staged": 1, "running": 100, "healthy": 90, "unhealthy": 4},
                                        "lifeTime": {"averageSeconds": 20.0, "medianSeconds": 10.0}}},
 "withLatestConfig": {"stats": {"counts": {"staged": 1, "running": 100, "healthy": 90, "unhealthy": 4},
                                 "lifeTime": {"averageSeconds": 20.0, "medianSeconds": 10.0}}},
 "totalSummary": {"stats": {"counts": {"staged": 1, "running": 100, "healthy": 90, "unhealthy": 4},
                             "lifeTime": {"averageSeconds": 20.0, "medianSeconds": 10.0}}}
}"#;

#[test]
fn task_stats_round_trip_in_marathons_shape() {
    let stats = round_trip::<TaskStatsByVersion>(TASK_STATS);
    assert!(stats.with_outdated_config.is_none());
    let total = stats.total_summary.expect("totalSummary").stats;
    assert_eq!(total.counts.running, 100);
    assert_eq!(total.life_time.map(|l| l.median_seconds), Some(10.0));
}

#[test]
fn a_task_says_its_health_and_ports() {
    let tasks = round_trip::<Tasks>(TASKS);
    assert_eq!(tasks.tasks[0].health(), "healthy");
    assert_eq!(tasks.tasks[0].ports_text(), "31000");
}

#[test]
fn an_unhealthy_or_unchecked_task_says_so() {
    let mut task = round_trip::<Tasks>(TASKS).tasks.remove(0);
    task.health_check_results[0].alive = false;
    assert_eq!(task.health(), "unhealthy");
    task.health_check_results.clear();
    task.ports.clear();
    assert_eq!((task.health(), task.ports_text().as_str()), ("-", "-"));
}

#[test]
fn a_validation_error_keeps_its_details() {
    let error = round_trip::<ErrorBody>(ERROR_422);
    let details = error.details.unwrap_or_default();
    assert_eq!(details[0].path, "/id");
    assert_eq!(
        round_trip::<ErrorBody>(ERROR_409)
            .deployments
            .map(|d| d.len()),
        Some(1)
    );
}

#[test]
fn a_wrong_shape_is_an_error_naming_the_endpoint_and_the_field() {
    let wire = serde_json::json!({"local_region": "local", "nodes": [{"type": "agent", "id": 7}]});
    let error = decode::<Nodes>("GET /v1/nodes", wire).expect_err("an id must be text");
    assert_eq!(error.endpoint, "GET /v1/nodes");
    assert!(error.path.starts_with("nodes[0]"), "path: {}", error.path);
    assert!(error.to_string().contains("GET /v1/nodes"), "{error}");
}

#[test]
fn the_overall_status_is_the_worst_check() {
    let health = round_trip::<ClusterHealth>(CLUSTER_HEALTH);
    let worst = health.checks.iter().map(|c| c.status).max();
    assert_eq!(Some(health.status), worst);
    assert!(health.checks.iter().any(|c| c.zones.is_some()));
}

#[test]
fn mesos_state_round_trips() {
    round_trip::<mesos::MesosState>(MESOS_STATE);
}

#[test]
fn mesos_summary_round_trips() {
    round_trip::<mesos::StateSummary>(MESOS_SUMMARY);
}

#[test]
fn mesos_slaves_round_trips() {
    round_trip::<mesos::Slaves>(MESOS_SLAVES);
}

#[test]
fn mesos_dns_leader_round_trips() {
    round_trip::<Vec<mesos::DnsHost>>(MESOS_DNS_LEADER);
}

/// Decodes an event as `/v2/events` carried it, checks its kind, and serializes it again to
/// the very same text: the master publishes this type, so its field order is the wire's too.
fn event_round_trip(fixture: &str, kind: &str) -> Stamped {
    let stamped = round_trip::<Stamped>(fixture);
    assert_eq!(stamped.event.event_type(), kind);
    let text = serde_json::to_string(&stamped).expect("the event serializes");
    assert_eq!(text, fixture, "the event is not the wire's text");
    stamped
}

#[test]
fn status_update_round_trips() {
    event_round_trip(STATUS_UPDATE_EVENT, "status_update_event");
}

#[test]
fn instance_changed_round_trips() {
    event_round_trip(INSTANCE_CHANGED_EVENT, "instance_changed_event");
}

#[test]
fn health_status_changed_round_trips() {
    event_round_trip(HEALTH_STATUS_CHANGED_EVENT, "health_status_changed_event");
}

#[test]
fn failed_health_check_round_trips() {
    event_round_trip(FAILED_HEALTH_CHECK_EVENT, "failed_health_check_event");
}

#[test]
fn unhealthy_instance_kill_round_trips() {
    event_round_trip(
        UNHEALTHY_INSTANCE_KILL_EVENT,
        "unhealthy_instance_kill_event",
    );
}

#[test]
fn api_post_round_trips() {
    event_round_trip(API_POST_EVENT, "api_post_event");
}

#[test]
fn deployment_info_round_trips() {
    event_round_trip(DEPLOYMENT_INFO, "deployment_info");
}

#[test]
fn deployment_success_round_trips() {
    event_round_trip(DEPLOYMENT_SUCCESS, "deployment_success");
}

#[test]
fn deployment_failed_round_trips() {
    event_round_trip(DEPLOYMENT_FAILED, "deployment_failed");
}

#[test]
fn deployment_step_success_round_trips() {
    event_round_trip(DEPLOYMENT_STEP_SUCCESS, "deployment_step_success");
}

#[test]
fn app_terminated_round_trips() {
    event_round_trip(APP_TERMINATED_EVENT, "app_terminated_event");
}

#[test]
fn eviction_protection_round_trips() {
    event_round_trip(EVICTION_PROTECTION_EVENT, "eviction_protection_event");
}

#[test]
fn event_stream_attached_round_trips() {
    event_round_trip(EVENT_STREAM_ATTACHED, "event_stream_attached");
}

#[test]
fn event_stream_detached_round_trips() {
    event_round_trip(EVENT_STREAM_DETACHED, "event_stream_detached");
}

#[test]
fn subscription_events_round_trip() {
    event_round_trip(SUBSCRIBE_EVENT, "subscribe_event");
    event_round_trip(UNSUBSCRIBE_EVENT, "unsubscribe_event");
}

#[test]
fn instance_health_changed_round_trips() {
    event_round_trip(
        INSTANCE_HEALTH_CHANGED_EVENT,
        "instance_health_changed_event",
    );
}

#[test]
fn event_subscriptions_read_as_marathon_lists_them() {
    let listed = round_trip::<client::EventSubscriptions>(
        r#"{"callbackUrls":["http://127.0.0.1:39443/drover/events?via=test"]}"#,
    );
    assert_eq!(listed.callback_urls.len(), 1);
}

#[test]
fn an_events_type_is_its_tag() {
    let stamped = event_round_trip(STATUS_UPDATE_EVENT, "status_update_event");
    let Event::StatusUpdateEvent {
        task_status,
        message,
        zone,
        ..
    } = &stamped.event
    else {
        panic!("not a status update: {stamped:?}");
    };
    assert_eq!(task_status, "TASK_KILLED");
    assert!(message.as_deref().is_some_and(|m| m.contains("SIGTERM")));
    assert_eq!(zone.as_deref(), Some("local-a"));
    let wire: Value = serde_json::from_str(DEPLOYMENT_INFO).expect("JSON");
    let Event::DeploymentInfo { plan, current_step } = decode::<Stamped>("GET /v2/events", wire)
        .unwrap_or_else(|e| panic!("{e}"))
        .event
    else {
        panic!("not a deployment_info");
    };
    assert_eq!(current_step.as_ref(), plan.steps.first());
    assert_eq!(plan.affected_apps(), ["/web"]);
    // Exactly the fields of marathon-python's MarathonDeploymentPlan.
    let fields = serde_json::to_value(&plan).unwrap();
    let mut keys: Vec<&str> = fields
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, ["id", "original", "steps", "target", "version"]);
}

#[test]
fn an_unknown_event_type_is_an_error_naming_it() {
    let wire =
        serde_json::json!({"eventType": "no_such_event", "timestamp": "2026-12-01T15:10:05.488Z"});
    let error = decode::<Stamped>("GET /v2/events", wire).expect_err("an unknown kind");
    assert!(error.problem.contains("no_such_event"), "{error}");
}

const NODES: &str = r#"{
 "local_region": "local",
 "nodes": [
  {
   "type": "master",
   "id": "1",
   "hostname": "127.0.0.1",
   "ip": "127.0.0.1",
   "address": "127.0.0.1:18480",
   "leader": true,
   "region": "local",
   "zone": "local-a",
   "remote": false
  },
  {
   "type": "agent",
   "id": "c3404f75-d6a9-4b6f-8db4-4b7f78a54668",
   "hostname": "agent-local-a-1",
   "ip": "127.0.1.1",
   "region": "local",
   "zone": "local-a",
   "remote": false,
   "state": "active",
   "tasks": 1,
   "resources": {
    "cpus": 2.0,
    "mem": 2048.0,
    "disk": 10000.0,
    "ports": "[31000-31099]"
   },
   "used": {
    "cpus": 0.1,
    "mem": 64.0
   },
   "attributes": {
    "rack": "local-a-r1"
   },
   "rtt_ms": 0,
   "disk_use": {
    "work_dir_bytes": 28672,
    "sandboxes": 1,
    "available_bytes": 25331286016,
    "total_bytes": 270553174016
   },
   "rtt_warning": false,
   "registered_at": "2026-12-01T12:18:35.651Z"
  },
  {
   "type": "agent",
   "id": "1431c581-0a07-4a09-be6f-cfde0f78aade",
   "hostname": "agent-local-b-1",
   "ip": "127.0.1.2",
   "region": "local",
   "zone": "local-b",
   "remote": false,
   "state": "active",
   "tasks": 1,
   "resources": {
    "cpus": 2.0,
    "mem": 2048.0,
    "disk": 10000.0,
    "ports": "[31100-31199]"
   },
   "used": {
    "cpus": 0.1,
    "mem": 64.0
   },
   "attributes": {
    "rack": "local-b-r1"
   },
   "rtt_ms": 0,
   "disk_use": {
    "work_dir_bytes": 28672,
    "sandboxes": 1,
    "available_bytes": 25357053952,
    "total_bytes": 270553174016
   },
   "rtt_warning": false,
   "registered_at": "2026-12-01T12:18:35.658Z"
  }
 ]
}"#;

const CLUSTER_HEALTH: &str = r#"{
 "status": "warn",
 "checks": [
  {
   "name": "masters-count",
   "status": "warn",
   "reason": "1 master: losing it stops every change; run 3 or 5 for high availability"
  },
  {
   "name": "masters-region",
   "status": "pass",
   "reason": "all masters are in region local"
  },
  {
   "name": "masters-zones",
   "status": "pass",
   "reason": "1 masters in 1 zones"
  },
  {
   "name": "agents-reachable",
   "status": "pass",
   "reason": "all 12 agents answer"
  },
  {
   "name": "agents-rtt",
   "status": "pass",
   "reason": "every agent answers the leader in under 100 ms"
  },
  {
   "name": "group-by-balance",
   "status": "pass",
   "reason": "every GROUP_BY is balanced within one"
  },
  {
   "name": "eviction-protection",
   "status": "pass",
   "reason": "not engaged: every zone is healthy",
   "zones": [
    {
     "zone": "aws-us-east1-a",
     "state": "healthy",
     "agents": 1,
     "unreachable": 0
    },
    {
     "zone": "aws-us-east1-b",
     "state": "healthy",
     "agents": 1,
     "unreachable": 0
    },
    {
     "zone": "aws-us-east1-c",
     "state": "healthy",
     "agents": 1,
     "unreachable": 0
    },
    {
     "zone": "aws-us-east1-d",
     "state": "healthy",
     "agents": 1,
     "unreachable": 0
    },
    {
     "zone": "aws-us-east2-a",
     "state": "healthy",
     "agents": 1,
     "unreachable": 0
    },
    {
     "zone": "aws-us-east2-b",
     "state": "healthy",
     "agents": 1,
     "unreachable": 0
    },
    {
     "zone": "aws-us-east2-c",
     "state": "healthy",
     "agents": 1,
     "unreachable": 0
    },
    {
     "zone": "aws-us-east2-d",
     "state": "healthy",
     "agents": 1,
     "unreachable": 0
    },
    {
     "zone": "local-a",
     "state": "healthy",
     "agents": 1,
     "unreachable": 0
    },
    {
     "zone": "local-b",
     "state": "healthy",
     "agents": 1,
     "unreachable": 0
    },
    {
     "zone": "local-c",
     "state": "healthy",
     "agents": 1,
     "unreachable": 0
    },
    {
     "zone": "local-d",
     "state": "healthy",
     "agents": 1,
     "unreachable": 0
    }
   ]
  },
  {
   "name": "scheduler",
   "status": "pass",
   "reason": "every app was decided about in the last pass"
  },
  {
   "name": "instances-placed",
   "status": "warn",
   "reason": "/too-big: 3 unplaced — insufficient mem (4 agents), remote region (8 agents)"
  }
 ],
 "zones": [
  {
   "zone": "aws-us-east1-a",
   "state": "healthy",
   "agents": 1,
   "unreachable": 0
  },
  {
   "zone": "aws-us-east1-b",
   "state": "healthy",
   "agents": 1,
   "unreachable": 0
  },
  {
   "zone": "aws-us-east1-c",
   "state": "healthy",
   "agents": 1,
   "unreachable": 0
  },
  {
   "zone": "aws-us-east1-d",
   "state": "healthy",
   "agents": 1,
   "unreachable": 0
  },
  {
   "zone": "aws-us-east2-a",
   "state": "healthy",
   "agents": 1,
   "unreachable": 0
  },
  {
   "zone": "aws-us-east2-b",
   "state": "healthy",
   "agents": 1,
   "unreachable": 0
  },
  {
   "zone": "aws-us-east2-c",
   "state": "healthy",
   "agents": 1,
   "unreachable": 0
  },
  {
   "zone": "aws-us-east2-d",
   "state": "healthy",
   "agents": 1,
   "unreachable": 0
  },
  {
   "zone": "local-a",
   "state": "healthy",
   "agents": 1,
   "unreachable": 0
  },
  {
   "zone": "local-b",
   "state": "healthy",
   "agents": 1,
   "unreachable": 0
  },
  {
   "zone": "local-c",
   "state": "healthy",
   "agents": 1,
   "unreachable": 0
  },
  {
   "zone": "local-d",
   "state": "healthy",
   "agents": 1,
   "unreachable": 0
  }
 ]
}"#;

const PLAN: &str = r#"{
 "local_region": "local",
 "running": 0,
 "placements": [
  {
   "agent_id": "12fada09-48cb-45e4-b1a1-38431388e66c",
   "hostname": "agent-aws-us-east1-a-1",
   "region": "aws-us-east1",
   "zone": "aws-us-east1-a",
   "ports": [
    31400
   ]
  },
  {
   "agent_id": "6fef2614-927a-4900-a345-b6802b8a0314",
   "hostname": "agent-aws-us-east1-b-1",
   "region": "aws-us-east1",
   "zone": "aws-us-east1-b",
   "ports": [
    31500
   ]
  },
  {
   "agent_id": "5248d2ca-33e1-49cc-918e-0613216a018f",
   "hostname": "agent-aws-us-east1-c-1",
   "region": "aws-us-east1",
   "zone": "aws-us-east1-c",
   "ports": [
    31600
   ]
  },
  {
   "agent_id": "0bf2375d-da61-4206-8344-f4e61a700064",
   "hostname": "agent-aws-us-east1-d-1",
   "region": "aws-us-east1",
   "zone": "aws-us-east1-d",
   "ports": [
    31700
   ]
  },
  {
   "agent_id": "12fada09-48cb-45e4-b1a1-38431388e66c",
   "hostname": "agent-aws-us-east1-a-1",
   "region": "aws-us-east1",
   "zone": "aws-us-east1-a",
   "ports": [
    31401
   ]
  },
  {
   "agent_id": "6fef2614-927a-4900-a345-b6802b8a0314",
   "hostname": "agent-aws-us-east1-b-1",
   "region": "aws-us-east1",
   "zone": "aws-us-east1-b",
   "ports": [
    31501
   ]
  }
 ],
 "unplaced": 0,
 "reasons": {}
}"#;

const INFO: &str = r#"{
 "name": "drover",
 "version": "0.1.0",
 "leader": "127.0.0.1:18480",
 "elected": true,
 "frameworkId": "e4db656a-0984-46d6-b012-d9693bab8aba",
 "http_config": {
  "http_port": 18480
 },
 "marathon_config": {
  "framework_name": "drover",
  "ha": false,
  "hostname": "127.0.0.1",
  "features": []
 },
 "zookeeper_config": {}
}"#;

const DROVER_INFO: &str = r#"{
 "id": 1,
 "region": "local",
 "zone": "local-a",
 "raft": {
  "term": 1,
  "state": "leader",
  "members": [
   {
    "id": 1,
    "address": "127.0.0.1:18480"
   }
  ],
  "commitIndex": 29,
  "lastLogIndex": 29
 }
}"#;

const LEADER: &str = r#"{
 "leader": "127.0.0.1:18480"
}"#;

const PROCESS_HEALTH: &str = r#"{
 "id": 1,
 "role": "leader",
 "term": 1,
 "leader": "127.0.0.1:18480",
 "region": "local",
 "zone": "local-a",
 "initialized": true,
 "cluster_id": "e4db656a-0984-46d6-b012-d9693bab8aba",
 "registered_masters": [1, 2, 3],
 "members": [1, 2, 3]
}"#;

/// `GET /v1/operator/masters`, as a 3-master cluster answered it.
const MASTERS_LIST: &str = r#"{
 "leader": 1,
 "lastLogIndex": 5,
 "masters": [
  {"id": 1, "address": "127.0.0.1:18081", "zone": "z1", "role": "voter", "leader": true, "lastContactMs": 0, "logLag": 0},
  {"id": 2, "address": "127.0.0.1:18082", "zone": "z2", "role": "voter", "leader": false, "lastContactMs": 135, "logLag": 0},
  {"id": 4, "address": "127.0.0.1:18084", "zone": null, "role": "learner", "leader": false, "lastContactMs": null, "logLag": 6}
 ]
}"#;

const TASKS: &str = r#"{
 "tasks": [
  {
   "id": "http-service.instance-06122efb-e744-4dd6-9dfa-6a2823159270",
   "appId": "/http-service",
   "host": "agent-local-a-1",
   "ipAddresses": [
    {
     "ipAddress": "127.0.1.1",
     "protocol": "IPv4"
    }
   ],
   "ports": [
    31000
   ],
   "servicePorts": [],
   "slaveId": "c3404f75-d6a9-4b6f-8db4-4b7f78a54668",
   "state": "TASK_RUNNING",
   "stagedAt": "2026-12-01T12:18:43.404Z",
   "startedAt": "2026-12-01T12:18:43.422Z",
   "version": "2026-12-01T12:18:43.399Z",
   "healthCheckResults": [
    {
     "instanceId": "http-service.instance-06122efb-e744-4dd6-9dfa-6a2823159270",
     "alive": true,
     "consecutiveFailures": 0,
     "lastFailureCause": null,
     "lastSuccess": "2026-12-01T12:18:58.424Z",
     "lastFailure": null
    }
   ],
   "region": "local",
   "zone": "local-a"
  }
 ]
}"#;

const APPS: &str = r#"{
 "apps": [
  {
   "id": "/http-service",
   "cmd": "python3 -m http.server \"$PORT0\"",
   "instances": 4,
   "cpus": 0.1,
   "mem": 64.0,
   "disk": 0.0,
   "portDefinitions": [
    {
     "port": 0,
     "protocol": "tcp",
     "name": "http"
    }
   ],
   "requirePorts": false,
   "env": {},
   "labels": {},
   "constraints": [
    [
     "@zone",
     "GROUP_BY"
    ]
   ],
   "healthChecks": [
    {
     "protocol": "HTTP",
     "gracePeriodSeconds": 30.0,
     "intervalSeconds": 5.0,
     "timeoutSeconds": 3.0,
     "maxConsecutiveFailures": 3,
     "delaySeconds": 15.0,
     "path": "/",
     "ignoreHttp1xx": false,
     "portIndex": 0
    }
   ],
   "upgradeStrategy": {
    "minimumHealthCapacity": 1.0,
    "maximumOverCapacity": 1.0
   },
   "backoffSeconds": 1.0,
   "backoffFactor": 1.15,
   "maxLaunchDelaySeconds": 300.0,
   "killSelection": "YOUNGEST_FIRST",
   "unreachableStrategy": {
    "inactiveAfterSeconds": 0.0,
    "expungeAfterSeconds": 0.0
   },
   "version": "2026-12-01T12:18:43.399Z",
   "versionInfo": {
    "lastConfigChangeAt": "2026-12-01T12:18:43.399Z",
    "lastScalingAt": "2026-12-01T12:18:43.399Z"
   },
   "tasksStaged": 0,
   "tasksRunning": 4,
   "tasksHealthy": 4,
   "tasksUnhealthy": 0,
   "deployments": []
  },
  {
   "id": "/too-big",
   "cmd": "sleep 100000",
   "instances": 3,
   "cpus": 0.5,
   "mem": 16384.0,
   "disk": 0.0,
   "portDefinitions": [
    {
     "port": 0,
     "protocol": "tcp",
     "name": "default"
    }
   ],
   "requirePorts": false,
   "env": {},
   "labels": {},
   "constraints": [
    [
     "@zone",
     "GROUP_BY",
     "4"
    ]
   ],
   "healthChecks": [],
   "upgradeStrategy": {
    "minimumHealthCapacity": 1.0,
    "maximumOverCapacity": 1.0
   },
   "backoffSeconds": 1.0,
   "backoffFactor": 1.15,
   "maxLaunchDelaySeconds": 300.0,
   "killSelection": "YOUNGEST_FIRST",
   "unreachableStrategy": {
    "inactiveAfterSeconds": 0.0,
    "expungeAfterSeconds": 0.0
   },
   "version": "2026-12-01T12:18:43.419Z",
   "versionInfo": {
    "lastConfigChangeAt": "2026-12-01T12:18:43.419Z",
    "lastScalingAt": "2026-12-01T12:18:43.419Z"
   },
   "tasksStaged": 0,
   "tasksRunning": 0,
   "tasksHealthy": 0,
   "tasksUnhealthy": 0,
   "deployments": [
    {
     "id": "843f9589-da1d-41e5-912a-0e29d96dea95"
    }
   ]
  }
 ]
}"#;

const APP: &str = r#"{
 "app": {
  "id": "/http-service",
  "cmd": "python3 -m http.server \"$PORT0\"",
  "instances": 4,
  "cpus": 0.1,
  "mem": 64.0,
  "disk": 0.0,
  "portDefinitions": [
   {
    "port": 0,
    "protocol": "tcp",
    "name": "http"
   }
  ],
  "requirePorts": false,
  "env": {},
  "labels": {},
  "constraints": [
   [
    "@zone",
    "GROUP_BY"
   ]
  ],
  "healthChecks": [
   {
    "protocol": "HTTP",
    "gracePeriodSeconds": 30.0,
    "intervalSeconds": 5.0,
    "timeoutSeconds": 3.0,
    "maxConsecutiveFailures": 3,
    "delaySeconds": 15.0,
    "path": "/",
    "ignoreHttp1xx": false,
    "portIndex": 0
   }
  ],
  "upgradeStrategy": {
   "minimumHealthCapacity": 1.0,
   "maximumOverCapacity": 1.0
  },
  "backoffSeconds": 1.0,
  "backoffFactor": 1.15,
  "maxLaunchDelaySeconds": 300.0,
  "killSelection": "YOUNGEST_FIRST",
  "unreachableStrategy": {
   "inactiveAfterSeconds": 0.0,
   "expungeAfterSeconds": 0.0
  },
  "version": "2026-12-01T12:18:43.399Z",
  "versionInfo": {
   "lastConfigChangeAt": "2026-12-01T12:18:43.399Z",
   "lastScalingAt": "2026-12-01T12:18:43.399Z"
  },
  "tasksStaged": 0,
  "tasksRunning": 4,
  "tasksHealthy": 4,
  "tasksUnhealthy": 0,
  "deployments": [],
  "tasks": [
   {
    "id": "http-service.instance-06122efb-e744-4dd6-9dfa-6a2823159270",
    "appId": "/http-service",
    "host": "agent-local-a-1",
    "ipAddresses": [
     {
      "ipAddress": "127.0.1.1",
      "protocol": "IPv4"
     }
    ],
    "ports": [
     31000
    ],
    "servicePorts": [],
    "slaveId": "c3404f75-d6a9-4b6f-8db4-4b7f78a54668",
    "state": "TASK_RUNNING",
    "stagedAt": "2026-12-01T12:18:43.404Z",
    "startedAt": "2026-12-01T12:18:43.422Z",
    "version": "2026-12-01T12:18:43.399Z",
    "healthCheckResults": [
     {
      "instanceId": "http-service.instance-06122efb-e744-4dd6-9dfa-6a2823159270",
      "alive": true,
      "consecutiveFailures": 0,
      "lastFailureCause": null,
      "lastSuccess": "2026-12-01T12:18:58.424Z",
      "lastFailure": null
     }
    ],
    "region": "local",
    "zone": "local-a"
   }
  ]
 }
}"#;

const APP_VERSION: &str = r#"{
 "id": "/http-service",
 "cmd": "python3 -m http.server \"$PORT0\"",
 "instances": 4,
 "cpus": 0.1,
 "mem": 64.0,
 "disk": 0.0,
 "portDefinitions": [
  {
   "port": 0,
   "protocol": "tcp",
   "name": "http"
  }
 ],
 "requirePorts": false,
 "env": {},
 "labels": {},
 "constraints": [
  [
   "@zone",
   "GROUP_BY"
  ]
 ],
 "healthChecks": [
  {
   "protocol": "HTTP",
   "gracePeriodSeconds": 30.0,
   "intervalSeconds": 5.0,
   "timeoutSeconds": 3.0,
   "maxConsecutiveFailures": 3,
   "delaySeconds": 15.0,
   "path": "/",
   "ignoreHttp1xx": false,
   "portIndex": 0
  }
 ],
 "upgradeStrategy": {
  "minimumHealthCapacity": 1.0,
  "maximumOverCapacity": 1.0
 },
 "backoffSeconds": 1.0,
 "backoffFactor": 1.15,
 "maxLaunchDelaySeconds": 300.0,
 "killSelection": "YOUNGEST_FIRST",
 "unreachableStrategy": {
  "inactiveAfterSeconds": 0.0,
  "expungeAfterSeconds": 0.0
 },
 "version": "2026-12-01T12:18:43.399Z",
 "versionInfo": {
  "lastConfigChangeAt": "2026-12-01T12:18:43.399Z",
  "lastScalingAt": "2026-12-01T12:18:43.399Z"
 }
}"#;

const VERSIONS: &str = r#"{
 "versions": [
  "2026-12-01T12:18:43.399Z"
 ]
}"#;

const DEPLOYMENTS: &str = r#"[
 {
  "id": "843f9589-da1d-41e5-912a-0e29d96dea95",
  "version": "2026-12-01T12:18:43.419Z",
  "affectedApps": [
   "/too-big"
  ],
  "affectedPods": [],
  "steps": [
   {
    "actions": [
     {
      "action": "StartApplication",
      "app": "/too-big"
     }
    ]
   }
  ],
  "currentActions": [
   {
    "action": "StartApplication",
    "app": "/too-big",
    "readinessCheckResults": []
   }
  ],
  "currentStep": 1,
  "totalSteps": 1
 }
]"#;

const QUEUE: &str = r#"{
 "queue": [
  {
   "app": {
    "id": "/too-big",
    "cmd": "sleep 100000",
    "instances": 3,
    "cpus": 0.5,
    "mem": 16384.0,
    "disk": 0.0,
    "portDefinitions": [
     {
      "port": 0,
      "protocol": "tcp",
      "name": "default"
     }
    ],
    "requirePorts": false,
    "env": {},
    "labels": {},
    "constraints": [
     [
      "@zone",
      "GROUP_BY",
      "4"
     ]
    ],
    "healthChecks": [],
    "upgradeStrategy": {
     "minimumHealthCapacity": 1.0,
     "maximumOverCapacity": 1.0
    },
    "backoffSeconds": 1.0,
    "backoffFactor": 1.15,
    "maxLaunchDelaySeconds": 300.0,
    "killSelection": "YOUNGEST_FIRST",
    "unreachableStrategy": {
     "inactiveAfterSeconds": 0.0,
     "expungeAfterSeconds": 0.0
    }
   },
   "count": 3,
   "delay": {
    "timeLeftSeconds": 0,
    "overdue": true
   },
   "processedOffersSummary": {
    "processedOffersCount": 12,
    "unusedOffersCount": 12,
    "rejectSummaryLastOffer": [
     {
      "reason": "insufficient mem",
      "declined": 4,
      "processed": 12
     },
     {
      "reason": "remote region",
      "declined": 8,
      "processed": 12
     }
    ]
   }
  }
 ]
}"#;

const ERROR_422: &str = r#"{
 "message": "Object is not valid",
 "details": [
  {
   "path": "/id",
   "errors": [
    "must fully match regular expression '^(([a-z0-9]|[a-z0-9][a-z0-9\\-]*[a-z0-9])\\.)*([a-z0-9]|[a-z0-9][a-z0-9\\-]*[a-z0-9])|(\\.|\\.\\.)$'"
   ]
  },
  {
   "path": "/instances",
   "errors": [
    "got -1, expected 0 or more"
   ]
  },
  {
   "path": "/constraints(0)",
   "errors": [
    "@region only supports IS (or CLUSTER with a value) because a service runs in exactly one region; use [\"@region\",\"IS\",\"<name>\"]"
   ]
  },
  {
   "path": "/constraints(1)",
   "errors": [
    "UNIQUE does not accept a value"
   ]
  },
  {
   "path": "/constraints(2)",
   "errors": [
    "LIKE and UNLIKE require a non-empty, regular expression value"
   ]
  }
 ]
}"#;

const ERROR_409: &str = r#"{
 "message": "App is locked by one or more deployments. Override with the option '?force=true'. View details at '/v2/deployments/843f9589-da1d-41e5-912a-0e29d96dea95'.",
 "deployments": [
  {
   "id": "843f9589-da1d-41e5-912a-0e29d96dea95"
  }
 ]
}"#;

const ERROR_AGENT_ID_IN_USE: &str = r#"{
 "message": "agent a-1 is live at 127.0.0.2 (last heartbeat 80 ms ago), and this agent at 127.0.0.3 has the same id: its work dir was copied from that agent's.",
 "reason": "agent_id_in_use",
 "agent_id": "a-1",
 "live_ip": "127.0.0.2",
 "ip": "127.0.0.3"
}"#;

const ERROR_404: &str = r#"{
 "message": "App '/nope' does not exist"
}"#;

const MESOS_STATE: &str = r#"{
 "version": "drover-0.1.0",
 "id": "e4db656a-0984-46d6-b012-d9693bab8aba",
 "cluster": "drover",
 "leader": "master@127.0.0.1:18480",
 "leader_info": {
  "id": "1",
  "hostname": "127.0.0.1",
  "ip": "127.0.0.1",
  "port": 18480,
  "domain": {
   "fault_domain": {
    "region": {
     "name": "local"
    },
    "zone": {
     "name": "local-a"
    }
   }
  }
 },
 "hostname": "127.0.0.1",
 "domain": {
  "fault_domain": {
   "region": {
    "name": "local"
   },
   "zone": {
    "name": "local-a"
   }
  }
 },
 "activated_slaves": 12,
 "deactivated_slaves": 0,
 "unreachable_slaves": 0,
 "slaves": [
  {
   "id": "0bf2375d-da61-4206-8344-f4e61a700064",
   "hostname": "agent-aws-us-east1-d-1",
   "pid": "slave(1)@127.0.1.8:5051",
   "active": true,
   "registered_time": 1796127515.691,
   "resources": {
    "cpus": 2.0,
    "mem": 2048.0,
    "disk": 10000.0,
    "ports": "[31700-31799]"
   },
   "used_resources": {
    "cpus": 0.0,
    "mem": 0.0,
    "disk": 0.0
   },
   "attributes": {
    "rack": "aws-us-east1-d-r1"
   },
   "domain": {
    "fault_domain": {
     "region": {
      "name": "aws-us-east1"
     },
     "zone": {
      "name": "aws-us-east1-d"
     }
    }
   },
   "TASK_RUNNING": 0
  },
  {
   "id": "0d71019b-f326-4e57-b842-2308e3c7753c",
   "hostname": "agent-aws-us-east2-a-1",
   "pid": "slave(1)@127.0.1.9:5051",
   "active": true,
   "registered_time": 1796127515.691,
   "resources": {
    "cpus": 2.0,
    "mem": 2048.0,
    "disk": 10000.0,
    "ports": "[31800-31899]"
   },
   "used_resources": {
    "cpus": 0.0,
    "mem": 0.0,
    "disk": 0.0
   },
   "attributes": {
    "rack": "aws-us-east2-a-r1"
   },
   "domain": {
    "fault_domain": {
     "region": {
      "name": "aws-us-east2"
     },
     "zone": {
      "name": "aws-us-east2-a"
     }
    }
   },
   "TASK_RUNNING": 0
  }
 ],
 "frameworks": [
  {
   "id": "e4db656a-0984-46d6-b012-d9693bab8aba",
   "name": "marathon",
   "active": true,
   "tasks": [
    {
     "id": "http-service.instance-402c7140-2f9d-41f7-be4d-ef8e3a48b37c",
     "name": "http-service",
     "framework_id": "e4db656a-0984-46d6-b012-d9693bab8aba",
     "slave_id": "c3404f75-d6a9-4b6f-8db4-4b7f78a54668",
     "state": "TASK_RUNNING",
     "resources": {},
     "region": "local",
     "zone": "local-a"
    }
   ]
  }
 ]
}"#;

const MESOS_SUMMARY: &str = r#"{
 "hostname": "127.0.0.1",
 "cluster": "drover",
 "leader_info": {
  "id": "1",
  "hostname": "127.0.0.1",
  "ip": "127.0.0.1",
  "port": 18480,
  "domain": {
   "fault_domain": {
    "region": {
     "name": "local"
    },
    "zone": {
     "name": "local-a"
    }
   }
  }
 },
 "slaves": [
  {
   "id": "0bf2375d-da61-4206-8344-f4e61a700064",
   "hostname": "agent-aws-us-east1-d-1",
   "pid": "slave(1)@127.0.1.8:5051",
   "active": true,
   "registered_time": 1796127515.691,
   "resources": {
    "cpus": 2.0,
    "mem": 2048.0,
    "disk": 10000.0,
    "ports": "[31700-31799]"
   },
   "used_resources": {
    "cpus": 0.0,
    "mem": 0.0,
    "disk": 0.0
   },
   "attributes": {
    "rack": "aws-us-east1-d-r1"
   },
   "domain": {
    "fault_domain": {
     "region": {
      "name": "aws-us-east1"
     },
     "zone": {
      "name": "aws-us-east1-d"
     }
    }
   },
   "TASK_RUNNING": 0
  },
  {
   "id": "0d71019b-f326-4e57-b842-2308e3c7753c",
   "hostname": "agent-aws-us-east2-a-1",
   "pid": "slave(1)@127.0.1.9:5051",
   "active": true,
   "registered_time": 1796127515.691,
   "resources": {
    "cpus": 2.0,
    "mem": 2048.0,
    "disk": 10000.0,
    "ports": "[31800-31899]"
   },
   "used_resources": {
    "cpus": 0.0,
    "mem": 0.0,
    "disk": 0.0
   },
   "attributes": {
    "rack": "aws-us-east2-a-r1"
   },
   "domain": {
    "fault_domain": {
     "region": {
      "name": "aws-us-east2"
     },
     "zone": {
      "name": "aws-us-east2-a"
     }
    }
   },
   "TASK_RUNNING": 0
  }
 ],
 "frameworks": [
  {
   "id": "e4db656a-0984-46d6-b012-d9693bab8aba",
   "name": "marathon",
   "active": true
  }
 ]
}"#;

const MESOS_SLAVES: &str = r#"{
 "slaves": [
  {
   "id": "0bf2375d-da61-4206-8344-f4e61a700064",
   "hostname": "agent-aws-us-east1-d-1",
   "pid": "slave(1)@127.0.1.8:5051",
   "active": true,
   "registered_time": 1796127515.691,
   "resources": {
    "cpus": 2.0,
    "mem": 2048.0,
    "disk": 10000.0,
    "ports": "[31700-31799]"
   },
   "used_resources": {
    "cpus": 0.0,
    "mem": 0.0,
    "disk": 0.0
   },
   "attributes": {
    "rack": "aws-us-east1-d-r1"
   },
   "domain": {
    "fault_domain": {
     "region": {
      "name": "aws-us-east1"
     },
     "zone": {
      "name": "aws-us-east1-d"
     }
    }
   },
   "TASK_RUNNING": 0
  },
  {
   "id": "0d71019b-f326-4e57-b842-2308e3c7753c",
   "hostname": "agent-aws-us-east2-a-1",
   "pid": "slave(1)@127.0.1.9:5051",
   "active": true,
   "registered_time": 1796127515.691,
   "resources": {
    "cpus": 2.0,
    "mem": 2048.0,
    "disk": 10000.0,
    "ports": "[31800-31899]"
   },
   "used_resources": {
    "cpus": 0.0,
    "mem": 0.0,
    "disk": 0.0
   },
   "attributes": {
    "rack": "aws-us-east2-a-r1"
   },
   "domain": {
    "fault_domain": {
     "region": {
      "name": "aws-us-east2"
     },
     "zone": {
      "name": "aws-us-east2-a"
     }
    }
   },
   "TASK_RUNNING": 0
  }
 ]
}"#;

const MESOS_DNS_LEADER: &str = r#"[
 {
  "host": "leader.mesos.",
  "ip": "127.0.0.1"
 }
]"#;

// `/v2/events` of a one-master `drover dev` (main at bfa72e7, two agents in zones local-a and
// local-b; apps /web, /sick with a failing health check, /stuck too big; the /stuck deployment
// cancelled, /web changed, /stuck deleted, the local-b agent stopped), one event of each kind.

const STATUS_UPDATE_EVENT: &str = r#"{"eventType":"status_update_event","appId":"/sick","taskId":"sick.instance-a9e05c91-dcd7-4b1c-8b5d-10a5deceebe5","instanceId":"sick.instance-a9e05c91-dcd7-4b1c-8b5d-10a5deceebe5","taskStatus":"TASK_KILLED","message":"killed on request; it was ended by signal SIGTERM (15)","host":"agent-local-a-1","agentId":"2c8dc250-bb52-4bef-b30c-ae6643cc395c","slaveId":"2c8dc250-bb52-4bef-b30c-ae6643cc395c","ports":[31001],"version":"2026-12-01T15:10:06.489Z","region":"local","zone":"local-a","timestamp":"2026-12-01T15:10:21.908Z"}"#;

const INSTANCE_CHANGED_EVENT: &str = r#"{"eventType":"instance_changed_event","instanceId":"web.instance-997ce7d4-b0ff-4845-84e7-9f9261aefd3c","runSpecId":"/web","agentId":"2c8dc250-bb52-4bef-b30c-ae6643cc395c","host":"agent-local-a-1","runSpecVersion":"2026-12-01T15:10:06.469Z","condition":"Staging","timestamp":"2026-12-01T15:10:06.760Z"}"#;

const HEALTH_STATUS_CHANGED_EVENT: &str = r#"{"eventType":"health_status_changed_event","appId":"/web","instanceId":"web.instance-997ce7d4-b0ff-4845-84e7-9f9261aefd3c","version":"2026-12-01T15:10:06.469Z","alive":true,"timestamp":"2026-12-01T15:10:21.698Z"}"#;

const FAILED_HEALTH_CHECK_EVENT: &str = r#"{"eventType":"failed_health_check_event","appId":"/sick","instanceId":"sick.instance-a9e05c91-dcd7-4b1c-8b5d-10a5deceebe5","taskId":"sick.instance-a9e05c91-dcd7-4b1c-8b5d-10a5deceebe5","version":"2026-12-01T15:10:06.489Z","cause":"GET http://127.0.0.1:31001/: Connection refused (os error 111)","timestamp":"2026-12-01T15:10:21.699Z"}"#;

const UNHEALTHY_INSTANCE_KILL_EVENT: &str = r#"{"eventType":"unhealthy_instance_kill_event","appId":"/sick","instanceId":"sick.instance-a9e05c91-dcd7-4b1c-8b5d-10a5deceebe5","taskId":"sick.instance-a9e05c91-dcd7-4b1c-8b5d-10a5deceebe5","version":"2026-12-01T15:10:06.489Z","reason":"failed health checks","host":"agent-local-a-1","timestamp":"2026-12-01T15:10:21.757Z"}"#;

const API_POST_EVENT: &str = r#"{"eventType":"api_post_event","clientIp":null,"uri":"/v2/apps/web","appDefinition":{"id":"/web","cmd":"python3 -m http.server \"$PORT0\"","instances":1,"cpus":0.1,"mem":48.0,"disk":0.0,"portDefinitions":[{"port":0,"protocol":"tcp","name":"http"}],"requirePorts":false,"env":{},"labels":{},"constraints":[],"healthChecks":[{"protocol":"HTTP","gracePeriodSeconds":5.0,"intervalSeconds":1.0,"timeoutSeconds":1.0,"maxConsecutiveFailures":3,"delaySeconds":15.0,"path":"/","ignoreHttp1xx":false,"portIndex":0}],"upgradeStrategy":{"minimumHealthCapacity":1.0,"maximumOverCapacity":1.0},"backoffSeconds":1.0,"backoffFactor":1.15,"maxLaunchDelaySeconds":300.0,"killSelection":"YOUNGEST_FIRST","unreachableStrategy":{"inactiveAfterSeconds":0.0,"expungeAfterSeconds":0.0},"version":"2026-12-01T15:10:32.771Z","versionInfo":{"lastConfigChangeAt":"2026-12-01T15:10:32.771Z","lastScalingAt":"2026-12-01T15:10:32.771Z"}},"timestamp":"2026-12-01T15:10:32.784Z"}"#;

const DEPLOYMENT_INFO: &str = r#"{"eventType":"deployment_info","plan":{"id":"ab0ec228-26c9-41ff-9166-4053d1e3a95a","version":"2026-12-01T15:10:06.469Z","original":{"id":"/","apps":[],"groups":[],"pods":[],"dependencies":[],"version":"2026-12-01T15:10:06.469Z"},"target":{"id":"/","apps":[],"groups":[],"pods":[],"dependencies":[],"version":"2026-12-01T15:10:06.469Z"},"steps":[{"actions":[{"action":"StartApplication","app":"/web"}]}]},"currentStep":{"actions":[{"action":"StartApplication","app":"/web"}]},"timestamp":"2026-12-01T15:10:06.472Z"}"#;

const DEPLOYMENT_SUCCESS: &str = r#"{"eventType":"deployment_success","id":"ab0ec228-26c9-41ff-9166-4053d1e3a95a","plan":{"id":"ab0ec228-26c9-41ff-9166-4053d1e3a95a","version":"2026-12-01T15:10:06.469Z","original":{"id":"/","apps":[],"groups":[],"pods":[],"dependencies":[],"version":"2026-12-01T15:10:06.469Z"},"target":{"id":"/","apps":[],"groups":[],"pods":[],"dependencies":[],"version":"2026-12-01T15:10:06.469Z"},"steps":[{"actions":[{"action":"StartApplication","app":"/web"}]}]},"timestamp":"2026-12-01T15:10:21.701Z"}"#;

const DEPLOYMENT_FAILED: &str = r#"{"eventType":"deployment_failed","id":"988d43bc-9a55-4ed8-8a44-add010a2b26a","plan":{"id":"988d43bc-9a55-4ed8-8a44-add010a2b26a","version":"2026-12-01T15:10:06.516Z","original":{"id":"/","apps":[],"groups":[],"pods":[],"dependencies":[],"version":"2026-12-01T15:10:06.516Z"},"target":{"id":"/","apps":[],"groups":[],"pods":[],"dependencies":[],"version":"2026-12-01T15:10:06.516Z"},"steps":[{"actions":[{"action":"StartApplication","app":"/stuck"}]}]},"reason":"cancelled","timestamp":"2026-12-01T15:10:32.760Z"}"#;

const DEPLOYMENT_STEP_SUCCESS: &str = r#"{"eventType":"deployment_step_success","plan":{"id":"ab0ec228-26c9-41ff-9166-4053d1e3a95a","version":"2026-12-01T15:10:06.469Z","original":{"id":"/","apps":[],"groups":[],"pods":[],"dependencies":[],"version":"2026-12-01T15:10:06.469Z"},"target":{"id":"/","apps":[],"groups":[],"pods":[],"dependencies":[],"version":"2026-12-01T15:10:06.469Z"},"steps":[{"actions":[{"action":"StartApplication","app":"/web"}]}]},"currentStep":{"actions":[{"action":"StartApplication","app":"/web"}]},"timestamp":"2026-12-01T15:10:21.701Z"}"#;

const APP_TERMINATED_EVENT: &str = r#"{"eventType":"app_terminated_event","appId":"/stuck","timestamp":"2026-12-01T15:10:32.796Z"}"#;

const EVICTION_PROTECTION_EVENT: &str = r#"{"eventType":"eviction_protection_event","engaged":true,"cutOff":false,"zones":["local-b"],"zoneStates":{"local-a":"healthy","local-b":"outage"},"reason":"zone local-b is out (1 of 1 agents unreachable): its instances are replaced at once in the other zones","timestamp":"2026-12-01T15:10:47.520Z"}"#;

const EVENT_STREAM_ATTACHED: &str = r#"{"eventType":"event_stream_attached","remoteAddress":"client","timestamp":"2026-12-01T15:10:05.488Z"}"#;

const SUBSCRIBE_EVENT: &str = r#"{"eventType":"subscribe_event","clientIp":null,"callbackUrl":"http://127.0.0.1:39443/drover/events?via=test","timestamp":"2026-12-02T01:34:49.301Z"}"#;

const UNSUBSCRIBE_EVENT: &str = r#"{"eventType":"unsubscribe_event","clientIp":null,"callbackUrl":"http://127.0.0.1:39443/drover/events?via=test","timestamp":"2026-12-02T01:34:52.918Z"}"#;

const INSTANCE_HEALTH_CHANGED_EVENT: &str = r#"{"eventType":"instance_health_changed_event","instanceId":"mp_web.instance-5b1c9d1e-0a47-4be4-a2a4-1f4d2f1f0c11","runSpecId":"/mp/web","runSpecVersion":"2026-12-02T01:40:11.020Z","healthy":true,"timestamp":"2026-12-02T01:40:13.532Z"}"#;

const EVENT_STREAM_DETACHED: &str = r#"{"eventType":"event_stream_detached","remoteAddress":"client","timestamp":"2026-12-01T15:10:43.237Z"}"#;
