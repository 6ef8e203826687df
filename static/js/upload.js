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
  const labelChoices = Array.from(form.querySelectorAll("select[name=label] option")).filter((o) => o.value);
  const notes = new Map(); // document id -> { li, name }: the messages that follow the status
  let timer = null;

  function note(text, ok) {
    const li = document.createElement("li");
    li.textContent = text;
    if (!ok) li.className = "error";
    results.appendChild(li);
    return li;
  }

  // The message under the drop zone says what the table says.
  function follow(d) {
    const n = notes.get(String(d.id));
    if (!n) return;
    let text = n.name + ": " + d.status_display;
    if (d.version > 1) text += " (version " + d.version + ")";
    if (d.status === "indexed") text += " — " + d.chunks + " passages";
    if (d.reason) text += " — " + d.reason;
    n.li.textContent = text;
    n.li.className = d.status === "failed" ? "error" : (d.status === "indexed" ? "done" : "");
  }

  function urlFor(kind, id) {
    return table.closest("table").dataset[kind + "Url"].replace("/0/", "/" + encodeURIComponent(id) + "/");
  }

  function postForm(action, extraClass) {
    const f = document.createElement("form");
    f.method = "post";
    f.action = action;
    if (extraClass) f.className = extraClass;
    const token = document.createElement("input");
    token.type = "hidden";
    token.name = "csrfmiddlewaretoken";
    token.value = csrf;
    f.appendChild(token);
    return f;
  }

  function button(text) {
    const b = document.createElement("button");
    b.type = "submit";
    b.className = "secondary";
    b.textContent = text;
    return b;
  }

  // A new row as the page renders one: label selector, Re-ingest and Delete.
  function newRow(d) {
    const tr = document.createElement("tr");
    tr.dataset.id = d.id;
    const title = document.createElement("td");
    const detail = document.createElement("span");
    detail.className = "muted";
    detail.dataset.role = "detail";
    title.append(document.createTextNode(d.title), document.createElement("br"), detail);
    const label = document.createElement("td");
    const labelForm = postForm(urlFor("label", d.id), "js-autosubmit");
    const choose = document.createElement("select");
    choose.name = "label";
    for (const o of labelChoices) {
      const option = document.createElement("option");
      option.value = o.value;
      option.textContent = o.textContent;
      option.selected = o.value === d.label;
      choose.appendChild(option);
    }
    choose.addEventListener("change", () => labelForm.submit());
    labelForm.appendChild(choose);
    label.appendChild(labelForm);
    const status = document.createElement("td");
    const span = document.createElement("span");
    span.dataset.role = "status";
    const reason = document.createElement("div");
    reason.className = "muted";
    reason.dataset.role = "reason";
    status.append(span, reason);
    const chunks = document.createElement("td");
    chunks.dataset.role = "chunks";
    const actions = document.createElement("td");
    const reingest = postForm(urlFor("reingest", d.id));
    reingest.appendChild(button("Re-ingest"));
    const del = postForm(urlFor("delete", d.id), "js-confirm");
    del.dataset.confirm = "Delete this document and all its passages?";
    del.appendChild(button("Delete"));
    del.addEventListener("submit", (e) => { if (!window.confirm(del.dataset.confirm)) e.preventDefault(); });
    actions.append(reingest, del);
    tr.append(title, label, status, chunks, actions);
    return tr;
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
            const li = note(r.name + ": queued" + (r.message ? " — " + r.message : ""), true);
            notes.set(String(r.id), { li: li, name: r.name });
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
      tr = newRow(d);
      table.prepend(tr);
    }
    const detail = tr.querySelector('[data-role="detail"]');
    if (detail) {
      detail.textContent = d.name + " · " + (d.mime_type || "type not yet detected");
      if (d.version > 1) {
        const link = document.createElement("a");
        link.href = urlFor("versions", d.id);
        link.textContent = "version " + d.version;
        detail.append(" · ", link);
      }
    }
    const span = tr.querySelector('[data-role="status"]');
    span.textContent = d.status_display;
    span.className = "status status-" + d.status;
    tr.querySelector('[data-role="reason"]').textContent = d.reason || "";
    tr.querySelector('[data-role="chunks"]').textContent = d.chunks;
    follow(d);
  }

  function poll() {
    clearTimeout(timer);
    const url = form.dataset.statusUrl + "?collection=" + encodeURIComponent(select.value);
    fetch(url, { headers: { "Accept": "application/json" } })
      .then((r) => r.json())
      .then((body) => {
        let pending = false;
        const listed = new Set();
        for (const d of body.documents.slice().reverse()) {
          row(d);
          listed.add(String(d.id));
          if (!finished.has(d.status)) pending = true;
        }
        // A version that replaced an older one: the older row leaves the list.
        for (const tr of table.querySelectorAll("tr[data-id]")) {
          if (!listed.has(tr.dataset.id)) tr.remove();
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
