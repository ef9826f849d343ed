// The Group page (`#/groups/<id>`, the root at `#/groups`): a group's version, its
// dependencies, what is under it as a tree, and its own definition.

import { ApiError, api, esc } from "./api.js";
import { TREE_EMBEDS, groupHref, leaf, renderTree, totals } from "./tree.js";

let groupId = "/";
let missing = false;

/** The API path of a group: `/v2/groups/<id>`, each segment encoded. */
export function groupPath(id) {
  const s = String(id ?? "/");
  return s === "/" ? "/v2/groups" : `/v2/groups${s.split("/").map(encodeURIComponent).join("/")}`;
}

/** Crumbs to each enclosing group: `Services / shop / db /`. */
function crumbs(id) {
  const parts = String(id).split("/").filter(Boolean);
  const links = [`<a href="#/services">Services</a>`, `<a href="#/groups">root</a>`];
  for (let i = 0; i < parts.length - 1; i++) {
    const sub = `/${parts.slice(0, i + 1).join("/")}`;
    links.push(`<a href="${esc(groupHref(sub))}">${esc(parts[i])}</a>`);
  }
  return `${links.join(" / ")} /`;
}

function dependencies(group) {
  const deps = group.dependencies || [];
  if (!deps.length) return `<span class="muted" id="no-dependencies">none</span>`;
  return `<ul id="dependencies">${deps
    .map((d) => `<li data-id="${esc(d)}"><a href="${esc(groupHref(d))}">${esc(d)}</a></li>`)
    .join("")}</ul>`;
}

/** The group without what the tree already shows: its id, dependencies, version. */
function definition(group) {
  const copy = { ...group };
  copy.apps = (group.apps || []).map((a) => a.id);
  copy.groups = (group.groups || []).map((g) => g.id);
  return JSON.stringify(copy, null, 2);
}

export default {
  nav: "services",
  title: "Group",
  mount(main, id) {
    groupId = id || "/";
    missing = false;
    main.innerHTML = `<p class="crumbs">${crumbs(groupId)}</p>
      <div class="title-row"><h2 id="group-id">${esc(groupId === "/" ? "/ (root group)" : groupId)}</h2></div>
      <p id="group-summary" class="muted"></p>
      <table id="group-facts"><tbody>
        <tr><th>Version</th><td id="group-version"></td></tr>
        <tr><th>Dependencies</th><td id="group-dependencies"></td></tr>
      </tbody></table>
      <h3>Under it</h3><div id="group-tree"></div>
      <h3>Definition</h3><pre id="group-json" class="json"></pre>`;
  },
  async refresh(current) {
    if (missing) return;
    const id = groupId;
    let group;
    try {
      group = await api(`${groupPath(id)}?${TREE_EMBEDS}`);
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 404)) throw e;
      if (!current()) return;
      missing = true;
      document.getElementById("main").innerHTML = `<p class="crumbs">${crumbs(id)}</p><h2>${esc(id)}</h2>
        <p id="group-missing" class="result bad">There is no group ${esc(id)}: it was removed, or never created.
        <a href="#/services">See all services</a>.</p>`;
      return;
    }
    if (!current()) return;
    const t = totals(group);
    document.getElementById("group-summary").innerHTML = `${esc(leaf(group.id))}: ${esc(t.apps)} apps,
      ${esc(t.running)} of ${esc(t.desired)} instances running`;
    document.getElementById("group-version").textContent = group.version ?? "N/A";
    document.getElementById("group-dependencies").innerHTML = dependencies(group);
    renderTree(document.getElementById("group-tree"), group);
    document.getElementById("group-json").textContent = definition(group);
  },
};
