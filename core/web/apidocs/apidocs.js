// Renders /openapi.json: operations grouped by tag, with parameters, request bodies,
// responses and their schemas. Text goes in with textContent only (never innerHTML).
"use strict";

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value; else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

function resolve(spec, schema, seen) {
  while (schema && schema.$ref) {
    if (seen.has(schema.$ref)) return { description: "(recursive: " + schema.$ref + ")" };
    seen = new Set(seen).add(schema.$ref);
    schema = schema.$ref.replace(/^#\//, "").split("/").reduce((obj, part) => obj && obj[part], spec);
  }
  return [schema || {}, seen];
}

function typeName(schema) {
  if (schema.enum) return "one of " + schema.enum.map((v) => JSON.stringify(v)).join(", ");
  if (schema.type === "array" && schema.items) return "array of " + (schema.items.type || "object");
  if (Array.isArray(schema.type)) return schema.type.join(" | ");
  if (schema.anyOf || schema.oneOf) return (schema.anyOf || schema.oneOf).map((s) => s.type || "object").join(" | ");
  return schema.type || "object";
}

function schemaTree(spec, schema, seen, depth) {
  let resolved;
  [resolved, seen] = resolve(spec, schema, seen || new Set());
  const list = el("ul", { class: "schema" });
  const props = resolved.properties || (resolved.items && resolve(spec, resolved.items, seen)[0].properties);
  if (!props || depth > 4) {
    list.append(el("li", {}, el("span", { class: "type" }, typeName(resolved)),
      resolved.description ? " — " + resolved.description : ""));
    return list;
  }
  const required = new Set(resolved.required || []);
  for (const [name, sub] of Object.entries(props)) {
    const [subResolved] = resolve(spec, sub, seen);
    const item = el("li", {}, el("code", {}, name), " ", el("span", { class: "type" }, typeName(subResolved)),
      required.has(name) ? el("span", { class: "req" }, " required") : null,
      subResolved.description ? " — " + subResolved.description : "");
    if (subResolved.properties || (subResolved.items && resolve(spec, subResolved.items, seen)[0].properties)) {
      item.append(schemaTree(spec, sub, seen, depth + 1));
    }
    list.append(item);
  }
  return list;
}

function content(spec, body) {
  const parts = [];
  for (const [mediaType, media] of Object.entries((body && body.content) || {})) {
    parts.push(el("p", {}, el("code", {}, mediaType)));
    if (media.schema) parts.push(schemaTree(spec, media.schema, null, 0));
    if (media.example !== undefined) parts.push(el("pre", {}, JSON.stringify(media.example, null, 2)));
  }
  return parts;
}

function operation(spec, path, method, op) {
  const id = op.operationId || method + path;
  const box = el("details", { class: "op", id: "op-" + id, "data-search": [path, op.summary, ...(op.tags || [])]
    .join(" ").toLowerCase() });
  box.append(el("summary", {}, el("span", { class: "method " + method }, method), el("span", { class: "path" }, path),
    el("span", {}, op.summary || "")));
  const body = el("div");
  if (op.description) body.append(el("p", {}, op.description));
  const security = op.security || spec.security || [];
  body.append(el("p", {}, "Authentication: ", security.length
    ? security.map((s) => Object.keys(s).join(" + ") || "none").join(" or ") : "none"));
  const params = (op.parameters || []).map((p) => resolve(spec, p, new Set())[0]);
  if (params.length) {
    const table = el("table", {}, el("tr", {}, el("th", {}, "Parameter"), el("th", {}, "In"),
      el("th", {}, "Type"), el("th", {}, "Description")));
    for (const p of params) {
      table.append(el("tr", {}, el("td", {}, el("code", {}, p.name), p.required ? el("span", { class: "req" }, " required") : null),
        el("td", {}, p.in || ""), el("td", {}, typeName(resolve(spec, p.schema || {}, new Set())[0])),
        el("td", {}, p.description || "")));
    }
    body.append(el("h4", {}, "Parameters"), table);
  }
  if (op.requestBody) body.append(el("h4", {}, "Request body"), ...content(spec, resolve(spec, op.requestBody, new Set())[0]));
  body.append(el("h4", {}, "Responses"));
  for (const [code, response] of Object.entries(op.responses || {})) {
    const resolved = resolve(spec, response, new Set())[0];
    body.append(el("p", {}, el("strong", {}, code), " ", resolved.description || ""), ...content(spec, resolved));
  }
  box.append(body);
  return box;
}

async function main() {
  const spec = await (await fetch("/openapi.json")).json();
  const info = spec.info || {};
  document.title = (info.title || "API") + " " + (info.version || "");
  document.getElementById("title").textContent = (info.title || "API") + " " + (info.version || "");
  document.getElementById("meta").replaceChildren(info.description || "", " OpenAPI " + (spec.openapi || "?") + " — ",
    el("a", { href: "/openapi.json" }, "/openapi.json"));
  const groups = new Map();
  for (const [path, item] of Object.entries(spec.paths || {})) {
    for (const [method, op] of Object.entries(item)) {
      if (!["get", "post", "put", "patch", "delete"].includes(method)) continue;
      const tag = (op.tags && op.tags[0]) || "other";
      if (!groups.has(tag)) groups.set(tag, []);
      groups.get(tag).push([path, method, op]);
    }
  }
  const main = document.getElementById("operations");
  const toc = document.getElementById("toc");
  for (const [tag, ops] of groups) {
    const section = el("section", { class: "tag", id: "tag-" + tag }, el("h2", {}, tag));
    toc.append(el("h2", {}, tag));
    for (const [path, method, op] of ops) {
      const box = operation(spec, path, method, op);
      section.append(box);
      toc.append(el("a", { href: "#" + box.id }, method.toUpperCase() + " " + path));
    }
    main.append(section);
  }
  if (location.hash.startsWith("#op-")) {
    const target = document.getElementById(location.hash.slice(1));
    if (target) { target.open = true; target.scrollIntoView(); }
  }
  document.getElementById("filter").addEventListener("input", (event) => {
    const words = event.target.value.toLowerCase().split(/\s+/).filter(Boolean);
    for (const box of main.querySelectorAll("details.op")) {
      box.hidden = !words.every((w) => box.dataset.search.includes(w));
    }
  });
}

main().catch((err) => { document.getElementById("meta").textContent = "Could not load /openapi.json: " + err; });
