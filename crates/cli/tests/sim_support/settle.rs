//! After healing: when the cluster has settled, and the checks of the end (committed logs,
//! tasks against committed decisions, the write history read back through the API).

#[allow(clippy::wildcard_imports)]
use super::*;

/// The agents that run now (their last incarnation), by the id their work dir holds.
fn live_agents(
    shared: &Rc<RefCell<Shared>>,
    lost: &BTreeSet<String>,
    plan: &Plan,
    state: &state::ClusterState,
) -> Vec<(AgentId, FakeExecutor)> {
    let s = shared.borrow();
    plan.agents
        .iter()
        .zip(&s.agents)
        .filter(|(spec, slot)| !lost.contains(&spec.name) && !slot.incarnations.is_empty())
        .filter_map(|(_, slot)| {
            let ip = slot.ip.to_string();
            let id = state
                .agents()
                .iter()
                .find(|(_, r)| r.agent.ip == ip)
                .map(|(id, _)| id.clone())?;
            Some((id, slot.incarnations.last()?.clone()))
        })
        .collect()
}

/// The state of the master that applied the most, once every master applied as much.
fn caught_up(disks: &[MemDisk]) -> Option<state::Applied> {
    let applied: Vec<state::Applied> = disks
        .iter()
        .map(|d| d.applied().map(|r| r.snapshot()))
        .collect::<Option<_>>()?;
    let index = |a: &state::Applied| a.last_applied.map(|l| l.index);
    let first = index(&applied[0]);
    applied
        .iter()
        .all(|a| index(a) == first)
        .then(|| applied.into_iter().next())
        .flatten()
}

pub(super) fn settled(
    disks: &[MemDisk],
    shared: &Rc<RefCell<Shared>>,
    lost: &BTreeSet<String>,
    plan: &Plan,
) -> Result<Option<state::Applied>, String> {
    let Some(applied) = caught_up(disks) else {
        return Ok(None);
    };
    let agents = live_agents(shared, lost, plan, &applied.state);
    let expected = plan.agents.len() - lost.len();
    if agents.len() != expected {
        return Ok(None);
    }
    // Settled also means balanced: rebalancing runs once each app has its instances, so a
    // cluster that converged may still be moving one instance at a time.
    Ok((checks::converged(&applied.state, &agents).is_none()
        && checks::group_by_unbalanced(&applied.state).is_none())
    .then_some(applied))
}

pub(super) fn unsettled(
    disks: &[MemDisk],
    shared: &Rc<RefCell<Shared>>,
    lost: &BTreeSet<String>,
) -> String {
    let Some(applied) = caught_up(disks) else {
        let indexes: Vec<_> = disks
            .iter()
            .map(|d| {
                d.applied()
                    .and_then(|r| r.read(|a| a.last_applied.map(|l| l.index)))
            })
            .collect();
        return format!("the masters have not applied the same log: {indexes:?}");
    };
    let s = shared.borrow();
    let agents: Vec<(AgentId, FakeExecutor)> = s
        .agents
        .iter()
        .filter_map(|slot| {
            let ip = slot.ip.to_string();
            let id = applied
                .state
                .agents()
                .iter()
                .find(|(_, r)| r.agent.ip == ip)
                .map(|(id, _)| id.clone())?;
            Some((id, slot.incarnations.last()?.clone()))
        })
        .collect();
    let _ = lost;
    let problems = checks::converged(&applied.state, &agents)
        .or_else(|| checks::group_by_unbalanced(&applied.state))
        .unwrap_or_else(|| "agents missing".into());
    let registry: Vec<String> = applied
        .state
        .agents()
        .values()
        .map(|r| {
            let zone = r.agent.domain.as_ref().map_or("-", |d| d.zone.as_str());
            format!("{} {zone} {:?}", r.agent.hostname, r.state)
        })
        .collect();
    let instances: Vec<String> = applied
        .state
        .instances()
        .values()
        .map(|i| format!("{} on {} {:?}/{:?}", i.id, i.agent_id, i.goal, i.condition))
        .collect();
    format!(
        "{problems}\n  agents: {}\n  instances: {}\n  backoffs: {:?}",
        registry.join(", "),
        instances.join(", "),
        applied.state.backoffs()
    )
}

/// After settling: every instance started at most once per agent incarnation and only if
/// a committed placement put it there; committed logs agree; the write history checks out
/// against what the API serves.
pub(super) fn finish(
    sim: &mut turmoil::Sim<'_>,
    shared: &Rc<RefCell<Shared>>,
    disks: &[MemDisk],
    record: &Rc<RefCell<Record>>,
    ever_ran: &BTreeMap<state::InstanceId, BTreeSet<(usize, usize)>>,
    applied: state::Applied,
    t: Duration,
) -> Result<Finished, String> {
    for i in 0..disks.len() {
        for j in i + 1..disks.len() {
            checks::logs_agree(((i + 1) as u64, &disks[i]), ((j + 1) as u64, &disks[j]))?;
        }
    }
    // No task ran that no committed decision put on its agent, none ran on two agents, and
    // none was stopped by its agent without a committed decision to stop it: an agent acts
    // only on what the current term's committed state says.
    let mut decisions = checks::Decisions::default();
    for disk in disks {
        decisions.read(disk);
    }
    let s = shared.borrow();
    let agent_at = |j: usize| {
        let ip = s.agents[j].ip.to_string();
        applied
            .state
            .agents()
            .iter()
            .find(|(_, r)| r.agent.ip == ip)
            .map(|(id, _)| id.clone())
    };
    for (id, on) in ever_ran {
        let agents: BTreeSet<usize> = on.iter().map(|(j, _)| *j).collect();
        if agents.len() > 1 {
            return Err(format!(
                "{id} ran on more than one agent: {agents:?} (by index)"
            ));
        }
        let Some(&(j, _)) = on.first() else { continue };
        let placed_on = decisions
            .placed
            .get(id)
            .map(|(a, _)| a.clone())
            .or_else(|| {
                applied
                    .state
                    .instances()
                    .get(id)
                    .map(|i| i.agent_id.clone())
            });
        match placed_on {
            None => return Err(format!("{id} ran, but no committed decision placed it")),
            Some(agent) if Some(&agent) != agent_at(j).as_ref() => {
                return Err(format!(
                    "{id} ran on agent index {j}, but it was placed on {agent}"
                ));
            }
            Some(_) => {}
        }
        for &(j, k) in on {
            let signals = s.agents[j].incarnations[k].signals(id);
            if !signals.is_empty() && !decisions.stop_decided(id) {
                return Err(format!(
                    "{id} was stopped ({signals:?}) by agent index {j}, but no committed decision stopped it (an agent acted on a stale assignment)"
                ));
            }
        }
    }
    drop(s);
    // Read back every app and its versions through the API, from a client host of its own.
    let ops = record.borrow().ops.clone();
    let apps: BTreeSet<String> = ops.iter().map(|o| o.app.clone()).collect();
    let observed: Rc<RefCell<Option<ReadBack>>> = Rc::new(RefCell::new(None));
    {
        let observed = observed.clone();
        let addr = format!("{}:{PORT}", master_ip(0));
        sim.client("reader", async move {
            let client = PeerClient::with_connector(net::connector());
            let result = read_back(&client, &addr, &apps).await;
            *observed.borrow_mut() = Some(result);
            Ok(())
        });
    }
    let deadline = t + Duration::from_secs(30);
    while observed.borrow().is_none() {
        sim.step()
            .map_err(|e| format!("the simulation stopped: {e}"))?;
        if sim.elapsed() > deadline {
            return Err("reading the apps back took longer than 30 s".into());
        }
    }
    let observed = observed
        .borrow_mut()
        .take()
        .unwrap_or_else(|| Err("no answer".into()))?;
    let mut errors = Vec::new();
    for (app, seen) in &observed {
        let of_app: Vec<_> = ops.iter().filter(|o| &o.app == app).collect();
        errors.extend(check(app, &of_app, seen));
    }
    if !errors.is_empty() {
        return Err(format!(
            "the write history is not linearizable: {}",
            errors.join("; ")
        ));
    }
    // The final instances end the trace: a replay must leave the same ones.
    let summary: Vec<String> = applied
        .state
        .instances()
        .values()
        .map(|i| format!("end {} {} {:?} {:?}", i.id, i.agent_id, i.goal, i.condition))
        .collect();
    record.borrow_mut().trace.extend(summary.iter().cloned());
    Ok(Finished {
        trace_hash: 0,
        trace: Vec::new(),
        simulated: sim.elapsed(),
        acknowledged: ops
            .iter()
            .filter(|o| matches!(o.outcome, crate::common::history::Outcome::Acknowledged(_)))
            .count(),
        apps: applied.state.apps().len(),
        running: applied
            .state
            .instances()
            .values()
            .filter(|i| i.condition == state::Condition::Running)
            .count(),
    })
}

/// What reading every app back through the API gave.
type ReadBack = Result<BTreeMap<String, Observed>, String>;

/// The current `labels.op` and the version history of each app, through the API.
async fn read_back(client: &PeerClient, addr: &str, apps: &BTreeSet<String>) -> ReadBack {
    let get = |path: String| async move {
        let (status, body) = client
            .call(Method::GET, addr, &path, None, client::CALL)
            .await
            .map_err(|e| format!("GET {path}: {e}"))?;
        Ok::<_, String>((status.as_u16(), body))
    };
    let mut out = BTreeMap::new();
    for app in apps {
        let (status, body) = get(format!("/v2/apps{app}")).await?;
        let current = match status {
            404 => None,
            200 => body["app"]["labels"]["op"].as_str().map(str::to_string),
            other => return Err(format!("GET /v2/apps{app}: {other} {body}")),
        };
        let mut history = Vec::new();
        if current.is_some() {
            let (status, body) = get(format!("/v2/apps{app}/versions")).await?;
            if status != 200 {
                return Err(format!("GET /v2/apps{app}/versions: {status} {body}"));
            }
            let mut versions: Vec<String> = body["versions"]
                .as_array()
                .map(|v| {
                    v.iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            versions.sort_by_key(|v| version_key(v));
            for v in versions {
                let (status, body) = get(format!("/v2/apps{app}/versions/{v}")).await?;
                if status != 200 {
                    return Err(format!("GET /v2/apps{app}/versions/{v}: {status} {body}"));
                }
                if let Some(op) = body["labels"]["op"].as_str() {
                    history.push(op.to_string());
                }
            }
        }
        out.insert(app.clone(), Observed { current, history });
    }
    Ok(out)
}
