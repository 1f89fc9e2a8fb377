/**
 * The style sheet and script inlined into the docs page. The script is plain
 * ES2017 so the page works in any current browser without a build step; it
 * only talks to the endpoint the page names (same origin).
 */

export const PAGE_STYLE = String.raw`
:root { --fg: #1d2330; --muted: #5b6475; --line: #dde1e8; --accent: #2456c7; --bad: #b3261e; --ok: #1e6b34; --code: #f3f5f8; }
* { box-sizing: border-box; }
body { margin: 0; display: grid; grid-template-columns: 18rem 1fr; font: 15px/1.5 system-ui, sans-serif; color: var(--fg); }
nav { position: sticky; top: 0; height: 100vh; overflow: auto; padding: 1rem; border-right: 1px solid var(--line); background: #fafbfc; }
nav h1 { font-size: 1.1rem; margin: 0 0 1rem; }
nav ul { list-style: none; margin: 0; padding: 0; }
nav ul ul { padding-left: .5rem; margin-bottom: .75rem; }
nav .file { display: block; font-size: .8rem; color: var(--muted); margin-top: .5rem; word-break: break-all; }
nav a { color: var(--fg); text-decoration: none; font-size: .9rem; }
nav a:hover { color: var(--accent); }
nav .kind, h3 .kind { font-size: .7rem; text-transform: uppercase; color: var(--muted); }
main { padding: 1rem 2rem 4rem; max-width: 70rem; }
h2 { border-bottom: 2px solid var(--line); padding-bottom: .25rem; margin-top: 2.5rem; word-break: break-all; }
h3 { margin-top: 2rem; }
h4 { margin: 1.5rem 0 .25rem; }
code, pre, textarea { font: 13px/1.45 ui-monospace, SFMono-Regular, Menlo, monospace; }
code { background: var(--code); padding: 0 .2em; border-radius: 3px; }
a { color: var(--accent); }
table { border-collapse: collapse; width: 100%; margin: .5rem 0 1rem; }
th, td { border: 1px solid var(--line); padding: .3rem .5rem; text-align: left; vertical-align: top; }
th { background: #f6f7f9; }
tr.deprecated td:first-child code { text-decoration: line-through; }
.badge { font-size: .7rem; background: #fbe9e7; color: var(--bad); border-radius: 3px; padding: 0 .35em; vertical-align: middle; }
.call-kind { font-size: .75rem; font-weight: normal; background: #e8eefb; color: var(--accent); border-radius: 3px; padding: 0 .4em; }
.method { border-left: 3px solid var(--line); padding-left: 1rem; margin: 1rem 0; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .1rem 1rem; margin: .25rem 0; }
dt { color: var(--muted); }
dd { margin: 0; }
.note, .hint, .package { color: var(--muted); }
.try-settings { display: flex; flex-wrap: wrap; gap: .5rem 1.5rem; align-items: end; padding: .75rem 1rem; background: #f6f7f9; border: 1px solid var(--line); border-radius: 6px; }
.try-settings label { display: flex; flex-direction: column; font-size: .8rem; color: var(--muted); }
.try-settings input, .try-settings textarea { font-size: .9rem; padding: .25rem .4rem; min-width: 14rem; }
.try-settings .note { flex-basis: 100%; margin: 0; font-size: .85rem; }
details.try { margin: .5rem 0 1rem; }
details.try summary { cursor: pointer; color: var(--accent); }
textarea.try-request { width: 100%; padding: .5rem; border: 1px solid var(--line); border-radius: 4px; }
button.try-send, button.try-send-http { padding: .3rem 1.2rem; }
pre.try-response { background: var(--code); padding: .5rem; border-radius: 4px; white-space: pre-wrap; min-height: 1.5em; }
pre.try-response[data-state="idle"] { display: none; }
pre.try-response[data-state="ok"] { border-left: 3px solid var(--ok); }
pre.try-response[data-state="error"] { border-left: 3px solid var(--bad); color: var(--bad); }
@media (max-width: 50rem) { body { grid-template-columns: 1fr; } nav { position: static; height: auto; } }
`;

export const PAGE_SCRIPT = String.raw`
(function () {
  "use strict";
  var endpoint = document.body.getAttribute("data-try-endpoint");
  var note = document.getElementById("try-note");
  var panels = document.querySelectorAll("details.try");
  if (!endpoint) {
    note.textContent = "This copy is read-only. Run protomesh docs --serve --target HOST:PORT and open the page it serves to send requests.";
    for (var i = 0; i < panels.length; i++) panels[i].querySelector(".try-send").disabled = true;
    return;
  }
  note.textContent = "Requests are sent by the protomesh docs server at " + location.host + ".";
  for (var j = 0; j < panels.length; j++) wire(panels[j]);

  function wire(panel) {
    var button = panel.querySelector(".try-send");
    var httpButton = panel.querySelector(".try-send-http");
    var output = panel.querySelector(".try-response");
    button.addEventListener("click", function () { send(""); });
    if (httpButton) httpButton.addEventListener("click", function () { send("http"); });
    function send(via) {
      var parsed;
      try {
        parsed = JSON.parse(panel.querySelector(".try-request").value);
      } catch (e) {
        show(output, "error", "The request is not valid JSON: " + e.message);
        return;
      }
      var streaming = panel.getAttribute("data-request-stream") === "true";
      if (streaming && !Array.isArray(parsed)) {
        show(output, "error", "This method takes a stream: give a JSON array of request messages.");
        return;
      }
      var body = {
        target: document.getElementById("try-target").value.trim(),
        method: panel.getAttribute("data-method"),
        requests: streaming ? parsed : [parsed],
        metadata: metadata(document.getElementById("try-metadata").value),
        deadlineMs: Number(document.getElementById("try-deadline").value) || undefined
      };
      if (via) body.via = via;
      button.disabled = true;
      if (httpButton) httpButton.disabled = true;
      show(output, "pending", via ? "Sending " + httpButton.getAttribute("data-route") + " through the gateway ..." : "Calling " + body.method + " ...");
      fetch(endpoint, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) })
        .then(function (res) { return res.json(); })
        .then(function (result) {
          output.setAttribute("data-via", via || "grpc");
          var line = result.http ? result.http.request + "  → HTTP " + result.http.status + "\n" : "";
          if (result.http) output.setAttribute("data-http-status", String(result.http.status));
          if (result.ok) {
            var text = result.responses.map(function (r) { return JSON.stringify(r, null, 2); }).join("\n");
            show(output, "ok", line + (text === "" ? "(no response messages)" : text));
          } else {
            var error = line + result.codeName + ": " + result.message;
            if (result.details !== undefined) error += "\ndetails: " + JSON.stringify(result.details);
            show(output, "error", error);
          }
        })
        .catch(function (e) { show(output, "error", "The docs server did not answer: " + e.message); })
        .then(function () {
          button.disabled = false;
          if (httpButton) httpButton.disabled = false;
        });
    }
  }

  function metadata(text) {
    var out = {};
    text.split("\n").forEach(function (line) {
      var colon = line.indexOf(":");
      if (colon > 0) out[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    });
    return out;
  }

  function show(output, state, text) {
    output.setAttribute("data-state", state);
    output.textContent = text;
  }
})();
`;
