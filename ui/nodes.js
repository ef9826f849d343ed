// The Nodes page: masters (the leader marked) and agents, with their fault domains, state,
// load and round-trip time to the leader.

import { api, esc, plural } from "./api.js";

function order(local) {
  const rank = (n) => [n.type === "master" ? 0 : 1, n.leader ? 0 : 1, n.region === local ? 0 : 1];
  return (a, b) => {
    const [ra, rb] = [rank(a), rank(b)];
    for (let i = 0; i < ra.length; i++) if (ra[i] !== rb[i]) return ra[i] - rb[i];
    return `${a.region}/${a.zone}/${a.hostname}`.localeCompare(`${b.region}/${b.zone}/${b.hostname}`);
  };
}

function row(n, local) {
  const type = n.type === "master" ? (n.leader ? "master (leader)" : "master") : "agent";
  const status = n.type === "agent" ? n.state : "up";
  const cls = { active: "ok", up: "ok", unreachable: "bad", gone: "" }[status] ?? "warn";
  const region = n.region === local ? `${esc(n.region)} <span class="local">(Local)</span>` : esc(n.region);
  const cpu = n.resources ? `${esc((n.used?.cpus ?? 0).toFixed(1))} / ${esc(n.resources.cpus)}` : "";
  const mem = n.resources ? `${esc(Math.round(n.used?.mem ?? 0))} / ${esc(n.resources.mem)} MiB` : "";
  const rtt = n.rtt_ms == null ? (n.type === "agent" ? `<span class="muted" title="not measured yet">–</span>` : "") : `${esc(n.rtt_ms)} ms`;
  const rttTitle = n.rtt_warning ? ` title="at or above 100 ms: too far from the leader"` : "";
  return `<tr data-type="${esc(n.type)}" data-id="${esc(n.id)}" data-region="${esc(n.region)}" data-zone="${esc(n.zone)}"
      data-state="${esc(status)}"${n.leader ? ` data-leader="true"` : ""}>
    <td class="host">${esc(n.hostname)}</td><td class="ip">${esc(n.ip)}</td>
    <td class="type">${n.leader ? `<b>${esc(type)}</b>` : esc(type)}</td>
    <td class="region">${region}</td><td class="zone">${esc(n.zone)}</td>
    <td class="status"><span class="badge ${cls}">${esc(status)}</span></td>
    <td class="tasks num">${n.type === "agent" ? esc(n.tasks ?? 0) : ""}</td><td class="cpu num">${cpu}</td>
    <td class="mem num">${mem}</td><td class="rtt num${n.rtt_warning ? " warn" : ""}"${rttTitle}>${rtt}</td></tr>`;
}

function summary(nodes, local) {
  const masters = nodes.filter((n) => n.type === "master");
  const agents = nodes.filter((n) => n.type === "agent");
  const regions = new Set(agents.map((n) => n.region));
  const leader = masters.find((n) => n.leader);
  const states = {};
  for (const n of agents) states[n.state] = (states[n.state] || 0) + 1;
  const counts = Object.entries(states)
    .sort((a, b) => (a[0] === "active" ? -1 : b[0] === "active" ? 1 : a[0].localeCompare(b[0])))
    .map(([s, n]) => `${esc(n)} ${esc(s)}`)
    .join(", ");
  return `${esc(plural(masters.length, "master"))} (${leader ? `leader ${esc(leader.hostname)}` : "no leader"}),
    ${esc(plural(agents.length, "agent"))} in ${esc(plural(regions.size, "region"))}${counts ? ` (${counts})` : ""}.
    The local region is ${esc(local)}.`;
}

export default {
  nav: "nodes",
  title: "Nodes",
  mount(main) {
    main.innerHTML = `<h2>Nodes</h2><p id="nodes-summary" class="muted"></p><div id="nodes-table"></div>`;
  },
  async refresh(current) {
    const data = await api("/v1/nodes");
    if (!current()) return;
    const local = data.local_region;
    const nodes = [...(data.nodes || [])].sort(order(local));
    document.getElementById("nodes-summary").innerHTML = summary(nodes, local);
    document.getElementById("nodes-table").innerHTML = `<table id="nodes"><thead><tr><th>Host</th><th>IP</th>
      <th>Type</th><th>Region</th><th>Zone</th><th>Status</th><th class="num">Tasks</th><th class="num">CPU</th>
      <th class="num">Mem</th><th class="num">RTT</th></tr></thead>
      <tbody>${nodes.map((n) => row(n, local)).join("") || `<tr><td colspan="10" class="muted">No nodes.</td></tr>`}</tbody></table>`;
  },
};
