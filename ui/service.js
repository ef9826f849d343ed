// The Service detail page (`#/services/<id>`): an app's instances with their fault domains,
// state and health, its JSON, and the actions scale, restart and remove.

import { ApiError, api, appPath, changed, detailsList, esc, notify, plural, taskHealth, taskState } from "./api.js";
import { actionWords, appStatus, readinessWords, waitingWords } from "./services.js";
import { routesSection } from "./routes.js";
import { wherePicture } from "./where.js";

/** Fields of the app JSON that report status rather than define the app. */
const STATUS_FIELDS = ["tasks", "tasksRunning", "tasksHealthy", "tasksStaged", "tasksUnhealthy", "deployments", "lastTaskFailure"];

let appId = null;
let missing = false;

function shortId(id) {
  const s = String(id ?? "");
  const i = s.indexOf(".instance-");
  return i < 0 ? s : s.slice(i + 10, i + 18);
}

function instancesTable(app) {
  const tasks = [...(app.tasks || [])].sort((a, b) =>
    `${a.region}/${a.zone}/${a.host}/${a.id}`.localeCompare(`${b.region}/${b.zone}/${b.host}/${b.id}`),
  );
  if (!tasks.length) return `<p class="muted" id="no-instances">No instances.</p>`;
  const rows = tasks.map((t) => {
    const state = taskState(t.state);
    const health = taskHealth(t, app);
    const old = t.version && app.version && t.version !== app.version ? ` <span class="badge warn" title="started from ${esc(t.version)}">old version</span>` : "";
    return `<tr class="instance" data-id="${esc(t.id)}" data-region="${esc(t.region)}" data-zone="${esc(t.zone)}" data-state="${esc(t.state)}">
      <td class="instance-id"><code title="${esc(t.id)}">${esc(shortId(t.id))}</code>${old}</td>
      <td class="host">${esc(t.host)}</td><td class="region">${esc(t.region)}</td><td class="zone">${esc(t.zone)}</td>
      <td class="state"><span class="badge ${state.cls}" title="${esc(t.state)}">${esc(state.word)}</span></td>
      <td class="health"><span class="badge ${health.cls}">${esc(health.word)}</span></td>
      <td class="ports">${esc((t.ports || []).join(", ") || "none")}</td>
      <td class="started muted">${esc(t.startedAt ?? t.stagedAt)}</td></tr>`;
  });
  return `<table id="instances"><thead><tr><th>Instance</th><th>Host</th><th>Region</th><th>Zone</th><th>State</th>
    <th>Health</th><th>Ports</th><th>Started</th></tr></thead><tbody>${rows.join("")}</tbody></table>`;
}

function summary(app) {
  const parts = [
    `${esc(app.tasksRunning ?? 0)} running`,
    app.healthChecks?.length ? `${esc(app.tasksHealthy ?? 0)} healthy` : "no health checks",
    `${esc(app.instances)} desired`,
  ];
  if (app.tasksStaged) parts.push(`${esc(app.tasksStaged)} staging`);
  if (app.tasksUnhealthy) parts.push(`${esc(app.tasksUnhealthy)} unhealthy`);
  return parts.join(" · ");
}

function definition(app) {
  const copy = { ...app };
  for (const f of STATUS_FIELDS) delete copy[f];
  return JSON.stringify(copy, null, 2);
}

function result(html, cls) {
  const box = document.getElementById("action-result");
  if (!box) return;
  box.className = `result ${cls}`;
  box.innerHTML = html;
  box.hidden = false;
}

function failed(what, e) {
  let html = `${esc(what)} failed: ${esc(e.message)}`;
  if (e instanceof ApiError && e.status === 409 && /locked/i.test(e.message)) {
    html += `<br>A deployment of this service is in progress. Wait for it to finish, or tick “Force” to override it.`;
  }
  if (e instanceof ApiError) html += detailsList(e.details);
  result(html, "bad");
}

function deploymentWords(body) {
  return body?.deploymentId ? ` Deployment <code>${esc(body.deploymentId)}</code> started.` : "";
}

async function act(what, run) {
  const buttons = document.querySelectorAll("#service-actions button");
  for (const b of buttons) b.disabled = true;
  result(`${esc(what)} …`, "");
  try {
    await run();
  } catch (e) {
    failed(what, e);
  } finally {
    for (const b of buttons) b.disabled = false;
    changed();
  }
}

function force() {
  return document.getElementById("force")?.checked ? "?force=true" : "";
}

function wireActions() {
  document.getElementById("scale-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const input = document.getElementById("scale-count");
    const n = Number(input.value);
    if (input.value.trim() === "" || !Number.isInteger(n) || n < 0) {
      result(`Enter the number of instances as a whole number, 0 or more (got “${esc(input.value)}”).`, "bad");
      return;
    }
    act(`Scaling ${appId} to ${n}`, async () => {
      const body = await api(`${appPath(appId)}${force()}`, { method: "PUT", body: { instances: n } });
      result(`Scaling ${esc(appId)} to ${esc(plural(n, "instance"))}.${deploymentWords(body)}`, "ok");
    });
  });
  document.getElementById("restart").addEventListener("click", () => {
    act(`Restarting ${appId}`, async () => {
      const body = await api(`${appPath(appId)}/restart${force()}`, { method: "POST" });
      result(`Restarting ${esc(appId)}: its instances are replaced with new ones.${deploymentWords(body)}`, "ok");
    });
  });
  document.getElementById("remove").addEventListener("click", () => {
    if (!window.confirm(`Remove ${appId}? All of its instances are stopped.`)) {
      result(`Nothing was removed.`, "");
      return;
    }
    act(`Removing ${appId}`, async () => {
      const body = await api(`${appPath(appId)}${force()}`, { method: "DELETE" });
      notify(`Removed ${esc(appId)}; its instances are being stopped.${deploymentWords(body)}`, "ok", { carry: true });
      location.hash = "#/services";
    });
  });
}

export default {
  nav: "services",
  title: "Service",
  mount(main, id) {
    appId = id;
    missing = false;
    main.innerHTML = `<p class="crumbs"><a href="#/services">Services</a> /</p>
      <div class="title-row"><h2 id="service-id">${esc(id)}</h2><span id="service-status"></span></div>
      <p id="service-summary" class="muted"></p>
      <div id="service-actions" class="actions">
        <form id="scale-form"><label for="scale-count">Instances</label>
          <input type="number" id="scale-count" min="0" step="1" required><button id="scale" type="submit">Scale</button></form>
        <button id="restart" type="button">Restart</button>
        <button id="remove" type="button" class="danger">Remove…</button>
        <label class="muted force"><input type="checkbox" id="force"> Force (override a deployment in progress)</label>
      </div>
      <div id="action-result" class="result" role="status" hidden></div>
      <div id="service-deployments"></div>
      <div id="service-waiting"></div>
      <h3>Where it runs</h3><div id="service-where"></div>
      <h3>Instances</h3><div id="instances-table"></div>
      <h3>Load balancing</h3><div id="service-routes"></div>
      <h3>Definition</h3><pre id="app-json" class="json"></pre>`;
    wireActions();
  },
  async refresh(current) {
    if (missing) return;
    const id = appId;
    let data;
    try {
      data = await Promise.all([api(appPath(id)), api("/v1/nodes"), api("/v2/queue"), api("/v2/deployments")]);
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 404)) throw e;
      if (!current()) return;
      missing = true;
      document.getElementById("main").innerHTML = `<p class="crumbs"><a href="#/services">Services</a> /</p>
        <h2>${esc(id)}</h2><p id="service-missing" class="result bad">There is no service ${esc(id)}: it was removed,
        or never deployed. <a href="#/services">See all services</a> or <a href="#/deploy">deploy one</a>.</p>`;
      return;
    }
    if (!current()) return;
    const [{ app }, nodes, queue, deployments] = data;
    const waiting = (queue.queue || []).find((q) => q.app?.id === app.id);
    const status = appStatus(app, waiting);
    document.getElementById("service-status").innerHTML = `<span class="badge ${status.cls}">${esc(status.word)}</span>`;
    document.getElementById("service-summary").innerHTML = summary(app);
    const input = document.getElementById("scale-count");
    if (input.value === "" && document.activeElement !== input) input.value = app.instances;
    const mine = (Array.isArray(deployments) ? deployments : []).filter((d) => (d.affectedApps || []).includes(app.id));
    document.getElementById("service-deployments").innerHTML = mine
      .map(
        (d) => `<p class="deployment notice warn" data-id="${esc(d.id)}">Deployment <code>${esc(String(d.id).slice(0, 8))}</code>
          in progress, step ${esc(d.currentStep)} of ${esc(d.totalSteps)}: ${(d.currentActions || [])
            .map((a) => `${esc(actionWords(a))}${readinessWords(a)}`)
            .join("; ")}.</p>`,
      )
      .join("");
    document.getElementById("service-waiting").innerHTML = waiting ? `<div class="notice bad">${waitingWords(waiting)}</div>` : "";
    document.getElementById("service-where").innerHTML = wherePicture(app, nodes);
    document.getElementById("instances-table").innerHTML = instancesTable(app);
    document.getElementById("service-routes").innerHTML = routesSection(app);
    document.getElementById("app-json").textContent = definition(app);
  },
};
