// Alerts: active (not acknowledged) and history, acknowledge, and each delivery's
// status per channel.  The list is read again when a watched budget's spend or state
// changes (a new alert comes with such a change), without reconnecting the stream.
import { api, q, session } from "./api.js";
import { h, money, percent, put, throttled, when } from "./dom.js";

const KINDS = { warning: "Warning", throttle: "Throttle", block: "Block", forecast_overrun: "Forecast overrun", period_reset: "Period reset" };
const LIMIT = 500;
const SEVERITY = { period_reset: 0, warning: 1, forecast_overrun: 2, throttle: 3, block: 4 };

function deliveries(alert) {
  if (!alert.deliveries.length) return h("span", { class: "muted" }, "no channel");
  return h(
    "ul",
    { class: "deliveries" },
    alert.deliveries.map((d) =>
      h("li", {}, `${d.channel_type} ${d.target}: ${d.status}${d.attempts > 1 ? ` after ${d.attempts} attempts` : ""}${d.last_error ? ` (${d.last_error})` : ""}`),
    ),
  );
}

/** Newest first; at the same instant the most severe first, then by budget (a stable order). */
function ordered(alerts) {
  return alerts.sort(
    (a, b) =>
      b.event.occurred_at.localeCompare(a.event.occurred_at) ||
      (SEVERITY[b.event.type] ?? 0) - (SEVERITY[a.event.type] ?? 0) ||
      a.event.tenant_id.localeCompare(b.event.tenant_id) ||
      a.event.queue_name.localeCompare(b.event.queue_name) ||
      a.event.id.localeCompare(b.event.id),
  );
}

export async function alertsPage(main, live, params) {
  const showAll = params.get("all") === "1";
  const result = h("p", { role: "status", class: "muted", id: "ack-result" });
  const list = h("div", { id: "alert-list" });

  const row = (a) => {
    const e = a.event;
    let ack;
    if (a.acknowledged_at) ack = h("span", { class: "muted" }, `acknowledged by ${a.acknowledged_by} ${when(a.acknowledged_at)}`);
    else if (!session.who.can_write) ack = h("span", { class: "muted" }, "open");
    else {
      ack = h("button", { type: "button", class: "secondary", dataset: { alert: e.id }, "aria-label": `Acknowledge ${KINDS[e.type] || e.type} alert of ${e.tenant_id}` }, "Acknowledge");
      ack.addEventListener("click", async () => {
        ack.disabled = true;
        try {
          await api(`/v1/alerts/${q(e.id)}/ack`, { method: "POST", body: {} });
          await load();
          result.textContent = `${KINDS[e.type] || e.type} alert of ${e.tenant_id} / ${e.queue_name || "all queues"} acknowledged.`;
          (list.querySelector("button") || main.querySelector("h1")).focus();
        } catch (error) {
          ack.disabled = false;
          result.textContent = error.message;
        }
      });
    }
    return h(
      "tr",
      { dataset: { alert: e.id } },
      h("td", { class: "hide-narrow" }, when(e.occurred_at)),
      h("td", {}, h("a", { href: `#/budgets/${q(e.budget_id)}` }, `${e.tenant_id} / ${e.queue_name || "all queues"}`)),
      h("td", {}, KINDS[e.type] || e.type),
      h("td", { class: "n" }, `${money(e.current_spend)} of ${money(e.budget_amount)} ${e.currency} (${percent(e.utilization)})`),
      h("td", { class: "hide-narrow" }, deliveries(a)),
      h("td", {}, ack),
    );
  };

  const load = async () => {
    const alerts = ordered(await api(`/v1/alerts?limit=${LIMIT}${showAll ? "" : "&active_only=true"}`));
    put(
      list,
      alerts.length === LIMIT ? h("p", { class: "muted" }, `The newest ${LIMIT} alerts (the API's /v1/alerts lists up to 5,000).`) : null,
      alerts.length
        ? h(
            "div",
            { class: "scroll" },
            h(
              "table",
              { id: "alerts" },
              h("thead", {}, h("tr", {}, ["When", "Budget", "Event", "Spend", "Deliveries", ""].map((t, i) => h("th", { scope: "col", class: i === 0 || i === 4 ? "hide-narrow" : i === 3 ? "n" : null }, t)))),
              h("tbody", {}, alerts.map(row)),
            ),
          )
        : h("p", { class: "muted", id: "no-alerts" }, showAll ? "No alerts yet." : "No active alerts."),
    );
  };

  const toggle = (all, label) => {
    const button = h("button", { type: "button", "aria-pressed": String(all === showAll) }, label);
    button.addEventListener("click", () => {
      location.hash = all ? "#/alerts?all=1" : "#/alerts";
    });
    return button;
  };
  const [, budgets] = await Promise.all([load(), api("/v1/budgets")]);
  put(
    main,
    h("h1", { tabindex: "-1" }, "Alerts"),
    h("div", { class: "tabs", role: "group", "aria-label": "Which alerts" }, toggle(false, "Active"), toggle(true, "History")),
    result,
    list,
  );

  const seen = new Map();
  const later = throttled(() => load().catch(() => {}), 300, 3000); // at most every 3 s
  live.onStatus = (m) => {
    const now = `${Number(m.current_spend)} ${m.action} ${m.period_start}`;
    const before = seen.get(m.budget_id);
    seen.set(m.budget_id, now);
    if (before === undefined || before === now) return; // the snapshot on (re)connecting
    later();
  };
  live.watch(budgets.map((b) => b.id));
}
