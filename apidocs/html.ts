import type { DocEnum, DocField, DocFile, DocMessage, DocMethod, DocModel, DocService, DocTypeRef } from "./model";
import { PAGE_SCRIPT, PAGE_STYLE } from "./page-assets";

/** How the page is served. */
export interface HtmlOptions {
  /** Where the page posts "try it" calls; without one the page is read-only and says how to serve it. */
  readonly tryEndpoint?: string;
  /** The target filled in for "try it" calls. */
  readonly target?: string;
  /** Methods (by `/pkg.Service/Method`) that can also be tried over HTTP, with their route (`GET /v1/x/{id}`). */
  readonly httpRoutes?: Readonly<Record<string, string>>;
  /** Where HTTP tries go (shown on the page). */
  readonly httpVia?: string;
}

/**
 * The API docs as one self-contained HTML page (styles and script inline, no
 * network access needed to read it). Each method has a "try it" panel that
 * sends a JSON request through the endpoint `protomesh docs --serve` runs.
 */
export function renderHtml(model: DocModel, options: HtmlOptions = {}): string {
  const body = [
    `<body${options.tryEndpoint ? ` data-try-endpoint="${attr(options.tryEndpoint)}"` : ""}>`,
    `<nav>`,
    `<h1>API reference</h1>`,
    ...nav(model),
    `</nav>`,
    `<main>`,
    tryBar(options),
    ...model.files.map((f) => fileSection(f, options)),
    `</main>`,
    `<script>${PAGE_SCRIPT}</script>`,
    `</body>`,
  ];
  return [
    "<!DOCTYPE html>",
    `<html lang="en">`,
    `<head>`,
    `<meta charset="utf-8">`,
    `<meta name="viewport" content="width=device-width, initial-scale=1">`,
    `<meta name="generator" content="protomesh docs">`,
    `<title>API reference</title>`,
    `<style>${PAGE_STYLE}</style>`,
    `</head>`,
    ...body,
    `</html>`,
    "",
  ].join("\n");
}

function nav(model: DocModel): string[] {
  const lines = ["<ul>"];
  for (const file of model.files) {
    lines.push(`<li><span class="file">${esc(file.name)}</span><ul>`);
    for (const s of file.services) lines.push(`<li>${navLink(s.fullName, s.name, "service", s.deprecated)}</li>`);
    for (const m of file.messages) lines.push(`<li>${navLink(m.fullName, m.name, "message", m.deprecated)}</li>`);
    for (const e of file.enums) lines.push(`<li>${navLink(e.fullName, e.name, "enum", e.deprecated)}</li>`);
    lines.push("</ul></li>");
  }
  lines.push("</ul>");
  return lines;
}

function navLink(id: string, text: string, kind: string, deprecated: boolean): string {
  return `<a href="#${attr(id)}" class="${kind}${deprecated ? " deprecated" : ""}"><span class="kind">${kind}</span> ${esc(text)}</a>`;
}

function tryBar(options: HtmlOptions): string {
  return [
    `<section id="try-settings" class="try-settings">`,
    `<label>Target <input id="try-target" value="${attr(options.target ?? "")}" placeholder="host:port or etcd:///service"></label>`,
    `<label>Deadline (ms) <input id="try-deadline" type="number" min="1" value="10000"></label>`,
    `<label>Metadata <textarea id="try-metadata" rows="1" placeholder="key: value, one per line"></textarea></label>`,
    `<p id="try-note" class="note"></p>`,
    `</section>`,
  ].join("\n");
}

function fileSection(file: DocFile, options: HtmlOptions = {}): string {
  return [
    `<section class="file">`,
    `<h2>${esc(file.name)}</h2>`,
    `<p class="package">Package <code>${esc(file.package || "(none)")}</code></p>`,
    comment(file.comment),
    ...file.services.map((svc) => serviceSection(svc, options)),
    ...file.messages.map(messageSection),
    ...file.enums.map(enumSection),
    `</section>`,
  ]
    .filter(Boolean)
    .join("\n");
}

function serviceSection(service: DocService, options: HtmlOptions = {}): string {
  return [
    `<section class="service" id="${attr(service.fullName)}">`,
    `<h3><span class="kind">service</span> ${esc(service.fullName)}${badge(service.deprecated)}</h3>`,
    comment(service.comment),
    ...service.methods.map((m) => methodSection(m, options)),
    `</section>`,
  ]
    .filter(Boolean)
    .join("\n");
}

function methodSection(method: DocMethod, options: HtmlOptions = {}): string {
  const route = method.requestStream ? undefined : options.httpRoutes?.[method.path];
  const template = JSON.stringify(method.requestStream ? [method.template] : method.template, null, 2);
  return [
    `<article class="method" id="${attr(method.fullName)}">`,
    `<h4>${esc(method.name)} <span class="call-kind">${esc(method.kind)}</span>${badge(method.deprecated)}</h4>`,
    `<p class="signature"><code>${esc(method.path)}</code></p>`,
    `<dl>`,
    `<dt>Request</dt><dd>${method.requestStream ? "stream of " : ""}${typeRef(method.request)}</dd>`,
    `<dt>Response</dt><dd>${method.responseStream ? "stream of " : ""}${typeRef(method.response)}</dd>`,
    method.idempotency ? `<dt>Idempotency</dt><dd><code>${esc(method.idempotency)}</code></dd>` : "",
    `</dl>`,
    comment(method.comment),
    `<details class="try" data-method="${attr(method.path)}" data-request-stream="${method.requestStream}">`,
    `<summary>Try it</summary>`,
    `<p class="hint">${method.requestStream ? "A JSON array of request messages, sent in order." : "The request, as JSON."}</p>`,
    `<textarea class="try-request" rows="${Math.min(16, template.split("\n").length + 1)}" spellcheck="false">${esc(template)}</textarea>`,
    `<p><button type="button" class="try-send">Send</button>${route ? ` <button type="button" class="try-send-http" data-route="${attr(route)}" title="through the gateway${options.httpVia ? ` at ${attr(options.httpVia)}` : ""}">Send over HTTP: <code>${esc(route)}</code></button>` : ""}</p>`,
    `<pre class="try-response" data-state="idle"></pre>`,
    `</details>`,
    `</article>`,
  ]
    .filter(Boolean)
    .join("\n");
}

function messageSection(message: DocMessage): string {
  const rows = message.fields.map(fieldRow);
  return [
    `<section class="message" id="${attr(message.fullName)}">`,
    `<h3><span class="kind">message</span> ${esc(message.name)}${badge(message.deprecated)}</h3>`,
    comment(message.comment),
    rows.length === 0
      ? `<p class="note">No fields.</p>`
      : [`<table>`, `<thead><tr><th>Field</th><th>Number</th><th>Type</th><th>Description</th></tr></thead>`, `<tbody>`, ...rows, `</tbody>`, `</table>`].join("\n"),
    ...message.oneofs.map(
      (o) => `<p class="oneof-note">Oneof <code>${esc(o.name)}</code>: at most one of ${o.fields.map((f) => `<code>${esc(f)}</code>`).join(", ")} is set.${o.comment ? ` ${inline(o.comment)}` : ""}</p>`,
    ),
    `</section>`,
  ]
    .filter(Boolean)
    .join("\n");
}

function fieldRow(field: DocField): string {
  const type = `<code>${esc(field.label ? `${field.label} ` : "")}${field.ref?.documented ? `<a href="#${attr(field.ref.name)}">${esc(field.type)}</a>` : esc(field.type)}</code>`;
  const notes = [field.oneof ? `<span class="oneof">one of <code>${esc(field.oneof)}</code></span>` : "", inline(field.comment)].filter(Boolean).join(" ");
  return `<tr${field.deprecated ? ` class="deprecated"` : ""}><td><code>${esc(field.name)}</code>${badge(field.deprecated)}</td><td>${field.number}</td><td>${type}</td><td>${notes}</td></tr>`;
}

function enumSection(e: DocEnum): string {
  const rows = e.values.map(
    (v) => `<tr${v.deprecated ? ` class="deprecated"` : ""}><td><code>${esc(v.name)}</code>${badge(v.deprecated)}</td><td>${v.number}</td><td>${inline(v.comment)}</td></tr>`,
  );
  return [
    `<section class="enum" id="${attr(e.fullName)}">`,
    `<h3><span class="kind">enum</span> ${esc(e.name)}${badge(e.deprecated)}</h3>`,
    comment(e.comment),
    `<table>`,
    `<thead><tr><th>Value</th><th>Number</th><th>Description</th></tr></thead>`,
    `<tbody>`,
    ...rows,
    `</tbody>`,
    `</table>`,
    `</section>`,
  ]
    .filter(Boolean)
    .join("\n");
}

function typeRef(ref: DocTypeRef): string {
  return ref.documented ? `<a href="#${attr(ref.name)}"><code>${esc(ref.name)}</code></a>` : `<code>${esc(ref.name)}</code>`;
}

function badge(deprecated: boolean): string {
  return deprecated ? ` <span class="badge">deprecated</span>` : "";
}

/** A comment as paragraphs; `code` spans become <code>. */
function comment(text: string): string {
  if (!text) return "";
  return text
    .split(/\n\s*\n/)
    .map((p) => `<p class="comment">${inline(p)}</p>`)
    .join("\n");
}

function inline(text: string): string {
  return esc(text).replace(/`([^`]+)`/g, "<code>$1</code>").replace(/\n/g, " ");
}

function esc(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function attr(text: string): string {
  return esc(text).replace(/"/g, "&quot;");
}
