// Create or edit a budget.  The API checks everything; its message is shown next to
// the field it names (the same words as the API and the CLI).  A few checks run here
// first, so an empty form names every missing field at once.
import { api, q, session } from "./api.js";
import { field, h, put, showError, showErrors } from "./dom.js";

const PERIODS = ["monthly", "weekly", "daily", "quarterly", "yearly", "custom"];
const CHANNELS = [
  ["", "none"],
  ["email", "e-mail"],
  ["slack", "Slack"],
  ["webhook", "webhook"],
];

function input(type, value, attrs = {}) {
  return h("input", { type, value: value ?? "", autocomplete: "off", ...attrs });
}

/** Errors found before asking the server: [field, message] pairs. */
function precheck(body) {
  const found = [];
  if (!body.tenant_id && "tenant_id" in body) found.push(["tenant_id", "tenant_id: enter the tenant (or team) the budget is for"]);
  if (!body.amount) found.push(["amount", "amount: enter an amount, e.g. 500"]);
  for (const name of ["warning_threshold", "throttle_threshold", "block_threshold"]) {
    const value = Number(body[name]);
    if (body[name] && Number.isFinite(value) && value > 5) {
      found.push([name, `${name}: a fraction of the amount: 0.75 is 75 % (got ${body[name]})`]);
    }
  }
  return found;
}

export async function budgetForm(main, live, id) {
  live.watch([]);
  const old = id ? await api(`/v1/budgets/${q(id)}`) : null;
  const who = session.who;
  const tenant = input("text", old ? old.tenant_id : who.role === "admin" ? "" : who.tenant_id, { required: true, spellcheck: "false", readonly: Boolean(old) });
  const queue = input("text", old?.queue_name, { spellcheck: "false", placeholder: "all queues" });
  const amount = input("text", old?.amount, { inputmode: "decimal", required: true });
  const currency = input("text", old?.currency ?? "USD", { spellcheck: "false" });
  const period = h("select", {}, PERIODS.map((p) => h("option", { value: p, selected: (old?.period.type ?? "monthly") === p }, p)));
  const start = input("date", old?.period.type === "custom" ? old.period.start_date : "");
  const end = input("date", old?.period.type === "custom" ? old.period.end_date : "");
  const timezone = input("text", old?.period.timezone ?? "UTC", { spellcheck: "false" });
  const warn = input("text", old?.warning_threshold ?? "0.75", { inputmode: "decimal" });
  const throttle = input("text", old?.throttle_threshold ?? "0.9", { inputmode: "decimal" });
  const block = input("text", old?.block_threshold ?? "1", { inputmode: "decimal" });
  const custom = h("div", { class: "row", hidden: period.value !== "custom" }, field("period.start_date", "Start date", start), field("period.end_date", "End date", end));
  period.addEventListener("change", () => {
    custom.hidden = period.value !== "custom";
  });
  const channelType = h("select", {}, CHANNELS.map(([value, label]) => h("option", { value }, label)));
  const channelTarget = input("text", "", { spellcheck: "false", placeholder: "ops@example.com or https://…" });
  const channelSecret = input("password", "", { spellcheck: "false", placeholder: "optional: whsec_… (webhooks)" });
  const channelFields = h("div", { class: "row", hidden: true }, field("notifications.target", "Address or URL", channelTarget), field("notifications.metadata", "Signing secret", channelSecret));
  channelType.addEventListener("change", () => {
    channelFields.hidden = !channelType.value;
  });
  const channelNote = old?.notifications.length
    ? `It has ${old.notifications.length} channel(s); a channel chosen here replaces them all (their secrets are not shown, so they cannot be kept alongside).`
    : "Alerts go to the server's channels too; a budget's own channel also gets its alerts.";
  const save = h("button", { type: "submit" }, id ? "Save changes" : "Create budget");
  const form = h(
    "form",
    { class: "budget", novalidate: true, id: "budget-form" },
    h("div", { class: "notice bad form-error", role: "alert" }),
    h("div", { class: "row" }, field("tenant_id", "Tenant (or team / organisation node)", tenant, old ? "A budget stays with its tenant." : null), field("queue_name", "Queue (empty: all queues)", queue)),
    h("div", { class: "row" }, field("amount", "Amount", amount), field("currency", "Currency", currency)),
    h("div", { class: "row" }, field("period.type", "Period", period), field("period.timezone", "Time zone", timezone)),
    custom,
    h("div", { class: "row" }, field("warning_threshold", "Warn at (0.75 = 75 %)", warn), field("throttle_threshold", "Throttle at", throttle), field("block_threshold", "Block at", block)),
    h("fieldset", {}, h("legend", {}, "Notification channel"), h("p", { class: "muted" }, channelNote), field("notifications.type", "Channel", channelType), channelFields),
    h("div", { class: "actions" }, save, h("a", { href: id ? `#/budgets/${q(id)}` : "#/" }, "Cancel")),
  );
  form.querySelector(".form-error").textContent = "";
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = {
      tenant_id: tenant.value.trim(),
      queue_name: queue.value.trim(),
      amount: amount.value.trim(),
      currency: currency.value.trim(),
      period: { type: period.value, timezone: timezone.value.trim() },
      warning_threshold: warn.value.trim(),
      throttle_threshold: throttle.value.trim(),
      block_threshold: block.value.trim(),
    };
    if (period.value === "custom") Object.assign(body.period, { start_date: start.value || null, end_date: end.value || null });
    if (channelType.value) {
      const secret = channelSecret.value.trim();
      body.notifications = [{ type: channelType.value, target: channelTarget.value.trim(), metadata: secret ? { secret } : {} }];
    }
    if (id) delete body.tenant_id; // a budget's tenant does not change
    const early = precheck(body);
    if (early.length) {
      showErrors(form, early);
      return;
    }
    save.disabled = true;
    try {
      const saved = id ? await api(`/v1/budgets/${q(id)}`, { method: "PATCH", body }) : await api("/v1/budgets", { method: "POST", body });
      location.hash = `#/budgets/${q(saved.id)}`;
    } catch (error) {
      // a key that may not budget for that tenant: said next to the tenant
      showError(form, error.field || (error.status === 403 && !id ? "tenant_id" : null), error.message);
    } finally {
      save.disabled = false;
    }
  });
  put(main, h("h1", { tabindex: "-1" }, id ? "Edit budget" : "New budget"), form);
}
