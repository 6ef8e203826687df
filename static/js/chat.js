// Chat: post the question, read the answer as server-sent events from the response body.
// Streamed text is shown with textContent only; the final HTML comes from the server,
// rendered and sanitised there (nh3), so nothing from the model reaches innerHTML raw.
(function () {
  "use strict";
  const form = document.getElementById("ask-form");
  if (!form) return;
  const log = document.getElementById("chat-log");
  const status = document.getElementById("ask-status");
  const textarea = form.querySelector("textarea[name=question]");
  const conversationInput = form.querySelector("input[name=conversation]");
  const csrf = form.querySelector("input[name=csrfmiddlewaretoken]").value;

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function feedbackButtons(url) {
    const box = el("div", "feedback");
    box.dataset.url = url;
    for (const [value, label, title] of [["up", "👍", "Helpful"], ["down", "👎", "Not helpful"]]) {
      const b = el("button", "secondary", label);
      b.type = "button";
      b.dataset.value = value;
      b.title = title;
      box.appendChild(b);
    }
    return box;
  }

  function finish(box, body, data) {
    box.className = "msg msg-assistant status-" + data.status;
    box.dataset.messageId = data.message_id;
    if (data.html) {
      body.classList.remove("streaming");
      body.innerHTML = data.html; // sanitised on the server
    } else if (!body.textContent) {
      body.remove();
    }
    if (data.error) box.appendChild(el("p", "msg-error", data.error));
    if (data.status === "incomplete") box.appendChild(el("p", "msg-error", "This answer is incomplete."));
    if (data.citations && data.citations.length) {
      const list = el("ol", "sources");
      for (const c of data.citations) {
        const li = el("li");
        const a = el("a", "", "[" + c.n + "] " + c.title + (c.section ? " › " + c.section : "") + (c.page ? ", page " + c.page : ""));
        a.href = "/chat/answers/" + data.message_id + "/passages/" + c.n + "/";
        li.appendChild(a);
        li.appendChild(document.createTextNode(" "));
        li.appendChild(el("span", "label label-" + c.label, c.label));
        list.appendChild(li);
      }
      box.appendChild(list);
    }
    if (data.model) {
      box.appendChild(el("p", "msg-meta", "Answered by: " + data.where + " — " + data.model + ". Left the premises: " + (data.where === "external" ? "yes" : "no") + "."));
    }
    if (data.status === "complete") {
      box.appendChild(feedbackButtons("/chat/answers/" + data.message_id + "/feedback/"));
    }
  }

  function parseEvents(buffer, handle) {
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const raw = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let kind = "message";
      let data = "";
      for (const line of raw.split("\n")) {
        if (line.startsWith("event: ")) kind = line.slice(7);
        else if (line.startsWith("data: ")) data += line.slice(6);
      }
      if (data) handle(kind, JSON.parse(data));
    }
    return buffer;
  }

  async function ask(question) {
    const mine = el("div", "msg msg-user");
    mine.appendChild(el("div", "msg-body", question));
    log.appendChild(mine);
    const box = el("div", "msg msg-assistant status-streaming");
    const body = el("div", "msg-body answer streaming");
    box.appendChild(body);
    log.appendChild(box);
    status.textContent = "Searching your documents…";
    const data = new FormData(form);
    data.set("question", question);
    let response;
    try {
      response = await fetch(form.action, { method: "POST", body: data, headers: { "X-CSRFToken": csrf } });
    } catch (err) {
      box.appendChild(el("p", "msg-error", "Enclave could not be reached. Your question was not sent; try again."));
      status.textContent = "";
      return;
    }
    if (!response.ok) {
      let message = "The question could not be asked (HTTP " + response.status + ").";
      try { message = (await response.json()).error || message; } catch (e) { /* not JSON */ }
      box.appendChild(el("p", "msg-error", message));
      status.textContent = "";
      return;
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    let meta = {};
    let done = false;
    const handle = (kind, payload) => {
      if (kind === "meta") {
        meta = payload;
        if (!conversationInput.value) {
          conversationInput.value = payload.conversation_id;
          history.replaceState(null, "", form.dataset.conversationUrl + payload.conversation_id + "/");
        }
        status.textContent = payload.model ? "Answering with " + payload.model + "…" : "";
      } else if (kind === "token") {
        body.textContent += payload.text;
      } else if (kind === "done") {
        done = true;
        finish(box, body, Object.assign({ where: meta.where }, payload));
        status.textContent = "";
      }
    };
    try {
      for (;;) {
        const { value, done: end } = await reader.read();
        if (end) break;
        buffer = parseEvents(buffer + decoder.decode(value, { stream: true }), handle);
      }
    } catch (err) {
      /* the connection dropped; said below */
    }
    if (!done) {
      box.appendChild(el("p", "msg-error", "The connection was lost before the answer finished. What arrived is shown; it is incomplete."));
      status.textContent = "";
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const question = textarea.value.trim();
    if (!question) return;
    textarea.value = "";
    ask(question);
  });

  textarea.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  log.addEventListener("click", (event) => {
    const button = event.target.closest(".feedback button");
    if (!button) return;
    const box = button.parentElement;
    const data = new FormData();
    data.set("value", button.dataset.value);
    fetch(box.dataset.url, { method: "POST", body: data, headers: { "X-CSRFToken": csrf } })
      .then((r) => {
        if (!r.ok) return;
        for (const b of box.querySelectorAll("button")) b.classList.toggle("chosen", b === button);
      });
  });
})();
