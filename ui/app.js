// drover's web UI: plain JS modules, no build step. Hash routes pick a page; a page mounts its
// skeleton once and refreshes its data when /v2/events says something changed (debounced),
// every few seconds, and after the user's own actions.

import { api, esc } from "./api.js";
import { eventsUrl } from "./auth.js";
import deployPage from "./deploy.js";
import groupPage from "./group.js";
import nodesPage from "./nodes.js";
import podsPage from "./pods.js";
import servicePage from "./service.js";
import servicesPage from "./services.js";

const main = document.getElementById("main");
const errorBox = document.getElementById("error");
const notice = document.getElementById("notice");

/** An id from the rest of a hash route (`/shop/db`), each segment decoded. */
function idOf(raw) {
  try {
    return raw.split("/").map(decodeURIComponent).join("/");
  } catch {
    // A hand-typed malformed escape: look the id up as typed; the page says if it is missing.
    return raw;
  }
}

/** The page for a hash, and its argument (an app or group id for the detail pages). */
function route(hash) {
  if (hash === "#/groups" || hash === "#/groups/") return [groupPage, "/"];
  if (hash.startsWith("#/groups/")) return [groupPage, idOf(hash.slice("#/groups".length).replace(/\/+$/, ""))];
  if (hash === "#/pods") return [podsPage, null];
  if (hash === "#/services") return [servicesPage, null];
  if (hash.startsWith("#/services/") && hash.length > "#/services/".length) {
    return [servicePage, idOf(hash.slice("#/services".length))];
  }
  if (hash === "#/services/") return [servicesPage, null];
  if (hash === "#/deploy") return [deployPage, null];
  return [nodesPage, null];
}

let page = null;
let generation = 0;

function showError(e) {
  errorBox.hidden = false;
  errorBox.innerHTML = `<b>Could not refresh this page:</b> ${esc(e.message)}
    <span class="muted">(retrying every few seconds)</span>`;
}

async function refresh() {
  if (!page) return;
  const mine = generation;
  try {
    await page.refresh(() => mine === generation);
    if (mine === generation) errorBox.hidden = true;
  } catch (e) {
    if (mine === generation) showError(e);
  }
  const leader = await api("/v2/leader").catch((e) => ({ error: e }));
  document.getElementById("leader").textContent = leader.error
    ? leader.error.status ? "no leader known" : "master not answering"
    : `leader: ${leader.leader}`;
}

function mount() {
  const [next, arg] = route(location.hash);
  generation += 1;
  page = next;
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.dataset.nav === page.nav);
  document.title = `${page.title}${arg ? ` ${arg}` : ""} · drover`;
  if (notice.dataset.carry === "1") notice.dataset.carry = "";
  else notice.hidden = true;
  errorBox.hidden = true;
  page.mount(main, arg);
  refresh();
}

let pending = null;
function refreshSoon() {
  if (pending) return;
  pending = setTimeout(() => {
    pending = null;
    refresh();
  }, 300);
}

function liveUpdates() {
  const live = document.getElementById("live");
  const events = new EventSource(eventsUrl("/v2/events"));
  events.onopen = () => {
    live.textContent = "live";
    live.className = "badge ok";
    live.title = "Updates arrive from /v2/events as they happen.";
  };
  events.onerror = () => {
    live.textContent = "reconnecting";
    live.className = "badge warn";
    live.title = "The event stream from the master was interrupted; the page still refreshes every 5 s.";
  };
  events.onmessage = refreshSoon;
  for (const t of [
    "status_update_event",
    "instance_changed_event",
    "instance_health_changed_event",
    "health_status_changed_event",
    "api_post_event",
    "app_terminated_event",
    "deployment_info",
    "deployment_success",
    "deployment_failed",
    "deployment_step_success",
    "deployment_step_failure",
    "group_change_success",
    "group_change_failed",
  ]) {
    events.addEventListener(t, refreshSoon);
  }
}

window.addEventListener("hashchange", mount);
window.addEventListener("drover:changed", refreshSoon);
liveUpdates();
setInterval(refresh, 5000);
mount();
