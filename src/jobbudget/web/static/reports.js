// Reports: a tenant's period as HTML (shown in a sandboxed frame: no script runs in
// it, and it cannot reach this page), or downloaded as CSV or JSON.
import { api, apiText, q, session } from "./api.js";
import { field, h, put, showError } from "./dom.js";

function download(name, type, text) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const link = h("a", { href: url, download: name, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

export async function reportsPage(main, live) {
  live.watch([]);
  const who = session.who;
  let tenants = who.tenant_id ? [who.tenant_id, ...who.below] : [];
  if (!who.tenant_id) {
    // every tenant with a budget or with spend this month; any other can be typed
    const [budgets, board] = await Promise.all([api("/v1/budgets?include_inactive=true"), api("/v1/dashboard?top=100")]);
    tenants = [...new Set([...budgets.map((b) => b.tenant_id), ...board.drivers.map((d) => d.tenant_id)])].sort();
  }
  const tenant = who.tenant_id
    ? h("select", {}, tenants.map((t) => h("option", { value: t }, t)))
    : h("input", { type: "text", list: "report-tenants", value: tenants[0] || "", spellcheck: "false", autocomplete: "off" });
  const known = h("datalist", { id: "report-tenants" }, tenants.map((t) => h("option", { value: t })));
  const month = String(who.now).slice(0, 7); // the server's month (serve --at moves it)
  const period = h("input", { type: "text", value: month, spellcheck: "false", autocomplete: "off" });
  const frame = h("iframe", { class: "report-frame", title: "Report", sandbox: "", hidden: true, id: "report-frame" });
  const form = h(
    "form",
    { id: "report-form", novalidate: true },
    h("div", { class: "notice bad form-error", role: "alert" }),
    h("div", { class: "row" }, field("tenant", "Tenant", tenant), field("period", "Period (2026-11, 2026-Q4, 2026-W45, 2026 or a day)", period)),
    known,
  );
  form.querySelector(".form-error").textContent = "";
  const path = (format) => `/v1/reports?tenant=${q(tenant.value.trim())}&period=${q(period.value.trim())}&format=${format}`;
  const run = async (format) => {
    showError(form, null, "");
    try {
      const text = await apiText(path(format), { html: "text/html", csv: "text/csv", json: "application/json" }[format]);
      const name = `jobbudget-${tenant.value}-${period.value.trim()}.${format}`;
      if (format === "html") {
        frame.srcdoc = text;
        frame.hidden = false;
      } else {
        download(name, format === "csv" ? "text/csv" : "application/json", text);
      }
    } catch (error) {
      showError(form, error.field, error.message);
    }
  };
  const buttons = [
    ["html", "Open report"],
    ["csv", "Download CSV"],
    ["json", "Download JSON"],
  ].map(([format, label]) => {
    const button = h("button", { type: "button", class: format === "html" ? null : "secondary", id: `report-${format}` }, label);
    button.addEventListener("click", () => run(format));
    return button;
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    run("html");
  });
  put(main, h("h1", { tabindex: "-1" }, "Reports"), form, h("div", { class: "actions" }, buttons), frame);
}
