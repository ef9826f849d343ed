"""Drives a live drover through marathon-python, as a Marathon user's scripts do.

Run by crates/cli/tests/marathon_python.rs with the pinned client installed in a virtual
environment; DROVER_URL names a master. Every step prints what it checked; the first wrong
answer raises, and the exit status is not 0. Groups are not covered here (issue 14 scope 3).
Event subscriptions are: a callback server in this script subscribes, reads every event POSTed
to it through the client's own event classes, and unsubscribes.
"""

import collections
import collections.abc
import http.server
import json
import os
import sys
import threading
import time

# marathon 0.13.0, the latest on PyPI, uses collections.Iterable, gone since Python 3.10 (its
# repository fixed that after the release, PR #282): the alias is restored for the client.
if not hasattr(collections, "Iterable"):
    collections.Iterable = collections.abc.Iterable

from marathon import MarathonClient, MarathonHttpError, NotFoundError
from marathon.models import MarathonApp, MarathonGroup, MarathonHealthCheck
from marathon.models.events import EventFactory, MarathonEvent

URL = os.environ["DROVER_URL"]
APP = "/mp/web"
# A liveness bound for a loaded 2-core machine, not a speed assertion.
SETTLE = float(os.environ.get("SETTLE_SECONDS", "90"))


def step(what):
    print(f"--- {what}", flush=True)


def wait_until(what, cond):
    """Polls cond() until it returns something truthy; raises naming `what` at the deadline."""
    deadline = time.monotonic() + SETTLE
    last = None
    while time.monotonic() < deadline:
        try:
            last = cond()
        except (MarathonHttpError, NotFoundError) as e:
            last = e
        if last and not isinstance(last, Exception):
            return last
        time.sleep(0.2)
    raise AssertionError(f"timed out after {SETTLE}s waiting until {what}; last: {last!r}")


def running(client, app_id, n):
    app = client.get_app(app_id, embed_tasks=True)
    tasks = [t for t in app.tasks if t.state == "TASK_RUNNING"]
    return tasks if len(tasks) == n and app.tasks_running == n else None


def no_deployments(client, app_id):
    return all(app_id not in d.affected_apps for d in client.list_deployments())


def main():
    client = MarathonClient(URL)

    step("ping, info, leader, metrics")
    assert client.ping(), "ping answered nothing"
    info = client.get_info()
    assert info.leader, f"info names no leader: {info!r}"
    assert info.name == "drover" and info.version, f"/v2/info: {info!r}"
    leader = client.get_leader()
    assert leader.get("leader"), f"/v2/leader: {leader!r}"

    step("events: a subscriber on /v2/events")
    seen = []
    stop = threading.Event()

    def listen():
        try:
            for event in client.event_stream():
                assert isinstance(event, MarathonEvent), repr(event)
                seen.append(event.event_type)
                if stop.is_set():
                    return
        except Exception as e:  # reported by the main thread through `seen`
            seen.append(f"error: {e!r}")

    threading.Thread(target=listen, daemon=True).start()

    step("event subscriptions: a callback server on 127.0.0.1 subscribes")
    received = []

    class Callback(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers["Content-Length"])
            received.append(json.loads(self.rfile.read(length)))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Callback)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    callback = f"http://127.0.0.1:{server.server_address[1]}/marathon-events?from=drover"
    subscribed = client.create_event_subscription(callback)
    assert subscribed["eventType"] == "subscribe_event", repr(subscribed)
    assert subscribed["callbackUrl"] == callback, repr(subscribed)
    assert callback in client.list_event_subscriptions()
    try:
        client.create_event_subscription("ftp://127.0.0.1/x")
        raise AssertionError("an ftp callback URL was accepted")
    except MarathonHttpError as e:
        assert e.status_code == 422, repr(e)

    step("create an app")
    app = MarathonApp(
        cmd="exec sleep 100000",
        instances=1,
        cpus=0.05,
        mem=16,
        labels={"team": "blue", "tier": "web"},
        health_checks=[
            MarathonHealthCheck(
                protocol="COMMAND",
                command={"value": "true"},
                grace_period_seconds=300,
                interval_seconds=1,
                timeout_seconds=10,
                max_consecutive_failures=3,
                delay_seconds=0,
            )
        ],
    )
    created = client.create_app(APP, app)
    assert created.id == APP, f"created {created!r}"
    wait_until("the app runs 1 task", lambda: running(client, APP, 1))
    # Changes of an app in deployment are refused (409) unless forced, as in Marathon.
    wait_until("no deployment of the app", lambda: no_deployments(client, APP))

    step("list apps, with filters and embeds")
    apps = client.list_apps()
    assert [a.id for a in apps] == [APP], f"list_apps: {apps!r}"
    assert [a.id for a in client.list_apps(app_id="/mp")] == [APP]
    assert client.list_apps(app_id="/nothing") == []
    assert [a.id for a in client.list_apps(cmd="sleep")] == [APP]
    assert client.list_apps(cmd="no-such-command") == []
    assert [a.id for a in client.list_apps(label="team==blue")] == [APP]
    assert client.list_apps(label="team==red") == []
    embedded = client.list_apps(embed_tasks=True, embed_counts=True)
    assert len(embedded[0].tasks) == 1, f"embed tasks: {embedded!r}"
    assert embedded[0].tasks_running == 1, f"embed counts: {embedded!r}"
    assert [a.id for a in client.list_apps(label=r"tier in (web, db), team!=red")] == [APP]
    assert client.list_apps(label="tier notin (web)") == []
    every = client.list_apps(
        embed_tasks=True,
        embed_counts=True,
        embed_deployments=True,
        embed_readiness=True,
        embed_last_task_failure=True,
        embed_failures=True,
        embed_task_stats=True,
    )
    assert every[0].readiness_check_results == [], repr(every[0])
    assert every[0].last_task_failure is None, repr(every[0].last_task_failure)
    total = every[0].task_stats.total_summary.stats
    assert total.counts.running == 1 and total.life_time is not None, repr(total)

    step("get the app, its versions and a version")
    got = client.get_app(APP)
    assert got.instances == 1 and got.cmd == "exec sleep 100000", repr(got)
    assert got.labels == {"team": "blue", "tier": "web"}, repr(got.labels)
    versions = client.list_versions(APP)
    assert got.version in versions, f"{got.version} not in {versions}"
    at = client.get_version(APP, versions[0])
    assert at.id == APP, repr(at)

    step("list tasks (all, by app) and endpoints")
    tasks = client.list_tasks()
    assert len(tasks) == 1 and tasks[0].app_id == APP, repr(tasks)
    by_app = client.list_tasks(APP)
    assert [t.id for t in by_app] == [t.id for t in tasks], repr(by_app)
    assert tasks[0].host and tasks[0].slave_id and tasks[0].staged_at, repr(tasks[0])
    assert client.list_endpoints() is not None

    step("health: the COMMAND check passes")
    wait_until(
        "the task is healthy",
        lambda: all(
            r.alive for t in client.list_tasks(APP) for r in t.health_check_results
        )
        and client.get_app(APP).tasks_healthy == 1,
    )

    step("scale to 2, then by -1")
    client.scale_app(APP, instances=2)
    wait_until("2 tasks run", lambda: running(client, APP, 2))
    wait_until("no deployment of the app", lambda: no_deployments(client, APP))
    client.scale_app(APP, delta=-1)
    wait_until("1 task runs", lambda: running(client, APP, 1))
    wait_until("no deployment of the app", lambda: no_deployments(client, APP))

    step("update the app (new labels): a new version")
    before = client.get_app(APP).version
    got = client.get_app(APP)
    got.labels = {"team": "blue", "tier": "web", "release": "2"}
    client.update_app(APP, got)
    wait_until(
        "the update is the app's version",
        lambda: client.get_app(APP).version != before
        and client.get_app(APP).labels.get("release") == "2",
    )
    wait_until("no deployment of the app", lambda: no_deployments(client, APP))

    step("restart: new tasks replace the old one")
    old = {t.id for t in client.list_tasks(APP)}
    client.restart_app(APP)
    wait_until(
        "a new task replaced the old one",
        lambda: (ts := running(client, APP, 1)) and not ({t.id for t in ts} & old),
    )
    wait_until("no deployment of the app", lambda: no_deployments(client, APP))

    step("deployments: a running one is listed and can be cancelled")
    got = client.get_app(APP)
    got.health_checks = [
        MarathonHealthCheck(
            protocol="COMMAND",
            command={"value": "false"},
            grace_period_seconds=3600,
            interval_seconds=1,
            timeout_seconds=10,
            max_consecutive_failures=0,
        )
    ]
    client.update_app(APP, got)
    deployments = wait_until(
        "the change is a deployment",
        lambda: [d for d in client.list_deployments() if APP in d.affected_apps],
    )
    d = deployments[0]
    assert d.id and d.version and d.steps is not None, repr(d)
    rollback = client.delete_deployment(d.id)
    assert "deploymentId" in rollback and "version" in rollback, repr(rollback)
    wait_until("the rollback finished", lambda: no_deployments(client, APP))

    step("queue: an app no agent can take waits there, with Marathon's fields")
    big = "/mp/too-big"
    client.create_app(big, MarathonApp(cmd="exec sleep 100000", instances=1, cpus=1000, mem=16))
    [item] = wait_until(
        "the queue lists the app", lambda: [q for q in client.list_queue() if q.app.id == big]
    )
    assert item.count == 1 and item.delay is not None, repr(item)
    assert item.processed_offers_summary["rejectSummaryLastOffer"], repr(item)
    client.delete_app(big, force=True)
    wait_until("the queue is empty", lambda: client.list_queue() == [])

    step("launch delay: reset for an app, 404 for an unknown one")
    client.reset_delay(APP)
    try:
        client.reset_delay("/mp/no-such-app")
        raise AssertionError("reset_delay of an unknown app did not raise")
    except NotFoundError:
        pass

    step("kill a task (replaced), kill with scale")
    wait_until("1 task runs", lambda: running(client, APP, 1))
    [task] = client.list_tasks(APP)
    killed = client.kill_task(APP, task.id)
    assert getattr(killed, "id", None) == task.id, repr(killed)
    wait_until(
        "the killed task is replaced",
        lambda: (ts := running(client, APP, 1)) and ts[0].id != task.id,
    )
    wait_until("no deployment of the app", lambda: no_deployments(client, APP))
    client.scale_app(APP, instances=2)
    wait_until("2 tasks run", lambda: running(client, APP, 2))
    wait_until("no deployment of the app", lambda: no_deployments(client, APP))
    [first, second] = client.list_tasks(APP)
    assert client.kill_given_tasks([first.id], scale=True)
    wait_until("1 task runs after a kill with scale", lambda: running(client, APP, 1))
    assert client.get_app(APP).instances == 1
    wait_until("no deployment of the app", lambda: no_deployments(client, APP))
    # Only the tasks on the host given: none on a host the app does not run on.
    assert client.kill_tasks(APP, host="no-such-agent") == []
    assert len(client.list_tasks(APP)) == 1
    # With scale, Marathon answers with the deployment, not the tasks.
    killed = client.kill_tasks(APP, scale=True)
    assert killed.get("deploymentId"), repr(killed)
    wait_until(
        "no task runs after killing all with scale",
        lambda: client.get_app(APP).instances == 0 and client.list_tasks(APP) == [],
    )
    wait_until("no deployment of the app", lambda: no_deployments(client, APP))

    step("bulk update of apps")
    got = client.get_app(APP)
    got.instances = 1
    client.update_apps([got])
    wait_until("1 task runs after the bulk update", lambda: running(client, APP, 1))
    wait_until("no deployment of the app", lambda: no_deployments(client, APP))

    step("delete the app")
    client.delete_app(APP)
    wait_until(
        "the app is gone",
        lambda: APP not in [a.id for a in client.list_apps()] and client.list_tasks() == [],
    )
    try:
        client.get_app(APP)
        raise AssertionError("a deleted app is still found")
    except NotFoundError:
        pass

    step("groups: create, list, get, scale, update, delete")
    group = MarathonGroup(
        id="/mp-shop",
        groups=[
            MarathonGroup(
                id="db",
                apps=[MarathonApp(id="pg", cmd="exec sleep 100000", instances=1, cpus=0.05, mem=8)],
            ),
            MarathonGroup(
                id="front",
                dependencies=["../db"],
                apps=[MarathonApp(id="web", cmd="exec sleep 100000", instances=1, cpus=0.05, mem=8)],
            ),
        ],
    )
    created = client.create_group(group)
    assert created.get("deploymentId") and created.get("version"), repr(created)
    wait_until("the group's apps run", lambda: running(client, "/mp-shop/db/pg", 1) and running(client, "/mp-shop/front/web", 1))
    wait_until("no deployment of the group", lambda: no_deployments(client, "/mp-shop/front/web"))
    listed = client.list_groups()
    assert "/mp-shop" in [g.id for g in listed], repr(listed)
    got = client.get_group("/mp-shop")
    assert isinstance(got, MarathonGroup), repr(got)
    assert sorted(g.id for g in got.groups) == ["/mp-shop/db", "/mp-shop/front"], repr(got.groups)
    front = client.get_group("/mp-shop/front")
    assert front.dependencies == ["/mp-shop/db"], repr(front.dependencies)
    assert [a.id for a in front.apps] == ["/mp-shop/front/web"], repr(front.apps)
    scaled = client.scale_group("/mp-shop", 2)
    assert scaled.get("deploymentId"), repr(scaled)
    wait_until("the group is scaled by 2", lambda: running(client, "/mp-shop/db/pg", 2) and running(client, "/mp-shop/front/web", 2))
    wait_until("no deployment of the group", lambda: no_deployments(client, "/mp-shop/front/web"))
    front = client.get_group("/mp-shop/front")
    front.apps[0].instances = 1
    updated = client.update_group("/mp-shop/front", front)
    assert updated.get("deploymentId"), repr(updated)
    wait_until("web is back to 1", lambda: running(client, "/mp-shop/front/web", 1))
    wait_until("no deployment of the group", lambda: no_deployments(client, "/mp-shop/front/web"))
    deleted = client.delete_group("/mp-shop")
    assert deleted.get("deploymentId"), repr(deleted)
    wait_until(
        "the group is gone",
        lambda: not [a for a in client.list_apps() if a.id.startswith("/mp-shop/")] and client.list_tasks() == [],
    )
    try:
        client.get_group("/mp-shop")
        raise AssertionError("a deleted group is still found")
    except NotFoundError:
        pass

    step("events seen")
    stop.set()
    wait_until("the stream saw deployments", lambda: "deployment_success" in seen)
    errors = [e for e in seen if e.startswith("error")]
    assert not errors, errors
    for kind in ["api_post_event", "deployment_info", "status_update_event", "group_change_success"]:
        assert kind in seen, f"{kind} not among the events seen: {sorted(set(seen))}"

    step("event subscriptions: the callback got the events, each one the client reads")
    wait_until(
        "the callback got the app's deletion",
        lambda: any(e.get("eventType") == "app_terminated_event" for e in received),
    )
    assert received[0]["eventType"] == "subscribe_event", repr(received[0])
    factory = EventFactory()
    for body in list(received):
        assert isinstance(factory.process(body), MarathonEvent), repr(body)
    kinds = {e["eventType"] for e in received}
    for kind in ["api_post_event", "deployment_info", "status_update_event", "deployment_success"]:
        assert kind in kinds, f"{kind} not among the events POSTed: {sorted(kinds)}"
    unsubscribed = client.delete_event_subscription(callback)
    assert unsubscribed["eventType"] == "unsubscribe_event", repr(unsubscribed)
    assert callback not in client.list_event_subscriptions()
    server.shutdown()
    print("OK", flush=True)


if __name__ == "__main__":
    try:
        main()
    except Exception:
        import traceback

        traceback.print_exc()
        sys.exit(1)
