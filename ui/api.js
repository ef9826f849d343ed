// Talking to the API, and putting its answers into words. Every value that reaches the page
// goes through esc(); every failure becomes an ApiError whose message a person can read.

import { askForToken, authHeaders, authWords } from "./auth.js";

/** A failed API call: `message` is a sentence, `details` Marathon's per-path errors (422). */
export class ApiError extends Error {
  constructor(message, status, body) {
    super(message);
    this.status = status;
    this.body = body;
    this.details = Array.isArray(body?.details) ? body.details : [];
  }
}

/** Calls the API; resolves to the JSON body (and the response headers), rejects with ApiError. */
export async function api(path, { method = "GET", body, headers = false } = {}) {
  const init = { method, headers: { Accept: "application/json", ...authHeaders() } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = typeof body === "string" ? body : JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    throw new ApiError(`The master did not answer ${method} ${path} (${e.message}). Is drover still running?`, 0, null);
  }
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : {};
  } catch {
    data = null;
  }
  if (res.status === 401) askForToken(data?.message);
  if (!res.ok) {
    throw new ApiError(failure(method, path, res.status, data, text), res.status, data);
  }
  return headers ? { body: data ?? {}, headers: res.headers } : data ?? {};
}

function failure(method, path, status, data, text) {
  const said = data?.message || text.trim() || "no message";
  const what = {
    400: "the request was not understood",
    404: "not found",
    409: "conflict",
    422: "the app definition is not valid",
    502: "the leader could not be reached",
    503: "no leader is elected yet",
  }[status] ?? authWords(status);
  return `${method} ${path} failed (${status}${what ? `, ${what}` : ""}): ${said}`;
}

/** The API path of an app: `/v2/apps/<id>`, each segment of the id encoded. */
export function appPath(id) {
  return `/v2/apps${String(id).split("/").map(encodeURIComponent).join("/")}`;
}

/**
 * Shows a notice above the page (`html` must be escaped already). With `carry`, it survives
 * the next page change: an action that moves to another page says there what it did.
 */
export function notify(html, cls = "ok", { carry = false } = {}) {
  const box = document.getElementById("notice");
  box.className = `notice ${cls}`;
  box.innerHTML = html;
  box.hidden = !html;
  box.dataset.carry = carry ? "1" : "";
}

/** Asks the page to refresh soon (after an action changed something). */
export function changed() {
  window.dispatchEvent(new Event("drover:changed"));
}

/** Escapes a value for HTML; missing values read "N/A". */
export function esc(v) {
  return String(v ?? "N/A").replace(
    /[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c],
  );
}

/** "1 instance", "3 instances". */
export function plural(n, word) {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

/** The hash route of an app's detail page; app ids start with "/". */
export function serviceHref(id) {
  return `#/services${String(id).split("/").map(encodeURIComponent).join("/")}`;
}

/** The placement engine's reason for ruling out agents, as a sentence fragment. */
export function reasonWords(reason, agents) {
  const who = plural(agents, "agent");
  const short = /^insufficient (\w+)$/.exec(reason);
  if (short) return `${who} without enough free ${short[1]}`;
  if (reason === "remote region") {
    return `${who} in other regions (without an @region constraint only the local region is used)`;
  }
  if (reason.startsWith("constraint ")) return `${who} ruled out by the constraint ${reason.slice(11)}`;
  return `${who}: ${reason}`;
}

/** Reasons as an HTML list, most agents first. */
export function reasonsList(reasons) {
  const entries = Object.entries(reasons || {}).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  if (!entries.length) return "";
  return `<ul class="reasons">${entries
    .map(([r, n]) => `<li data-reason="${esc(r)}">${esc(reasonWords(r, n))}</li>`)
    .join("")}</ul>`;
}

/** Marathon's 422 details as an HTML list: one item per path and error. */
export function detailsList(details) {
  if (!details?.length) return "";
  const items = details.flatMap((d) =>
    (d.errors?.length ? d.errors : ["is not valid"]).map(
      (e) => `<li data-path="${esc(d.path)}"><code>${esc(d.path || "/")}</code> ${esc(e)}</li>`,
    ),
  );
  return `<ul class="details">${items.join("")}</ul>`;
}

/** A task's health in words: healthy, unhealthy, or why it is not known. */
export function taskHealth(task, app) {
  const results = task.healthCheckResults || [];
  if (!(app?.healthChecks || []).length && !results.length) return { word: "no health checks", cls: "" };
  if (!results.length) return { word: "not checked yet", cls: "warn" };
  return results.every((r) => r.alive) ? { word: "healthy", cls: "ok" } : { word: "unhealthy", cls: "bad" };
}

/** A Mesos task state in words, with the badge class it shows in. */
export function taskState(state) {
  const words = {
    TASK_STAGING: ["staging", "warn"],
    TASK_STARTING: ["starting", "warn"],
    TASK_RUNNING: ["running", "ok"],
    TASK_KILLING: ["stopping", "warn"],
    TASK_FINISHED: ["finished", ""],
    TASK_KILLED: ["killed", ""],
    TASK_FAILED: ["failed", "bad"],
    TASK_LOST: ["lost", "bad"],
    TASK_ERROR: ["error", "bad"],
    TASK_UNREACHABLE: ["unreachable", "bad"],
    TASK_GONE: ["gone", "bad"],
  }[state];
  return words ? { word: words[0], cls: words[1] } : { word: String(state ?? "unknown").toLowerCase(), cls: "" };
}
