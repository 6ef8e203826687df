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
        const a = el("a", "", "[" + c.n + "] " + c.title + (c.version > 1 ? " (version " + c.version + ")" : "") + (c.section ? " › " + c.section : "") + (c.page ? ", page " + c.page : ""));
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
    if (data.where === "local" && (data.status === "complete" || data.status === "incomplete")) {
      box.appendChild(escalateControl(data.message_id));
    }
  }

  // Shown even when no provider is configured: the answer then says every reason it
  // stays local, the content's first ("this answer uses confidential documents").
  function escalateControl(messageId) {
    const box = el("div", "escalate-row");
    const b = el("button", "secondary escalate", "Ask the stronger model");
    b.type = "button";
    b.dataset.url = "/chat/answers/" + messageId + "/escalate/";
    box.appendChild(b);
    if (form.dataset.escalation !== "yes") {
      box.appendChild(el("span", "msg-meta", " (unavailable here: no external model is configured)"));
    }
    return box;
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

  function newAnswerBox() {
    const box = el("div", "msg msg-assistant status-streaming");
    const body = el("div", "msg-body answer streaming");
    box.appendChild(body);
    log.appendChild(box);
    return { box, body, done: false };
  }

  // Post `data` to `url` and show the answers the stream carries (a question can bring
  // two: a failed local answer, then the stronger model's or the reason it stayed local).
  async function stream(url, data) {
    let current = newAnswerBox();
    status.textContent = "Searching your documents…";
    let response;
    try {
      response = await fetch(url, { method: "POST", body: data, headers: { "X-CSRFToken": csrf } });
    } catch (err) {
      current.box.appendChild(el("p", "msg-error", "Enclave could not be reached. Nothing was sent; try again."));
      status.textContent = "";
      return;
    }
    if (!response.ok) {
      let message = "The request failed (HTTP " + response.status + ").";
      try { message = (await response.json()).error || message; } catch (e) { /* not JSON */ }
      current.box.appendChild(el("p", "msg-error", message));
      status.textContent = "";
      return;
    }
    const answering = (m) => (m.model ? "Answering with " + m.model + "…" : "");
    // Above the answer's text, and above the queue line if there is one: the place in the
    // model's line is said first (before the search) and stays next to where the words
    // will come.
    const above = (node) => current.box.insertBefore(node, current.queue || current.body);
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    let meta = {};
    let searched = "";
    const handle = (kind, payload) => {
      if (kind === "searched") {
        searched = payload.query;
      } else if (kind === "meta") {
        if (current.done) current = newAnswerBox();
        meta = payload;
        if (searched) {
          above(el("p", "msg-meta searched", "Searched for: " + searched));
          searched = "";
        }
        if (!conversationInput.value) {
          conversationInput.value = payload.conversation_id;
          history.replaceState(null, "", form.dataset.conversationUrl + payload.conversation_id + "/");
        }
        status.textContent = current.queue ? current.queue.textContent : answering(payload);
      } else if (kind === "evidence") {
        // Quotes first, within a second; the model's words stream below them.
        const quotes = el("div", "evidence-stream");
        quotes.innerHTML = payload.html; // escaped on the server (format_html)
        above(quotes);
        current.quotes = quotes;
      } else if (kind === "queue") {
        // The local model serves others first: the place, updated as it moves up. It can
        // come first of all, before `meta` (the place is taken before the search).
        if (current.done) current = newAnswerBox();
        if (!current.queue) {
          current.queue = el("p", "msg-meta queue-position");
          current.box.insertBefore(current.queue, current.body);
        }
        current.queue.textContent = payload.text;
        status.textContent = payload.text;
      } else if (kind === "token") {
        if (current.queue) {
          current.queue.remove();
          current.queue = null;
          status.textContent = answering(meta);
        }
        current.body.textContent += payload.text;
      } else if (kind === "done") {
        current.done = true;
        if (current.quotes) current.quotes.remove(); // the final html holds them again
        if (current.queue) { current.queue.remove(); current.queue = null; }
        finish(current.box, current.body, Object.assign({ where: meta.where }, payload));
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
    if (!current.done) {
      current.box.appendChild(el("p", "msg-error", "The connection was lost before the answer finished. What arrived is shown; it is incomplete."));
      status.textContent = "";
    }
  }

  function ask(question) {
    const mine = el("div", "msg msg-user");
    mine.appendChild(el("div", "msg-body", question));
    log.appendChild(mine);
    const data = new FormData(form);
    data.set("question", question);
    return stream(form.action, data);
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
    const escalate = event.target.closest("button.escalate");
    if (escalate) {
      escalate.disabled = true;
      stream(escalate.dataset.url, new FormData());
      return;
    }
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
