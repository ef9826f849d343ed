// The Pods page: each pod (`GET /v2/pods`, Marathon's shape: id, containers with their
// resources, scaling.instances) and its instances with their containers
// (`GET /v2/pods/::status`). A cluster that does not serve pods answers 404: the page says
// so, it is not an error.

import { ApiError, api, esc, plural } from "./api.js";

/** `{cpus: 0.1, mem: 32}` → "0.1 cpus, 32 MiB". */
function resourcesWords(r) {
  if (!r) return "";
  const parts = [];
  if (r.cpus != null) parts.push(`${r.cpus} cpus`);
  if (r.mem != null) parts.push(`${r.mem} MiB`);
  if (r.disk) parts.push(`${r.disk} MiB disk`);
  if (r.gpus) parts.push(`${r.gpus} gpus`);
  return parts.join(", ");
}

function statusBadge(word) {
  const w = String(word ?? "unknown");
  const cls = /^(STABLE|RUNNING|TASK_RUNNING)$/i.test(w) ? "ok" : /^(DEGRADED|PENDING|STAGING|TASK_STAGING|TASK_STARTING)$/i.test(w) ? "warn" : /(FAIL|LOST|ERROR|KILLED)/i.test(w) ? "bad" : "";
  return `<span class="badge ${cls}">${esc(w.toLowerCase())}</span>`;
}

function podRow(pod) {
  const containers = (pod.containers || [])
    .map((c) => `<li class="container" data-name="${esc(c?.name)}"><code>${esc(c?.name)}</code>
      <span class="muted">${esc(resourcesWords(c?.resources))}</span></li>`)
    .join("");
  return `<tr class="pod" data-id="${esc(pod.id)}"><td class="id">${esc(pod.id)}</td>
    <td><ul class="containers">${containers || `<li class="muted">no containers</li>`}</ul></td>
    <td class="desired num">${esc(pod.scaling?.instances ?? 1)}</td></tr>`;
}

function instanceRows(statuses) {
  const rows = [];
  for (const s of statuses) {
    for (const i of s.instances || []) {
      const containers = (i.containers || [])
        .map((c) => `<span class="container" data-name="${esc(c?.name)}"><code>${esc(c?.name)}</code> ${statusBadge(c?.status)}</span>`)
        .join(" ");
      rows.push(`<tr class="pod-instance" data-pod="${esc(s.id)}" data-id="${esc(i.id)}"><td>${esc(s.id)}</td>
        <td><code>${esc(i.id)}</code></td><td>${statusBadge(i.status)}</td><td>${esc(i.agentHostname)}</td>
        <td>${containers || `<span class="muted">none</span>`}</td></tr>`);
    }
  }
  if (!rows.length) return `<p class="muted" id="no-pod-instances">No pod instances.</p>`;
  return `<table id="pod-instances"><thead><tr><th>Pod</th><th>Instance</th><th>Status</th><th>Agent</th>
    <th>Containers</th></tr></thead><tbody>${rows.join("")}</tbody></table>`;
}

export default {
  nav: "pods",
  title: "Pods",
  mount(main) {
    main.innerHTML = `<h2>Pods</h2><div id="pods-list"><p class="muted">Loading…</p></div>
      <h3>Instances</h3><div id="pods-instances"></div>`;
  },
  async refresh(current) {
    let pods;
    try {
      pods = await api("/v2/pods");
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 404)) throw e;
      if (!current()) return;
      document.getElementById("pods-list").innerHTML = `<p class="muted" id="pods-unavailable">Pods are not available on
        this cluster.</p>`;
      document.getElementById("pods-instances").innerHTML = "";
      return;
    }
    const statuses = await api("/v2/pods/::status").catch((e) => {
      if (e instanceof ApiError && e.status === 404) return [];
      throw e;
    });
    if (!current()) return;
    const list = [...(Array.isArray(pods) ? pods : [])].sort((a, b) => String(a.id).localeCompare(String(b.id)));
    document.getElementById("pods-list").innerHTML = list.length
      ? `<p class="muted">${esc(plural(list.length, "pod"))}.</p><table id="pods"><thead><tr><th>Pod</th>
          <th>Containers (resources each)</th><th class="num">Instances</th></tr></thead><tbody>${list.map(podRow).join("")}</tbody></table>`
      : `<p class="muted" id="no-pods">No pods yet.</p>`;
    document.getElementById("pods-instances").innerHTML = instanceRows(Array.isArray(statuses) ? statuses : []);
  },
};
