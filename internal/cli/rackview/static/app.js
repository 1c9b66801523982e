// The live rack view: a snapshot of the servers, then their changes, from /events
// (server-sent events fed by the plugin's watch). Everything a server says is put on the
// page as text, never as markup.
"use strict";

const token = new URLSearchParams(location.search).get("token") || "";
const servers = new Map();
const states = ["Available", "Reserved", "Released", "Initial", "Discovery", "Error", "Parked", "Unknown"];
const rackUnits = 42;
let selected = "";

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k.startsWith("data-")) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) e.append(c);
  return e;
}

function legend() {
  const ul = document.getElementById("legend");
  for (const s of states) {
    const li = el("li", {}, s);
    li.style.setProperty("--c", `var(--${s})`);
    ul.append(li);
  }
}

function serverBox(s) {
  const box = el("div", {
    class: `server state-${states.includes(s.state) ? s.state : "Unknown"} pool-${s.pool}` + (s.name === selected ? " selected" : ""),
    "data-name": s.name, "data-pool": s.pool, "data-state": s.state,
    title: `${s.name}: ${s.state}, power ${s.power}, ${s.pool}` + (s.claim ? `, claim ${s.namespace}/${s.claim}` : ""),
  }, s.name);
  if (s.claim) box.append(el("span", { class: "claim" }, `${s.namespace}/${s.claim}`));
  box.addEventListener("click", () => showDetail(s.name));
  return box;
}

function byName(a, b) { return a < b ? -1 : a > b ? 1 : 0; }

function render() {
  const locations = new Map();
  for (const s of servers.values()) {
    const loc = s.location || "(no location)";
    const rack = s.rack || "(no rack)";
    if (!locations.has(loc)) locations.set(loc, new Map());
    const racks = locations.get(loc);
    if (!racks.has(rack)) racks.set(rack, []);
    racks.get(rack).push(s);
  }
  const root = el("div", {});
  for (const loc of [...locations.keys()].sort(byName)) {
    const racksEl = el("div", { class: "racks" });
    const racks = locations.get(loc);
    for (const rack of [...racks.keys()].sort(byName)) {
      const list = racks.get(rack).sort((a, b) => byName(a.name, b.name));
      const top = Math.max(rackUnits, ...list.filter(s => s.shelf > 0).map(s => s.shelf + s.height - 1));
      const units = el("div", { class: "units" });
      units.style.gridTemplateRows = `repeat(${top}, var(--unit))`;
      const unplaced = el("div", { class: "unplaced" });
      for (const s of list) {
        const box = serverBox(s);
        if (s.shelf > 0) {
          box.style.gridRow = `${top - (s.shelf + s.height - 1) + 1} / span ${s.height}`;
          units.append(box);
        } else {
          unplaced.append(box);
        }
      }
      const rackEl = el("section", { class: "rack", "data-rack": rack }, el("h3", {}, `Rack ${rack} (${list.length})`));
      if (units.childElementCount > 0) rackEl.append(units);
      if (unplaced.childElementCount > 0) rackEl.append(unplaced);
      racksEl.append(rackEl);
    }
    root.append(el("section", { class: "location", "data-location": loc }, el("h2", {}, loc), racksEl));
  }
  document.getElementById("locations").replaceChildren(root);
  const counts = { free: 0, claimed: 0, "out-of-pool": 0 };
  for (const s of servers.values()) counts[s.pool] = (counts[s.pool] || 0) + 1;
  document.getElementById("summary").textContent =
    `${servers.size} servers: ${counts.free} free, ${counts.claimed} claimed, ${counts["out-of-pool"]} out of pool`;
  if (selected && servers.has(selected)) showDetail(selected, true);
}

let pending = false;
function scheduleRender() {
  if (pending) return;
  pending = true;
  requestAnimationFrame(() => { pending = false; render(); });
}

async function showDetail(name, quiet) {
  selected = name;
  if (!quiet) for (const b of document.querySelectorAll(".server")) b.classList.toggle("selected", b.dataset.name === name);
  const resp = await fetch(`/api/servers/${encodeURIComponent(name)}?token=${encodeURIComponent(token)}`);
  if (!resp.ok || selected !== name) return;
  const d = await resp.json();
  document.getElementById("detail").hidden = false;
  document.getElementById("detail-name").textContent = d.name;
  const dl = document.getElementById("detail-summary");
  dl.replaceChildren();
  for (const [k, v] of [["State", d.state], ["Power", d.power], ["Pool", d.pool],
    ["Claim", d.claim ? `${d.namespace}/${d.claim}` : "-"], ["Location", d.location || "-"], ["Rack", d.rack || "-"],
    ["Shelf", d.shelf ? `U${d.shelf}, ${d.height}U` : "-"]]) {
    dl.append(el("dt", {}, k), el("dd", {}, String(v)));
  }
  const body = document.querySelector("#detail-conditions tbody");
  body.replaceChildren();
  for (const c of d.conditions) {
    body.append(el("tr", { "data-type": c.type }, el("td", {}, c.type), el("td", {}, c.status), el("td", {}, c.reason),
      el("td", {}, c.message || ""), el("td", {}, c.lastTransitionTime || "")));
  }
  document.getElementById("detail-wipe").textContent = d.lastWipe ? JSON.stringify(d.lastWipe, null, 2) : "none recorded";
}

function connect() {
  const status = document.getElementById("status");
  const es = new EventSource(`/events?token=${encodeURIComponent(token)}`);
  es.addEventListener("snapshot", (e) => {
    servers.clear();
    for (const s of JSON.parse(e.data)) servers.set(s.name, s);
    status.textContent = "live";
    status.className = "status-live";
    scheduleRender();
  });
  es.addEventListener("change", (e) => {
    const m = JSON.parse(e.data);
    if (m.op === "upsert") servers.set(m.server.name, m.server);
    else if (m.op === "delete") servers.delete(m.name);
    scheduleRender();
  });
  es.onerror = () => {
    status.textContent = "reconnecting";
    status.className = "status-lost";
  };
}

document.getElementById("close").addEventListener("click", () => {
  selected = "";
  document.getElementById("detail").hidden = true;
  for (const b of document.querySelectorAll(".server.selected")) b.classList.remove("selected");
});
legend();
connect();
