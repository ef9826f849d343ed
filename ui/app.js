// drover's web UI: plain JS modules, no build step. Pages read the Marathon and drover APIs
// and refresh when /v2/events says something changed.

const main = document.getElementById("main");
const errorBox = document.getElementById("error");

async function api(path) {
  const res = await fetch(path, { headers: { Accept: "application/json" } });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) {
    throw new Error(body.message || `${path} answered ${res.status}`);
  }
  return body;
}

function showError(e) {
  errorBox.hidden = false;
  errorBox.textContent = `Could not load the page: ${e.message}`;
}

function esc(v) {
  return String(v ?? "N/A").replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
}

async function nodesPage() {
  const data = await api("/v1/nodes");
  const rows = data.nodes.map((n) => {
    const type = n.type === "master" ? (n.leader ? "master (leader)" : "master") : "agent";
    const region = n.region === data.local_region ? `${esc(n.region)} (Local)` : esc(n.region);
    const status = n.type === "agent" ? n.state : "up";
    const cls = status === "active" || status === "up" ? "ok" : "bad";
    const cpu = n.resources ? `${(n.used?.cpus ?? 0).toFixed(1)} / ${n.resources.cpus}` : "";
    const mem = n.resources ? `${Math.round(n.used?.mem ?? 0)} / ${n.resources.mem} MiB` : "";
    const rtt = n.rtt_ms == null ? "" : `${n.rtt_ms} ms`;
    return `<tr data-type="${esc(n.type)}"><td>${esc(n.hostname)}</td><td>${esc(n.ip)}</td><td>${esc(type)}</td>
      <td class="region">${region}</td><td class="zone">${esc(n.zone)}</td>
      <td><span class="badge ${cls}">${esc(status)}</span></td><td>${n.tasks ?? ""}</td><td>${cpu}</td><td>${mem}</td>
      <td class="${n.rtt_warning ? "warn" : ""}">${rtt}</td></tr>`;
  });
  main.innerHTML = `<h2>Nodes</h2>
    <table id="nodes"><thead><tr><th>Host</th><th>IP</th><th>Type</th><th>Region</th><th>Zone</th>
    <th>Status</th><th>Tasks</th><th>CPU</th><th>Mem</th><th>RTT</th></tr></thead>
    <tbody>${rows.join("")}</tbody></table>`;
}

async function servicesPage() {
  const [apps, nodes, queue] = await Promise.all([api("/v2/apps?embed=apps.tasks"), api("/v1/nodes"), api("/v2/queue")]);
  const zoneOf = {};
  for (const n of nodes.nodes) zoneOf[n.hostname] = `${n.region}/${n.zone}`;
  const waiting = {};
  for (const q of queue.queue) waiting[q.app.id] = q;
  const rows = apps.apps.map((a) => {
    const tasks = a.tasks || [];
    const byZone = {};
    for (const t of tasks) byZone[`${t.region}/${t.zone}`] = (byZone[`${t.region}/${t.zone}`] || 0) + 1;
    const zones = Object.entries(byZone)
      .sort()
      .map(([z, n]) => `<span class="badge">${esc(z)}: ${n}</span>`)
      .join("");
    const q = waiting[a.id];
    const why = q ? Object.entries(q.unplacedReasons || {}).map(([r, n]) => `${n} agents: ${esc(r)}`).join("; ") : "";
    return `<tr><td>${esc(a.id)}</td><td>${a.tasksRunning ?? 0} / ${a.tasksHealthy ?? 0} / ${a.instances}</td>
      <td><div class="zones">${zones}</div></td><td class="muted">${q ? `${q.count} waiting: ${why}` : ""}</td></tr>`;
  });
  main.innerHTML = `<h2>Services</h2>
    <table id="services"><thead><tr><th>ID</th><th>Running / healthy / desired</th><th>Where (region/zone)</th><th>Unplaced</th></tr></thead>
    <tbody>${rows.join("") || `<tr><td colspan="4" class="muted">No services yet.</td></tr>`}</tbody></table>`;
}

const pages = { "#/nodes": nodesPage, "#/services": servicesPage };

async function render() {
  const hash = pages[location.hash] ? location.hash : "#/nodes";
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.getAttribute("href") === hash);
  try {
    await pages[hash]();
    errorBox.hidden = true;
    const leader = await api("/v2/leader").catch(() => null);
    document.getElementById("leader").textContent = leader ? `leader: ${leader.leader}` : "no leader";
  } catch (e) {
    showError(e);
  }
}

let pending = null;
function refreshSoon() {
  if (pending) return;
  pending = setTimeout(() => {
    pending = null;
    render();
  }, 300);
}

window.addEventListener("hashchange", render);
const events = new EventSource("/v2/events");
events.onmessage = refreshSoon;
for (const t of ["status_update_event", "instance_changed_event", "api_post_event", "app_terminated_event"]) {
  events.addEventListener(t, refreshSoon);
}
setInterval(render, 5000);
render();
