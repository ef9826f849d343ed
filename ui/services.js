// The Services page: the groups as a tree (apps and pods under them), every app with its
// instance counts, where its instances run, why some are not placed, and the deployments in
// progress.

import { api, esc, plural, reasonsList, serviceHref } from "./api.js";
import { TREE_EMBEDS, renderTree } from "./tree.js";
import { wherePicture } from "./where.js";

/** An app's state in one word, with its badge class. */
export function appStatus(app, waiting) {
  if (waiting?.count) return { word: "waiting", cls: "bad" };
  if (app.deployments?.length) return { word: "deploying", cls: "warn" };
  if (app.instances === 0) return { word: "suspended", cls: "" };
  if (app.tasksUnhealthy) return { word: "unhealthy", cls: "bad" };
  if ((app.tasksRunning ?? 0) < app.instances) return { word: "starting", cls: "warn" };
  return { word: "running", cls: "ok" };
}

/** The queue's entry for an app in words: how many wait and which agents were ruled out. */
export function waitingWords(q) {
  if (!q?.count) return "";
  const delay = q.delay?.timeLeftSeconds ? ` (next launch in ${esc(q.delay.timeLeftSeconds)} s)` : "";
  // drover's counted reasons, where Marathon puts its offer statistics.
  const rejected = q.processedOffersSummary?.rejectSummaryLastOffer ?? [];
  const reasons = reasonsList(Object.fromEntries(rejected.map((r) => [r.reason, r.declined])));
  return `<span class="waiting">${esc(plural(q.count, "instance"))} cannot be placed${delay}.</span>
    ${reasons ? `Agents ruled out:${reasons}` : ""}`;
}

/** "StartApplication" → "start application". */
export function actionWords(a) {
  return `${a.action.replace(/([a-z])([A-Z])/g, "$1 $2").toLowerCase()} ${a.app ?? a.pod ?? ""}`;
}

function appRow(app, nodes, waiting) {
  const status = appStatus(app, waiting);
  const healthy = app.healthChecks?.length ? esc(app.tasksHealthy ?? 0) : `<span class="muted" title="no health checks">–</span>`;
  return `<tr class="service" data-id="${esc(app.id)}">
    <td class="id"><a href="${esc(serviceHref(app.id))}">${esc(app.id)}</a><div class="muted small cmd">${esc(app.cmd ?? app.container?.docker?.image ?? "")}</div></td>
    <td class="status"><span class="badge ${status.cls}">${esc(status.word)}</span></td>
    <td class="running num">${esc(app.tasksRunning ?? 0)}</td><td class="healthy num">${healthy}</td>
    <td class="desired num">${esc(app.instances)}</td>
    <td class="where-cell">${wherePicture(app, nodes)}</td>
    <td class="unplaced">${waitingWords(waiting)}</td></tr>`;
}

/** A current action's readiness results in words: " (1 of 2 new instances ready)". */
export function readinessWords(a) {
  const results = a.readinessCheckResults || [];
  if (!results.length) return "";
  const tasks = new Map();
  for (const r of results) tasks.set(r.taskId, (tasks.get(r.taskId) ?? true) && r.ready);
  const ready = [...tasks.values()].filter(Boolean).length;
  return ` <span class="readiness muted" data-ready="${ready}" data-of="${tasks.size}">(${esc(ready)} of ${esc(
    plural(tasks.size, "new instance"),
  )} ready)</span>`;
}

function deploymentsTable(deployments) {
  if (!deployments.length) return `<p class="muted" id="no-deployments">No deployments in progress.</p>`;
  const rows = deployments.map(
    (d) => `<tr class="deployment" data-id="${esc(d.id)}"><td><code title="${esc(d.id)}">${esc(String(d.id).slice(0, 8))}</code></td>
      <td>${(d.affectedApps || []).map((a) => `<a href="${esc(serviceHref(a))}">${esc(a)}</a>`).join(", ")}</td>
      <td>${(d.currentActions || []).map((a) => `${esc(actionWords(a))}${readinessWords(a)}`).join("; ")}</td>
      <td class="num">${esc(d.currentStep)} of ${esc(d.totalSteps)}</td><td class="muted">${esc(d.version)}</td></tr>`,
  );
  return `<table id="deployments"><thead><tr><th>Deployment</th><th>Services</th><th>Doing</th><th class="num">Step</th>
    <th>Started</th></tr></thead><tbody>${rows.join("")}</tbody></table>`;
}

export default {
  nav: "services",
  title: "Services",
  mount(main) {
    main.innerHTML = `<div class="title-row"><h2>Services</h2><a class="button" href="#/deploy">Deploy a service</a></div>
      <h3>Groups</h3><div id="groups-tree"></div>
      <h3>All services</h3><div id="services-table"></div><h3>Deployments in progress</h3><div id="deployments-list"></div>`;
  },
  async refresh(current) {
    const [apps, nodes, queue, deployments, root] = await Promise.all([
      api("/v2/apps?embed=apps.tasks"),
      api("/v1/nodes"),
      api("/v2/queue"),
      api("/v2/deployments"),
      api(`/v2/groups?${TREE_EMBEDS}`),
    ]);
    if (!current()) return;
    const waiting = {};
    for (const q of queue.queue || []) waiting[q.app?.id] = q;
    renderTree(document.getElementById("groups-tree"), root, waiting);
    const list = [...(apps.apps || [])].sort((a, b) => a.id.localeCompare(b.id));
    const rows = list.map((a) => appRow(a, nodes, waiting[a.id])).join("");
    document.getElementById("services-table").innerHTML = `<table id="services"><thead><tr><th>Service</th><th>Status</th>
      <th class="num">Running</th><th class="num">Healthy</th><th class="num">Desired</th><th>Where (region and zones)</th>
      <th>Unplaced</th></tr></thead><tbody>${
        rows || `<tr><td colspan="7" class="muted">No services yet. <a href="#/deploy">Deploy one.</a></td></tr>`
      }</tbody></table>`;
    document.getElementById("deployments-list").innerHTML = deploymentsTable(Array.isArray(deployments) ? deployments : []);
  },
};
