// The dashboard's entry point: sign-in, the router (#/, #/budgets/ID, #/alerts...),
// the live connection's indicator.
import { alertsPage } from "./alerts.js";
import { ApiError, session, signIn, whenSignedOut } from "./api.js";
import { budgetPage } from "./budget.js";
import { field, h, put, showError } from "./dom.js";
import { budgetForm } from "./form.js";
import { Live } from "./live.js";
import { overview } from "./overview.js";
import { reportsPage } from "./reports.js";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const liveBox = document.getElementById("live");
const whoBox = document.getElementById("who");
const signOutButton = document.getElementById("signout");

const LIVE_TEXT = { live: ["● Live", "up"], connecting: ["Connecting…", ""], down: ["Connection lost: reconnecting…", "down"], idle: ["", ""], "signed-out": ["Signed out", "down"] };
const announce = document.getElementById("live-announce");
const live = new Live(() => {}, (state) => {
  const [text, cls] = LIVE_TEXT[state] || ["", ""];
  const before = liveBox.dataset.state;
  liveBox.textContent = text;
  liveBox.className = `live ${cls}`;
  liveBox.dataset.state = state;
  // screen readers hear only that the stream was lost and is back, not every reconnect
  if (state === "down" && before !== "down") announce.textContent = "Live updates lost: reconnecting.";
  if (state === "live" && before === "down") announce.textContent = "Live updates are back.";
  if (state === "signed-out") signOut("Your key was revoked or is no longer valid. Sign in again.");
});

function signOut(message) {
  live.stop();
  session.clear();
  showSignIn(message);
}
whenSignedOut(() => signOut("Your key is no longer valid. Sign in again."));
signOutButton.addEventListener("click", () => signOut("Signed out."));

function showSignIn(message) {
  nav.hidden = true;
  signOutButton.hidden = true;
  whoBox.textContent = "";
  const key = h("input", { type: "password", autocomplete: "off", spellcheck: "false", required: true });
  const button = h("button", { type: "submit" }, "Sign in");
  const form = h(
    "form",
    { class: "signin", id: "signin", novalidate: true },
    h("h1", { tabindex: "-1" }, "Sign in"),
    h("p", { class: "muted" }, "With an API key (jobbudget apikey create). It stays in this tab only, and is sent in a header, never in an address."),
    message ? h("p", { class: "notice" }, message) : null,
    h("div", { class: "notice bad form-error", role: "alert" }),
    field("key", "API key", key),
    button,
  );
  form.querySelector(".form-error").textContent = "";
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!key.value.trim()) {
      showError(form, "key", "Enter an API key.");
      return;
    }
    button.disabled = true;
    try {
      await signIn(key.value.trim());
      key.value = "";
      if (!location.hash || location.hash === "#/signin") location.hash = "#/"; // hashchange routes
      else route();
    } catch (error) {
      showError(form, "key", error.status === 401 ? "That key is unknown or revoked." : error.message);
    } finally {
      button.disabled = false;
    }
  });
  put(main, form);
  key.focus();
}

function showWho() {
  const who = session.who;
  nav.hidden = false;
  signOutButton.hidden = false;
  document.getElementById("nav-new").hidden = !who.can_write;
  const scope = who.tenant_id ? `for ${who.tenant_id}${who.below.length ? ` and the ${who.below.length} tenants below it` : ""}` : "for every tenant";
  const kind = `${who.role} key${who.role === "reporter" ? " (read only)" : ""}`;
  whoBox.textContent = `${who.name ? `${who.name}: ` : ""}${kind} ${scope}`;
}

let navigation = 0;

/** What a page may touch of the live stream: nothing once the reader has moved on
 * (a slow page finishing late must not take over the stream of the page now shown). */
function liveFor(token) {
  return {
    watch(ids) {
      if (token === navigation) live.watch(ids);
    },
    set onStatus(callback) {
      if (token === navigation) live.onStatus = callback;
    },
  };
}

function parse() {
  const [path, query = ""] = location.hash.replace(/^#/, "").split("?");
  try {
    return { parts: path.split("/").filter(Boolean).map(decodeURIComponent), params: new URLSearchParams(query) };
  } catch {
    return { parts: ["not-found"], params: new URLSearchParams() };
  }
}

async function route() {
  const token = ++navigation;
  if (!session.key()) {
    live.stop();
    showSignIn();
    return;
  }
  if (!session.who) {
    try {
      await signIn(session.key());
    } catch (error) {
      if (token === navigation && !(error instanceof ApiError && error.status === 401)) {
        put(main, h("h1", { tabindex: "-1" }, "The server cannot be reached"), h("p", { class: "notice bad", role: "alert" }, error.message));
      }
      return; // a 401: whenSignedOut showed the sign-in
    }
    if (token !== navigation) return;
  }
  showWho();
  const { parts, params } = parse();
  const name = parts[0] === "budgets" ? (parts[1] === "new" ? "new" : "budget") : parts[0] || "overview";
  for (const link of nav.querySelectorAll("a")) {
    if (link.dataset.route === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  live.onStatus = () => {};
  const view = h("div");
  const stream = liveFor(token);
  const editing = name === "budget" && parts[2] === "edit";
  try {
    if ((name === "new" || editing) && !session.who.can_write) put(view, h("h1", { tabindex: "-1" }, "Read only"), h("p", {}, "This key may read budgets, not change them."));
    else if (name === "overview") await overview(view, stream);
    else if (name === "new") await budgetForm(view, stream, null);
    else if (editing) await budgetForm(view, stream, parts[1]);
    else if (name === "budget" && parts.length === 2) await budgetPage(view, stream, parts[1]);
    else if (name === "alerts") await alertsPage(view, stream, params);
    else if (name === "reports") await reportsPage(view, stream);
    else put(view, h("h1", { tabindex: "-1" }, "Not found"), h("p", {}, h("a", { href: "#/" }, "Back to the overview")));
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return;
    const heading = error instanceof ApiError && error.status === 404 ? "Not found" : "Something went wrong";
    put(view, h("h1", { tabindex: "-1" }, heading), h("p", { class: "notice bad", role: "alert" }, error.message), h("p", {}, h("a", { href: "#/" }, "Back to the overview")));
  }
  if (token !== navigation) return; // the reader has moved on
  put(main, view);
  const heading = main.querySelector("h1");
  if (heading && !main.contains(document.activeElement)) heading.focus({ preventScroll: true });
  document.title = `${heading ? heading.textContent : "jobbudget"} · jobbudget`;
}

window.addEventListener("hashchange", route);
route();
