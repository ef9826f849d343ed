// Groups as a tree: the root group, its nested groups (collapsible, each with how many apps
// are under it and their running and desired instances summed), their apps and their pods.
// The data is `GET /v2/groups[/{id}]?embed=group.groups&embed=group.apps&embed=group.apps.counts
// &embed=group.pods`; a cluster without pods answers `pods: []` or leaves it out.

import { esc, plural, serviceHref } from "./api.js";
import { appStatus } from "./services.js";

/** The ids of the groups the user folded; kept across refreshes and page changes. */
const collapsed = new Set();

/** What each tree box shows now, as drawn last. */
const drawn = new WeakMap();

/** The hash route of a group's page; the root is `#/groups`. */
export function groupHref(id) {
  const s = String(id ?? "/");
  if (s === "/" || s === "") return "#/groups";
  return `#/groups${s.split("/").map(encodeURIComponent).join("/")}`;
}

/** The last segment of an id (`/shop/db` → `db`); the root is `/`. */
export function leaf(id) {
  const parts = String(id ?? "").split("/").filter(Boolean);
  return parts.length ? parts[parts.length - 1] : "/";
}

/** A pod's desired instances (Marathon's `scaling.instances`, 1 when not given). */
function podInstances(pod) {
  return pod?.scaling?.instances ?? 1;
}

/** Apps and pods under the group (nested ones included), and the apps' running and desired sums. */
export function totals(group) {
  const t = { apps: 0, pods: 0, running: 0, desired: 0 };
  for (const a of group?.apps || []) {
    t.apps += 1;
    t.running += a.tasksRunning ?? 0;
    t.desired += a.instances ?? 0;
  }
  // A pod's running instances are not in the group's JSON: pods are counted, not summed.
  t.pods += (group?.pods || []).length;
  for (const g of group?.groups || []) {
    const sub = totals(g);
    t.apps += sub.apps;
    t.pods += sub.pods;
    t.running += sub.running;
    t.desired += sub.desired;
  }
  return t;
}

function countsWords(t) {
  const what = [plural(t.apps, "app")];
  if (t.pods) what.push(plural(t.pods, "pod"));
  return `<span class="app-count" data-apps="${t.apps}">${esc(what.join(", "))}</span> ·
    <span class="sum" title="running / desired instances of the apps under it"><span class="running">${esc(t.running)}</span> /
    <span class="desired">${esc(t.desired)}</span> running</span>`;
}

function appItem(app, waiting) {
  const status = appStatus(app, waiting?.[app.id]);
  return `<li class="tree-app" data-id="${esc(app.id)}"><span class="kind muted">app</span>
    <a href="${esc(serviceHref(app.id))}" title="${esc(app.id)}">${esc(leaf(app.id))}</a>
    <span class="badge ${status.cls}">${esc(status.word)}</span>
    <span class="muted sum"><span class="running">${esc(app.tasksRunning ?? 0)}</span> /
    <span class="desired">${esc(app.instances)}</span> running</span></li>`;
}

function podItem(pod) {
  const names = (pod.containers || []).map((c) => c?.name).filter(Boolean);
  return `<li class="tree-pod" data-id="${esc(pod.id)}"><span class="kind badge">pod</span>
    <a href="#/pods" title="${esc(pod.id)}">${esc(leaf(pod.id))}</a>
    <span class="muted">${esc(plural(podInstances(pod), "instance"))}${
      names.length ? ` · containers <span class="containers">${names.map((n) => `<code class="container">${esc(n)}</code>`).join(", ")}</span>` : ""
    }</span></li>`;
}

function groupItem(group, waiting, root) {
  const open = !collapsed.has(group.id);
  const name = root && group.id === "/" ? "/ (root)" : leaf(group.id);
  const subgroups = [...(group.groups || [])].sort((a, b) => a.id.localeCompare(b.id));
  const apps = [...(group.apps || [])].sort((a, b) => a.id.localeCompare(b.id));
  const pods = [...(group.pods || [])].sort((a, b) => String(a.id).localeCompare(String(b.id)));
  const children = [
    ...subgroups.map((g) => groupItem(g, waiting, false)),
    ...apps.map((a) => appItem(a, waiting)),
    ...pods.map(podItem),
  ];
  const deps = group.dependencies?.length
    ? ` <span class="muted small deps">after ${group.dependencies.map((d) => `<code>${esc(d)}</code>`).join(", ")}</span>`
    : "";
  return `<li class="tree-group" data-id="${esc(group.id)}" data-open="${open}">
    <div class="tree-row"><button type="button" class="toggle quiet" data-group="${esc(group.id)}" aria-expanded="${open}"
      title="${open ? "Collapse" : "Expand"} ${esc(group.id)}">${open ? "▾" : "▸"}</button>
    <a class="group-name" href="${esc(groupHref(group.id))}" title="${esc(group.id)}">${esc(name)}</a>
    <span class="muted counts">${countsWords(totals(group))}</span>${deps}</div>
    <ul class="tree-children"${open ? "" : " hidden"}>${
      children.join("") || `<li class="muted empty">empty</li>`
    }</ul></li>`;
}

/** The tree of `group` (with its own node at the top) as HTML. */
export function treeHtml(group, waiting = {}) {
  return `<ul class="tree">${groupItem(group, waiting, true)}</ul>`;
}

/**
 * Renders the tree of `group` into `box`, and makes its toggles fold and unfold groups at
 * once (without waiting for the next refresh).
 */
export function renderTree(box, group, waiting = {}) {
  const html = treeHtml(group, waiting);
  // Unchanged: left as it is (no flicker, and a click in progress finds what it aimed at).
  if (drawn.get(box) !== html) {
    box.innerHTML = html;
    drawn.set(box, html);
  }
  if (box.dataset.wired) return;
  box.dataset.wired = "1";
  box.addEventListener("click", (ev) => {
    const button = ev.target.closest("button.toggle");
    if (!button || !box.contains(button)) return;
    const id = button.dataset.group;
    const li = button.closest("li.tree-group");
    const open = collapsed.has(id);
    if (open) collapsed.delete(id);
    else collapsed.add(id);
    li.dataset.open = String(open);
    button.setAttribute("aria-expanded", String(open));
    button.textContent = open ? "▾" : "▸";
    button.title = `${open ? "Collapse" : "Expand"} ${id}`;
    li.querySelector(":scope > ul.tree-children").hidden = !open;
  });
}

/** The query that reads a group with everything the tree shows. */
export const TREE_EMBEDS = "embed=group.groups&embed=group.apps&embed=group.apps.counts&embed=group.pods";
