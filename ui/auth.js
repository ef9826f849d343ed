// ACL tokens in the browser. The token comes from the URL fragment (`#token=…`, as drover dev
// prints it; browsers never send fragments to the server) or from the prompt, and lives in
// this tab's sessionStorage only. Every API call sends it as `Authorization: Bearer`; the
// event stream (EventSource cannot set headers) as `?access_token=`, which the master accepts
// on /v2/events only and logs nowhere.

const KEY = "drover.token";

const fromUrl = location.hash.match(/^#token=([^&]+)/);
if (fromUrl) {
  try {
    sessionStorage.setItem(KEY, decodeURIComponent(fromUrl[1]));
  } catch {
    // Storage refused (private mode): the prompt will ask.
  }
  // The secret leaves the address bar (and the history) at once.
  history.replaceState(null, "", `${location.pathname}#/nodes`);
}

/** The token this tab uses, or "". */
export function token() {
  try {
    return sessionStorage.getItem(KEY) || "";
  } catch {
    return "";
  }
}

/** Headers that carry the token, if there is one. */
export function authHeaders() {
  const t = token();
  return t ? { Authorization: `Bearer ${t}` } : {};
}

/** The event stream's URL, with the token when there is one. */
export function eventsUrl(path) {
  const t = token();
  if (!t) return path;
  return `${path}${path.includes("?") ? "&" : "?"}access_token=${encodeURIComponent(t)}`;
}

/** What a 401 or 403 means, in words. */
export function authWords(status) {
  if (status === 401) return "this needs an ACL token: none was given, or it is unknown, revoked or expired";
  if (status === 403) return "the ACL token's policies do not allow this";
  return null;
}

/** Shows the token prompt (once) above the page; submitting keeps the token and reloads. */
export function askForToken(why) {
  if (document.getElementById("token-form")) return;
  const form = document.createElement("form");
  form.id = "token-form";
  form.className = "banner warn";
  form.innerHTML = `<label for="token-input"><b>ACL token needed.</b> <span id="token-why"></span>
    Paste a token's secret (from <code>drover acl bootstrap</code>, <code>drover acl token create</code>,
    or the UI address <code>drover dev</code> prints):</label>
    <input id="token-input" type="password" autocomplete="off" size="40">
    <button type="submit">Use token</button>`;
  form.querySelector("#token-why").textContent = why || "";
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const value = form.querySelector("#token-input").value.trim();
    if (!value) return;
    try {
      sessionStorage.setItem(KEY, value);
    } catch {
      // Nothing to keep it in: it works for this page only.
    }
    location.reload();
  });
  const main = document.getElementById("main");
  main.parentNode.insertBefore(form, main);
}
