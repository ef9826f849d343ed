// How an app is reached through drover's load balancing, from its labels: the VIPs of each
// port (`VIP_n` port labels, served by every agent started with --vip-addr) and its edge
// routes (`drover lb`'s virtual hosts and service ports, from marathon-lb's `HAPROXY_*` or
// drover's `DROVER_LB_*` labels). The same rules as crates/lb/src/routes.rs; the balancers'
// own `/routes` is the word on what they serve.

import { esc } from "./api.js";

/** The suffix of a named VIP's host name (see docs/operations.md, "Load balancing"). */
const VIP_DOMAIN = "marathon.l4lb.drover.directory";

/** The label `DROVER_LB_<rest>`, else `HAPROXY_<rest>` (drover's wins when both are set). */
function lbLabel(labels, rest) {
  return labels[`DROVER_LB_${rest}`] ?? labels[`HAPROXY_${rest}`];
}

/** `/web:80` → `{ vip, host: "web.marathon.l4lb.drover.directory", port: 80 }`; `ip:port` has no host. */
function vip(text) {
  const v = String(text).trim();
  const i = v.lastIndexOf(":");
  const port = i < 0 ? "" : v.slice(i + 1);
  if (!v.startsWith("/")) return { vip: v, host: null, port };
  const name = v.slice(1, i < 0 ? undefined : i).toLowerCase();
  return { vip: v, host: `${name.split("/").reverse().join(".")}.${VIP_DOMAIN}`, port };
}

/** The routes of each port of `app`: `[{ index, vips, edge }]`, ports without any left out. */
export function appRoutes(app) {
  const labels = app.labels || {};
  const group = (labels.DROVER_LB_GROUP ?? labels.HAPROXY_GROUP ?? "").trim();
  const ports = app.portDefinitions || [];
  return ports
    .map((p, index) => {
      const vips = Object.entries(p.labels || {})
        .filter(([k]) => k.startsWith("VIP_"))
        .map(([, v]) => vip(v));
      let edge = null;
      if (group) {
        const vhosts = String(lbLabel(labels, `${index}_VHOST`) ?? "")
          .split(",")
          .map((h) => h.trim().toLowerCase().replace(/:\d+$/, ""))
          .filter(Boolean);
        const mode = String(lbLabel(labels, `${index}_MODE`) ?? (vhosts.length ? "http" : "tcp")).trim().toLowerCase();
        const port = lbLabel(labels, `${index}_PORT`) ?? (p.port > 0 ? String(p.port) : null);
        const shownHosts = mode === "http" ? vhosts : [];
        // A mode other than tcp or http exposes nothing (the balancers log why).
        if ((mode === "tcp" || mode === "http") && (port || shownHosts.length)) edge = { group, mode, port, vhosts: shownHosts };
      }
      return { index, name: p.name, vips, edge };
    })
    .filter((r) => r.vips.length || r.edge);
}

/** The load-balancing section of the Service page, as HTML. */
export function routesSection(app) {
  const routes = appRoutes(app);
  if (!routes.length) {
    return `<p class="muted" id="no-routes">No VIPs or edge routes: add a <code>VIP_0</code> port label
      (<code>"/name:port"</code>) or <code>HAPROXY_GROUP</code> with <code>HAPROXY_0_VHOST</code> or
      <code>HAPROXY_0_PORT</code> to reach it through a balancer.</p>`;
  }
  const rows = routes.map((r) => {
    const vips = r.vips
      .map((v) => `<span class="vip" data-vip="${esc(v.vip)}"><code>${esc(v.vip)}</code>${
        v.host ? ` <span class="muted">(${esc(v.host)}:${esc(v.port)})</span>` : ""}</span>`)
      .join("<br>");
    const e = r.edge;
    const edge = e
      ? `<span class="edge" data-group="${esc(e.group)}" data-mode="${esc(e.mode)}">${esc(e.mode)} · group ${esc(e.group)}${
          e.vhosts.length ? ` · virtual hosts ${e.vhosts.map((h) => `<code class="vhost">${esc(h)}</code>`).join(", ")}` : ""}${
          e.port ? ` · service port <code class="service-port">${esc(e.port)}</code>` : ""}</span>`
      : `<span class="muted">none</span>`;
    return `<tr class="route" data-port-index="${r.index}"><td class="port">${r.index}${r.name ? ` <span class="muted">${esc(r.name)}</span>` : ""}</td>
      <td class="vips">${vips || `<span class="muted">none</span>`}</td><td class="edge-route">${edge}</td></tr>`;
  });
  return `<table id="routes"><thead><tr><th>Port</th><th>VIPs (every agent)</th><th>Edge route (drover lb)</th></tr></thead>
    <tbody>${rows.join("")}</tbody></table>`;
}
