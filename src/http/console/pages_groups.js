// The console's consumer group and security pages (see console.js).
import { api } from "./api.js";
import { enc, errorBox, fmt, h, link, pill, table } from "./dom.js";

/** @typedef {import("./pages_cluster.js").Ctx} Ctx */

/** @param {Ctx} ctx */
export async function groupsPage({ signal }) {
  const { groups } = await api("/v1/groups", { signal });
  return h(
    "div",
    null,
    h("h1", null, "Consumer groups"),
    table(
      ["Group", "State", "Members#"],
      groups.map((/** @type {any} */ g) => [
        link(`#/groups/${enc(g.groupId)}`, g.groupId),
        g.state,
        String(Array.isArray(g.members) ? g.members.length : g.members),
      ]),
    ),
  );
}

/** Total lag samples per group, for the chart: group → [{ at, lag }]. */
export const lagSamples = new Map();

/**
 * A small line chart of lag over time, as SVG (no inline styles: the CSP allows none).
 *
 * @param {{ at: number, lag: number }[]} samples
 */
export function lagChart(samples) {
  const W = 480, H = 120, P = 24;
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("class", "chart");
  svg.setAttribute("width", String(W));
  svg.setAttribute("height", String(H));
  svg.setAttribute("role", "img");
  const max = Math.max(1, ...samples.map((s) => s.lag));
  const t0 = samples[0]?.at ?? 0, t1 = Math.max(t0 + 1, samples[samples.length - 1]?.at ?? 1);
  const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
  line.setAttribute(
    "points",
    samples.map((s) =>
      `${P + ((s.at - t0) / (t1 - t0)) * (W - 2 * P)},${H - P - (s.lag / max) * (H - 2 * P)}`
    ).join(" "),
  );
  svg.append(line);
  const label = document.createElementNS("http://www.w3.org/2000/svg", "text");
  label.setAttribute("x", String(P));
  label.setAttribute("y", "14");
  label.textContent = `total lag, max ${fmt(max)} over ${Math.round((t1 - t0) / 1000)} s`;
  svg.append(label);
  svg.setAttribute("aria-label", label.textContent);
  return svg;
}

/** @param {Ctx} ctx */
export async function groupPage({ parts, signal }) {
  const id = parts[1];
  const [g, o] = await Promise.all([
    api(`/v1/groups/${enc(id)}`, { signal }),
    api(`/v1/groups/${enc(id)}/offsets`, { signal }),
  ]);
  const offsets = o.offsets ?? [];
  const total = offsets.reduce(
    (/** @type {number} */ s, /** @type {any} */ x) => s + (x.lag ?? 0),
    0,
  );
  const samples = lagSamples.get(id) ?? [];
  samples.push({ at: Date.now(), lag: total });
  while (samples.length > 120) samples.shift();
  lagSamples.set(id, samples);
  /** @type {Map<string, string>} */
  const owner = new Map();
  for (const m of g.members ?? []) {
    for (const a of m.assignment ?? []) owner.set(`${a.topic}/${a.partition}`, m.memberId);
  }
  return h(
    "div",
    null,
    h("h1", null, `Consumer group ${id}`),
    h(
      "div",
      { class: "card" },
      h(
        "div",
        null,
        "State: ",
        pill(g.state, g.state === "Stable" ? "good" : g.state === "Empty" ? "" : "warn"),
      ),
      h("div", null, `Generation: ${g.generation ?? "–"}`),
      h("div", null, `Members: ${(g.members ?? []).length}`),
      h("div", null, `Total lag: ${fmt(total)}`),
    ),
    h("h2", null, "Lag over time"),
    lagChart(samples),
    h("h2", null, "Members"),
    table(
      ["Member", "Assignment"],
      (g.members ?? []).map((/** @type {any} */ m) => [
        m.memberId,
        (m.assignment ?? []).map((/** @type {any} */ a) => `${a.topic}-${a.partition}`).join(
          ", ",
        ) || "–",
      ]),
    ),
    h("h2", null, "Offsets and lag"),
    table(
      ["Topic", "Partition#", "Committed#", "Log end#", "Lag#", "Member"],
      offsets.map((/** @type {any} */ x) => [
        link(`#/topics/${enc(x.topic)}`, x.topic),
        String(x.partition),
        fmt(x.offset),
        fmt(x.logEndOffset),
        fmt(x.lag),
        owner.get(`${x.topic}/${x.partition}`) ?? "–",
      ]),
    ),
  );
}

/** @param {Ctx} ctx */
export async function securityPage({ signal }) {
  const who = await api("/v1/auth/whoami", { signal });
  const [keys, acls] = await Promise.all([
    api("/v1/auth/keys", { signal }),
    api("/v1/auth/acls", { signal }),
  ]);
  const result = h("div", { "aria-live": "polite" });
  const rerender = () => globalThis.dispatchEvent(new HashChangeEvent("hashchange"));
  const keyForm = h(
    "form",
    {
      class: "inline",
      onsubmit: async (/** @type {Event} */ e) => {
        e.preventDefault();
        const f = new FormData(/** @type {HTMLFormElement} */ (e.target));
        try {
          const created = await api("/v1/auth/keys", {
            method: "POST",
            body: {
              principal: String(f.get("principal")),
              description: String(f.get("description") ?? "") || undefined,
            },
          });
          result.replaceChildren(
            h(
              "div",
              { class: "card", role: "status" },
              `Key ${created.key.keyId} for ${created.key.principal} created. Its token, shown only now: `,
              h("code", { "data-new-token": "" }, created.token),
            ),
          );
        } catch (err) {
          result.replaceChildren(errorBox(err));
        }
      },
    },
    h("label", null, "Principal", h("input", { name: "principal", required: true })),
    h("label", null, "Description", h("input", { name: "description" })),
    h("button", { type: "submit" }, "Create key"),
  );
  const aclForm = h(
    "form",
    {
      class: "inline",
      onsubmit: async (/** @type {Event} */ e) => {
        e.preventDefault();
        const f = new FormData(/** @type {HTMLFormElement} */ (e.target));
        try {
          await api("/v1/auth/acls", {
            method: "POST",
            body: {
              principal: String(f.get("principal")),
              resourceType: String(f.get("resourceType")),
              resourceName: String(f.get("resourceName")),
              patternType: String(f.get("patternType")),
              operation: String(f.get("operation")),
            },
          });
          rerender();
        } catch (err) {
          result.replaceChildren(errorBox(err));
        }
      },
    },
    h("label", null, "Principal", h("input", { name: "principal", required: true })),
    h(
      "label",
      null,
      "Resource",
      h(
        "select",
        { name: "resourceType" },
        ["topic", "group", "cluster"].map((t) => h("option", null, t)),
      ),
    ),
    h("label", null, "Name", h("input", { name: "resourceName", required: true })),
    h(
      "label",
      null,
      "Pattern",
      h(
        "select",
        { name: "patternType" },
        ["literal", "prefixed"].map((t) => h("option", null, t)),
      ),
    ),
    h(
      "label",
      null,
      "Operation",
      h(
        "select",
        { name: "operation" },
        ["read", "write", "create", "delete", "alter", "describe", "all"].map((t) =>
          h("option", null, t)
        ),
      ),
    ),
    h("button", { type: "submit" }, "Allow"),
  );
  return h(
    "div",
    null,
    h("h1", null, "Security"),
    h(
      "div",
      { class: "card" },
      `Signed in as ${who.principal}${who.superuser ? " (superuser)" : ""}.`,
    ),
    result,
    h("h2", null, "API keys"),
    table(
      ["Key id", "Principal", "Superuser", "Description", "Expires", ""],
      keys.keys.map((/** @type {any} */ k) => [
        k.keyId,
        k.principal,
        k.superuser ? "yes" : "no",
        k.description ?? "",
        k.expiresMs ? new Date(k.expiresMs).toISOString() : "never",
        k.revokedMs ? pill("revoked", "bad") : h("button", {
          class: "secondary",
          type: "button",
          onclick: async () => {
            try {
              await api(`/v1/auth/keys/${enc(k.keyId)}`, { method: "DELETE" });
              rerender();
            } catch (err) {
              result.replaceChildren(errorBox(err));
            }
          },
        }, "Revoke"),
      ]),
    ),
    keyForm,
    h("h2", null, "ACLs"),
    table(
      ["Principal", "Resource", "Name", "Pattern", "Operation", "Permission"],
      acls.acls.map((
        /** @type {any} */ a,
      ) => [
        a.principal,
        a.resourceType,
        a.resourceName,
        a.patternType,
        a.operation,
        a.permission ?? "allow",
      ]),
    ),
    aclForm,
  );
}
