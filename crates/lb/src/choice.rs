//! Backend choice, a pure function of the service's backends, the caller's fault domain and
//! each backend's load.
//!
//! The rule (documented in docs/operations.md, "Load balancing"):
//!
//! 1. Only ready backends count (running, passing health checks, not being killed), minus
//!    the ones the caller skips (tried already for this connection, or recently refused one).
//! 2. Region: when the app has any instance in the caller's region, only that region's
//!    backends are candidates, even when none of them is ready: a remote region is used only
//!    when the app runs only there.
//! 3. Zone: the caller's zone first, among its backends that have room (fewer active
//!    connections than the app's `DROVER_LB_MAX_CONN`, always when unset). When the zone has
//!    no ready backend with room, the connection spills over to every candidate of the region
//!    with room; when no candidate has room, to the least loaded candidate.
//! 4. Within the chosen set: the fewest active connections; ties are taken in turn.

use crate::routes::Backend;

/// Where connections come from: the fault domain of the agent or `drover lb`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Caller {
    /// The caller's region; none prefers no region.
    pub region: Option<String>,
    /// The caller's zone; none prefers no zone.
    pub zone: Option<String>,
}

/// How near the chosen backend is to the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locality {
    /// The caller's zone.
    Zone,
    /// Another zone of the caller's region.
    Region,
    /// Another region (the app runs only there).
    Remote,
}

/// A chosen backend and how near it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Choice<'a> {
    /// The backend.
    pub backend: &'a Backend,
    /// Its locality.
    pub locality: Locality,
}

/// True when `b` is in region `r`; a backend without a region is in the caller's.
fn in_region(b: &Backend, r: &str) -> bool {
    b.region.as_deref().is_none_or(|br| br == r)
}

/// Chooses a backend for one new connection by the rule of this module. `active` is a
/// backend's open connections, `skip` rules one out, `turn` breaks ties (pass a counter).
pub fn choose<'a>(
    backends: &'a [Backend],
    caller: &Caller,
    max_connections: Option<u32>,
    active: impl Fn(&Backend) -> u32,
    skip: impl Fn(&Backend) -> bool,
    turn: usize,
) -> Option<Choice<'a>> {
    let in_scope = |b: &Backend| match &caller.region {
        Some(r) if backends.iter().any(|x| in_region(x, r)) => in_region(b, r),
        _ => true,
    };
    // Loads are read once: they change under our feet (other connections open and close).
    let candidates: Vec<(&Backend, u32)> = backends
        .iter()
        .filter(|b| b.ready && in_scope(b) && !skip(b))
        .map(|b| (b, active(b)))
        .collect();
    if candidates.is_empty() {
        return None;
    }
    let has_room = |load: u32| max_connections.is_none_or(|m| load < m);
    let local_zone = |b: &Backend| caller.zone.is_some() && b.zone == caller.zone;
    let local: Vec<(&Backend, u32)> = candidates
        .iter()
        .copied()
        .filter(|(b, load)| local_zone(b) && has_room(*load))
        .collect();
    let set = if !local.is_empty() {
        local
    } else {
        let roomy: Vec<(&Backend, u32)> = candidates
            .iter()
            .copied()
            .filter(|(_, load)| has_room(*load))
            .collect();
        if roomy.is_empty() { candidates } else { roomy }
    };
    let least = set.iter().map(|(_, load)| *load).min()?;
    let ties: Vec<&Backend> = set
        .into_iter()
        .filter(|(_, load)| *load == least)
        .map(|(b, _)| b)
        .collect();
    let backend = *ties.get(turn % ties.len().max(1))?;
    let locality = if local_zone(backend) {
        Locality::Zone
    } else if caller
        .region
        .as_deref()
        .is_none_or(|r| in_region(backend, r))
    {
        Locality::Region
    } else {
        Locality::Remote
    };
    Some(Choice { backend, locality })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::net::SocketAddr;

    fn b(id: u16, region: &str, zone: &str, ready: bool) -> Backend {
        Backend {
            instance_id: format!("i{id}"),
            addr: SocketAddr::from(([127, 0, 0, 1], 30_000 + id)),
            region: Some(region.into()),
            zone: Some(zone.into()),
            ready,
            health_unknown: false,
        }
    }

    fn caller(region: &str, zone: &str) -> Caller {
        Caller {
            region: Some(region.into()),
            zone: Some(zone.into()),
        }
    }

    /// The instance ids chosen by `n` connections that all stay open (each adds load).
    fn pick_many(bs: &[Backend], c: &Caller, max: Option<u32>, n: usize) -> BTreeMap<String, u32> {
        let mut load: BTreeMap<String, u32> = BTreeMap::new();
        for turn in 0..n {
            let got = choose(
                bs,
                c,
                max,
                |b| load.get(&b.instance_id).copied().unwrap_or(0),
                |_| false,
                turn,
            )
            .expect("a backend");
            *load.entry(got.backend.instance_id.clone()).or_default() += 1;
        }
        load
    }

    #[test]
    fn the_callers_zone_takes_every_connection_while_it_has_ready_instances() {
        let bs = [
            b(1, "r", "a", true),
            b(2, "r", "b", true),
            b(3, "r", "a", true),
        ];
        let load = pick_many(&bs, &caller("r", "a"), None, 10);
        assert_eq!(load.get("i1"), Some(&5));
        assert_eq!(load.get("i3"), Some(&5));
        assert_eq!(load.get("i2"), None);
        let one = choose(&bs, &caller("r", "a"), None, |_| 0, |_| false, 0).expect("one");
        assert_eq!(one.locality, Locality::Zone);
    }

    #[test]
    fn connections_spill_to_other_zones_when_the_local_ones_are_not_ready_or_skipped() {
        let bs = [
            b(1, "r", "a", false),
            b(2, "r", "b", true),
            b(3, "r", "c", true),
        ];
        let load = pick_many(&bs, &caller("r", "a"), None, 4);
        assert_eq!(load.get("i2"), Some(&2));
        assert_eq!(load.get("i3"), Some(&2));
        let ready = [b(1, "r", "a", true), b(2, "r", "b", true)];
        let got = choose(
            &ready,
            &caller("r", "a"),
            None,
            |_| 0,
            |x| x.instance_id == "i1",
            0,
        )
        .expect("spill");
        assert_eq!(
            (got.backend.instance_id.as_str(), got.locality),
            ("i2", Locality::Region)
        );
    }

    #[test]
    fn a_full_local_zone_spills_over_and_everything_full_goes_to_the_least_loaded() {
        let bs = [b(1, "r", "a", true), b(2, "r", "b", true)];
        // Two per instance: the first two go to zone a, the next two to b, then least loaded.
        let load = pick_many(&bs, &caller("r", "a"), Some(2), 4);
        assert_eq!((load.get("i1"), load.get("i2")), (Some(&2), Some(&2)));
        let load = pick_many(&bs, &caller("r", "a"), Some(2), 6);
        assert_eq!((load.get("i1"), load.get("i2")), (Some(&3), Some(&3)));
    }

    #[test]
    fn a_remote_region_is_used_only_when_the_app_runs_only_there() {
        let mixed = [b(1, "r", "a", false), b(2, "far", "x", true)];
        assert_eq!(
            choose(&mixed, &caller("r", "a"), None, |_| 0, |_| false, 0),
            None
        );
        let remote_only = [b(2, "far", "x", true), b(3, "far", "y", true)];
        let got =
            choose(&remote_only, &caller("r", "a"), None, |_| 0, |_| false, 0).expect("remote");
        assert_eq!(got.locality, Locality::Remote);
    }

    #[test]
    fn a_caller_without_a_domain_balances_over_every_ready_instance() {
        let bs = [
            b(1, "r", "a", true),
            b(2, "far", "x", true),
            b(3, "r", "b", false),
        ];
        let load = pick_many(&bs, &Caller::default(), None, 4);
        assert_eq!(
            (load.get("i1"), load.get("i2"), load.get("i3")),
            (Some(&2), Some(&2), None)
        );
    }

    #[test]
    fn loads_that_change_while_choosing_still_give_a_choice() {
        // Other connections open and close while one is placed: every read of a load differs.
        let reads = std::cell::Cell::new(0u32);
        let changing = |_: &Backend| {
            reads.set(reads.get() + 1);
            reads.get()
        };
        let bs = [b(1, "r", "a", true), b(2, "r", "a", true)];
        let got = choose(&bs, &caller("r", "a"), None, changing, |_| false, 1);
        assert_eq!(got.map(|c| c.backend.instance_id.as_str()), Some("i1"));
        assert_eq!(reads.get(), 2, "each load is read once");
    }

    #[test]
    fn nothing_ready_is_no_choice() {
        let bs = [b(1, "r", "a", false)];
        assert_eq!(
            choose(&bs, &caller("r", "a"), None, |_| 0, |_| false, 0),
            None
        );
        assert_eq!(
            choose(&[], &caller("r", "a"), None, |_| 0, |_| false, 0),
            None
        );
    }
}
