// The Deploy page: paste or edit an app definition, see where its instances would go
// (`POST /v1/plan`, a dry run on the live cluster), then deploy it (`POST /v2/apps`).

import { ApiError, api, detailsList, esc, notify, plural, reasonsList, serviceHref } from "./api.js";

const EXAMPLE = `{
  "id": "/hello",
  "cmd": "python3 -m http.server \\"$PORT0\\"",
  "instances": 4,
  "cpus": 0.1,
  "mem": 32,
  "constraints": [["@zone", "GROUP_BY"]],
  "healthChecks": [{ "protocol": "HTTP", "path": "/", "portIndex": 0 }]
}
`;

/** The draft survives moving to other pages and back (for this browser tab). */
const DRAFT_KEY = "drover.deploy.draft";

function result(html, cls, attrs = "") {
  document.getElementById("deploy-result").outerHTML = `<div id="deploy-result" class="result ${cls}" role="status" ${attrs}>${html}</div>`;
}

/** The textarea's JSON, or null after saying what is wrong with it. */
function definition() {
  const text = document.getElementById("app-json-input").value;
  if (!text.trim()) {
    result("Paste an app definition (JSON) first.", "bad");
    return null;
  }
  try {
    const app = JSON.parse(text);
    if (typeof app !== "object" || app === null || Array.isArray(app)) {
      result("The definition must be one JSON object, like the example.", "bad");
      return null;
    }
    return { text, app };
  } catch (e) {
    result(`The text is not valid JSON: ${esc(e.message)}. Nothing was sent.`, "bad");
    return null;
  }
}

function failed(what, e, app) {
  let html = `${esc(what)} failed: ${esc(e.message)}`;
  if (e instanceof ApiError && e.status === 422) {
    html = `${esc(what)} failed: the definition is not valid. Fix these fields:${detailsList(e.details)}`;
  } else if (e instanceof ApiError && e.status === 409 && app?.id) {
    html += `<br>Open <a href="${esc(serviceHref(normalized(app.id)))}">${esc(normalized(app.id))}</a> to scale or
      remove it, or change the <code>id</code> to deploy another service.`;
  }
  result(html, "bad", `data-status="${esc(e.status ?? 0)}"`);
}

function normalized(id) {
  return String(id).startsWith("/") ? String(id) : `/${id}`;
}

/** The dry run's answer: counts per region and zone, and why instances are left unplaced. */
function planHtml(plan) {
  const placements = plan.placements || [];
  const total = placements.length + (plan.unplaced ?? 0);
  const byZone = {};
  for (const p of placements) {
    const key = `${p.region}\u0000${p.zone ?? "no zone"}`;
    (byZone[key] ||= { region: p.region, zone: p.zone ?? "no zone", hosts: new Set(), count: 0 }).count += 1;
    byZone[key].hosts.add(p.hostname);
  }
  const rows = Object.values(byZone)
    .sort((a, b) => `${a.region}/${a.zone}`.localeCompare(`${b.region}/${b.zone}`))
    .map(
      (z) => `<tr class="plan-zone" data-region="${esc(z.region)}" data-zone="${esc(z.zone)}" data-count="${z.count}">
        <td>${esc(z.region)}${z.region === plan.local_region ? ` <span class="local">(Local)</span>` : ""}</td>
        <td>${esc(z.zone)}</td><td class="num">${esc(z.count)}</td><td class="muted">${esc([...z.hosts].sort().join(", "))}</td></tr>`,
    );
  const running = plan.running ? ` ${esc(plural(plan.running, "instance"))} of it already run and stay.` : "";
  let headline;
  if (total === 0) headline = `Nothing to place: the service already has all its instances.${running}`;
  else if (!plan.unplaced) headline = `All ${esc(plural(total, "new instance"))} can be placed.${running}`;
  else headline = `${esc(placements.length)} of ${esc(plural(total, "new instance"))} can be placed; ${esc(plan.unplaced)} cannot.${running}`;
  const table = rows.length
    ? `<table id="plan-table"><thead><tr><th>Region</th><th>Zone</th><th class="num">Instances</th><th>Agents</th></tr></thead>
       <tbody>${rows.join("")}</tbody></table>`
    : "";
  const reasons = plan.unplaced ? `<p>Why not: agents ruled out, by reason:</p>${reasonsList(plan.reasons)}` : "";
  return `<p class="headline">${headline}</p>${table}${reasons}<p class="muted">A dry run: nothing was deployed.</p>`;
}

async function dryRun() {
  const def = definition();
  if (!def) return;
  result("Planning …", "");
  try {
    const plan = await api("/v1/plan", { method: "POST", body: def.text });
    const placed = (plan.placements || []).length;
    result(planHtml(plan), plan.unplaced ? "warn" : "ok", `data-placed="${placed}" data-unplaced="${esc(plan.unplaced ?? 0)}"`);
  } catch (e) {
    failed("The dry run", e, def.app);
  }
}

async function deploy() {
  const def = definition();
  if (!def) return;
  result("Deploying …", "");
  try {
    const { body, headers } = await api("/v2/apps", { method: "POST", body: def.text, headers: true });
    const id = body.id ?? normalized(def.app.id);
    const deployment = headers.get("Marathon-Deployment-Id");
    notify(
      `Deployed ${esc(id)}.${deployment ? ` Deployment <code>${esc(deployment)}</code> started.` : ""}`,
      "ok",
      { carry: true },
    );
    location.hash = serviceHref(id);
  } catch (e) {
    failed("Deploying", e, def.app);
  }
}

export default {
  nav: "deploy",
  title: "Deploy",
  mount(main) {
    main.innerHTML = `<h2>Deploy a service</h2>
      <p class="muted">Paste or edit a Marathon app definition. <b>Dry run</b> shows where its instances would go on
      this cluster right now; <b>Deploy</b> creates it.</p>
      <textarea id="app-json-input" spellcheck="false" rows="18" aria-label="App definition (JSON)"></textarea>
      <div class="actions">
        <button id="dry-run" type="button">Dry run</button>
        <button id="deploy" type="button" class="primary">Deploy</button>
        <button id="reset-example" type="button" class="quiet">Reset to the example</button>
      </div>
      <div id="deploy-result" class="result" role="status" hidden></div>`;
    const input = document.getElementById("app-json-input");
    input.value = sessionStorage.getItem(DRAFT_KEY) ?? EXAMPLE;
    input.addEventListener("input", () => sessionStorage.setItem(DRAFT_KEY, input.value));
    document.getElementById("dry-run").addEventListener("click", dryRun);
    document.getElementById("deploy").addEventListener("click", deploy);
    document.getElementById("reset-example").addEventListener("click", () => {
      input.value = EXAMPLE;
      sessionStorage.removeItem(DRAFT_KEY);
    });
  },
  // A form: live updates must not overwrite what the user is typing, so nothing to refresh.
  async refresh() {},
};
