// The picture of where an app runs: one row per region, one cell per zone, one dot per
// instance (green running, yellow on its way, red in trouble). Empty zones of the region are
// shown too, since a zone without instances is often the interesting part.

import { esc, plural, taskHealth, taskState } from "./api.js";

/** The region an app is pinned to by `["@region","IS"|"CLUSTER",R]`, if any. */
export function appRegion(app) {
  const c = (app?.constraints || []).find((c) => c[0] === "@region" && c.length > 2);
  return c ? c[2] : null;
}

/** Zones of each region, from the node list: `{region: [zone, …]}`, sorted. */
export function zonesByRegion(nodes) {
  const zones = {};
  for (const n of nodes?.nodes || []) {
    if (n.type !== "agent" || !n.region) continue;
    (zones[n.region] ||= new Set()).add(n.zone ?? "no zone");
  }
  return Object.fromEntries(Object.entries(zones).map(([r, z]) => [r, [...z].sort()]));
}

function dotClass(task, app) {
  const state = taskState(task.state);
  if (task.state !== "TASK_RUNNING") return state.cls || "off";
  return taskHealth(task, app).cls === "bad" ? "bad" : "ok";
}

/** The picture for one app, as HTML. */
export function wherePicture(app, nodes) {
  const tasks = app.tasks || [];
  const local = nodes?.local_region;
  const zones = zonesByRegion(nodes);
  const byZone = {};
  for (const t of tasks) {
    const region = t.region ?? local ?? "no region";
    const key = `${region}\u0000${t.zone ?? "no zone"}`;
    (byZone[key] ||= []).push(t);
  }
  if (!tasks.length && app.instances === 0) return `<span class="muted">nowhere: scaled to 0</span>`;
  const regions = new Set(tasks.map((t) => t.region ?? local ?? "no region"));
  const target = appRegion(app) ?? local;
  if (target && (regions.size === 0 || app.instances > tasks.length)) regions.add(target);
  if (!regions.size) return `<span class="muted">nowhere yet</span>`;

  const rows = [...regions].sort().map((region) => {
    const names = new Set(zones[region] || []);
    for (const t of tasks) if ((t.region ?? local) === region) names.add(t.zone ?? "no zone");
    const cells = [...names].sort().map((zone) => {
      const here = byZone[`${region}\u0000${zone}`] || [];
      const running = here.filter((t) => t.state === "TASK_RUNNING").length;
      const label = zone.startsWith(`${region}-`) ? zone.slice(region.length + 1) : zone;
      const dots = here
        .map((t) => `<i class="dot ${dotClass(t, app)}" title="${esc(`${t.host}: ${taskState(t.state).word}`)}"></i>`)
        .join("");
      return `<div class="zone-cell${here.length ? "" : " empty"}" data-region="${esc(region)}" data-zone="${esc(zone)}"
          data-count="${here.length}" data-running="${running}" title="${esc(`${zone}: ${plural(here.length, "instance")}, ${running} running`)}">
        <span class="zone-name">${esc(label)}</span><span class="dots">${dots}</span><b class="zone-count">${here.length}</b></div>`;
    });
    const mark = region === local ? ` <span class="muted">(Local)</span>` : "";
    return `<div class="region-row" data-region="${esc(region)}"><span class="region-name">${esc(region)}${mark}</span>
      <div class="zone-cells">${cells.join("")}</div></div>`;
  });
  return `<div class="where">${rows.join("")}</div>`;
}
