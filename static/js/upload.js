// Drag-and-drop upload with live status. Untrusted strings are set with textContent only.
(function () {
  "use strict";
  const form = document.getElementById("upload-form");
  if (!form) return;
  const zone = document.getElementById("dropzone");
  const input = document.getElementById("file-input");
  const results = document.getElementById("upload-results");
  const select = document.getElementById("collection-select");
  const table = document.querySelector("#documents tbody");
  const csrf = form.querySelector("input[name=csrfmiddlewaretoken]").value;
  const finished = new Set(["indexed", "failed"]);
  let timer = null;

  function note(text, ok) {
    const li = document.createElement("li");
    li.textContent = text;
    if (!ok) li.className = "error";
    results.appendChild(li);
  }

  function upload(files) {
    if (!files.length) return;
    const data = new FormData(form);
    data.delete("files");
    for (const f of files) data.append("files", f, f.name);
    zone.classList.add("busy");
    fetch(form.action, { method: "POST", body: data, headers: { "Accept": "application/json", "X-CSRFToken": csrf } })
      .then((r) => r.json().then((body) => ({ status: r.status, body })))
      .then(({ body }) => {
        zone.classList.remove("busy");
        if (body.error) { note(body.error, false); return; }
        for (const r of body.results) {
          if (r.ok) {
            note(r.name + ": queued" + (r.message ? " — " + r.message : ""), true);
          } else {
            note(r.name + ": " + r.message, false);
          }
        }
        poll();
      })
      .catch(() => { zone.classList.remove("busy"); note("The upload did not reach the server; check the connection and try again.", false); });
  }

  function row(d) {
    let tr = table.querySelector('tr[data-id="' + d.id + '"]');
    if (!tr) {
      const empty = table.querySelector("tr.empty");
      if (empty) empty.remove();
      tr = document.createElement("tr");
      tr.dataset.id = d.id;
      const title = document.createElement("td");
      title.textContent = d.title;
      const label = document.createElement("td");
      label.textContent = d.label;
      const status = document.createElement("td");
      const span = document.createElement("span");
      span.dataset.role = "status";
      const reason = document.createElement("div");
      reason.className = "muted";
      reason.dataset.role = "reason";
      status.append(span, reason);
      const chunks = document.createElement("td");
      chunks.dataset.role = "chunks";
      tr.append(title, label, status, chunks, document.createElement("td"));
      table.prepend(tr);
    }
    const span = tr.querySelector('[data-role="status"]');
    span.textContent = d.status_display;
    span.className = "status status-" + d.status;
    tr.querySelector('[data-role="reason"]').textContent = d.reason || "";
    tr.querySelector('[data-role="chunks"]').textContent = d.chunks;
  }

  function poll() {
    clearTimeout(timer);
    const url = form.dataset.statusUrl + "?collection=" + encodeURIComponent(select.value);
    fetch(url, { headers: { "Accept": "application/json" } })
      .then((r) => r.json())
      .then((body) => {
        let pending = false;
        for (const d of body.documents.slice().reverse()) {
          row(d);
          if (!finished.has(d.status)) pending = true;
        }
        if (pending) timer = setTimeout(poll, 1000);
      })
      .catch(() => { timer = setTimeout(poll, 3000); });
  }

  ["dragenter", "dragover"].forEach((ev) => zone.addEventListener(ev, (e) => { e.preventDefault(); zone.classList.add("over"); }));
  ["dragleave", "drop"].forEach((ev) => zone.addEventListener(ev, (e) => { e.preventDefault(); zone.classList.remove("over"); }));
  zone.addEventListener("drop", (e) => upload(Array.from(e.dataTransfer.files)));
  input.addEventListener("change", () => { upload(Array.from(input.files)); input.value = ""; });
  select.addEventListener("change", () => { window.location.search = "?collection=" + encodeURIComponent(select.value); });
  document.querySelectorAll("form.js-autosubmit select").forEach((s) => s.addEventListener("change", () => s.form.submit()));
  document.querySelectorAll("form.js-confirm").forEach((f) => f.addEventListener("submit", (e) => { if (!window.confirm(f.dataset.confirm)) e.preventDefault(); }));
  poll();
})();
