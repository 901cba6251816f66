/* The customer simulator's phone.

   Polls the server-rendered thread every second (faster right after a live
   event), sends what the customer types, and taps reply buttons and list rows.
   The server builds, signs and posts every webhook; this script only shows
   what it renders. HTML comes only from our own escaped templates; anything
   built here uses textContent. */
(function () {
  "use strict";

  var gettext = window.gettext || function (s) { return s; };
  var VISIBLE_POLL_MS = 1000;
  var HIDDEN_POLL_MS = 4000;
  var MAX_BACKOFF_MS = 10000;

  // Several numbers: choosing one opens it.
  var numberSelect = document.getElementById("sim-number");
  if (numberSelect && numberSelect.form) {
    numberSelect.addEventListener("change", function () { numberSelect.form.submit(); });
  }

  var device = document.getElementById("sim-device");
  if (!device) return;

  var screen = document.getElementById("sim-screen");
  var composer = document.getElementById("sim-composer");
  var textBox = document.getElementById("sim-text");
  var sendButton = document.getElementById("sim-send");
  var sendError = document.getElementById("sim-send-error");
  var announcer = document.getElementById("sim-announcer");
  var sheet = document.getElementById("sim-sheet");
  var sheetBody = document.getElementById("sim-sheet-body");
  var sheetTitle = document.getElementById("sim-sheet-title");
  var threadUrl = device.getAttribute("data-thread-url");
  var tapUrl = device.getAttribute("data-tap-url");
  var csrfInput = composer.querySelector("input[name=csrfmiddlewaretoken]");

  function announce(text, kind) {
    if (window.ISP && window.ISP.announce) window.ISP.announce(text, kind);
  }

  /* ---- WhatsApp formatting: *bold*, _italic_, ~strike~ ---------------- */

  var FORMAT = /([*_~])(?=\S)([^\n]*?\S)\1/;
  var TAGS = { "*": "strong", "_": "em", "~": "s" };

  // Rebuilds the element from its own text with text nodes and <strong>/<em>/<s>:
  // the text is never parsed as HTML.
  function formatText(el) {
    var text = el.textContent;
    if (!FORMAT.test(text)) return;
    var fragment = document.createDocumentFragment();
    var rest = text;
    var match;
    while ((match = FORMAT.exec(rest))) {
      if (match.index > 0) fragment.appendChild(document.createTextNode(rest.slice(0, match.index)));
      var tag = document.createElement(TAGS[match[1]]);
      tag.textContent = match[2];
      fragment.appendChild(tag);
      rest = rest.slice(match.index + match[0].length);
    }
    if (rest) fragment.appendChild(document.createTextNode(rest));
    el.textContent = "";
    el.appendChild(fragment);
  }

  function formatAll(root) {
    root.querySelectorAll(".sim-text").forEach(formatText);
  }

  /* ---- The thread ------------------------------------------------------ */

  var lastHtml = null;
  var seenOut = {};
  var firstRender = true;

  function messagesList() { return document.getElementById("sim-messages"); }

  function nearBottom(list) {
    return !list || list.scrollHeight - list.scrollTop - list.clientHeight < 80;
  }

  function scrollToEnd() {
    var list = messagesList();
    if (list) list.scrollTop = list.scrollHeight;
  }

  function noteNewMessages() {
    var fresh = [];
    screen.querySelectorAll("li.sim-out").forEach(function (li) {
      if (!seenOut[li.id]) {
        seenOut[li.id] = true;
        fresh.push(li);
      }
    });
    if (firstRender || !fresh.length || !announcer) return;
    var text = fresh[fresh.length - 1].querySelector(".sim-text");
    announcer.textContent = gettext("New message from the business:") + " " + (text ? text.textContent.slice(0, 140) : "");
  }

  // The fragment is our own server-rendered, escaped HTML.
  function render(html) {
    if (html === lastHtml) return;
    lastHtml = html;
    var list = messagesList();
    var stick = firstRender || nearBottom(list);
    var keep = list ? list.scrollTop : 0;
    screen.innerHTML = html;
    formatAll(screen);
    noteNewMessages();
    if (stick) scrollToEnd();
    else if (messagesList()) messagesList().scrollTop = keep;
    firstRender = false;
  }

  var timer = null;
  var inFlight = false;
  var again = false;
  var failures = 0;
  var stopped = false;

  function delay() {
    if (failures) return Math.min(MAX_BACKOFF_MS, VISIBLE_POLL_MS * Math.pow(2, failures));
    return document.visibilityState === "hidden" ? HIDDEN_POLL_MS : VISIBLE_POLL_MS;
  }

  function schedule(ms) {
    if (stopped) return;
    clearTimeout(timer);
    timer = setTimeout(refresh, ms);
  }

  function refresh() {
    if (stopped) return;
    if (inFlight) { again = true; return; }
    inFlight = true;
    clearTimeout(timer);
    // "read" only while the chat is on screen, like a phone in a pocket.
    var url = threadUrl + (document.visibilityState === "hidden" ? "" : "?read=1");
    fetch(url, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
      .then(function (response) {
        if (response.redirected && /\/login\//.test(response.url)) {
          window.location.reload();
          return null;
        }
        if (response.status === 404 || response.status === 403) {
          stopped = true;
          showSendError(gettext("This customer or the simulator is no longer available. Reload the page."));
          return null;
        }
        if (!response.ok) throw new Error(String(response.status));
        return response.text();
      })
      .then(function (html) {
        failures = 0;
        if (html !== null) render(html);
      }, function () {
        failures += 1;
        if (failures === 3) announce(gettext("The server is not answering; retrying."), "error");
      })
      .then(next, next);
  }

  function next() {
    inFlight = false;
    if (again) { again = false; schedule(0); } else { schedule(delay()); }
  }

  /* ---- Sending ----------------------------------------------------------- */

  function showSendError(text) {
    sendError.textContent = text;
    sendError.hidden = !text;
  }

  function post(url, fields) {
    var form = new FormData();
    Object.keys(fields).forEach(function (key) { form.append(key, fields[key]); });
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Accept": "application/json", "X-CSRFToken": csrfInput ? csrfInput.value : "" },
      body: form,
    }).then(
      function (response) {
        return response.text().then(function (text) {
          var data = null;
          try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
          if (!response.ok || !data || !data.ok) {
            var reason = data && typeof data.error === "string" ? data.error
              : response.status === 403 ? gettext("You are not allowed to do that. Reload the page.")
              : gettext("Something went wrong. Try again in a moment.");
            throw new Error(reason);
          }
          return data;
        });
      },
      function () { throw new Error(gettext("The server could not be reached. Check your connection and try again.")); }
    );
  }

  var sending = false;
  function send() {
    var text = textBox.value.trim();
    if (!text) {
      showSendError(gettext("Write a message first."));
      textBox.focus();
      return;
    }
    if (sending) return;
    sending = true;
    sendButton.disabled = true;
    showSendError("");
    post(composer.action, { text: text }).then(
      function () {
        textBox.value = "";
        grow();
        scrollToEnd();
        refresh();
      },
      function (error) {
        showSendError(error.message);
        announce(error.message, "error");
      }
    ).then(function () {
      sending = false;
      sendButton.disabled = false;
      textBox.focus();
    });
  }

  composer.addEventListener("submit", function (e) {
    e.preventDefault();
    send();
  });
  textBox.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      send();
    }
  });
  function grow() {
    textBox.style.height = "auto";
    textBox.style.height = Math.min(textBox.scrollHeight, 128) + "px";
  }
  textBox.addEventListener("input", grow);

  /* ---- Tapping buttons and list rows ----------------------------------- */

  function tap(button) {
    if (button.disabled) return;
    button.disabled = true;
    showSendError("");
    post(tapUrl, { message: button.getAttribute("data-message"), option: button.getAttribute("data-option") }).then(
      function () {
        if (sheet && sheet.open) sheet.close();
        scrollToEnd();
        refresh();
      },
      function (error) {
        showSendError(error.message);
        announce(error.message, "error");
      }
    ).then(function () { button.disabled = false; });
  }

  function openSheet(opener) {
    var source = document.getElementById(opener.getAttribute("data-sheet"));
    if (!source || !sheet) return;
    sheetTitle.textContent = source.getAttribute("data-title") || gettext("Options");
    sheetBody.textContent = "";
    sheetBody.appendChild(source.content.cloneNode(true));
    if (typeof sheet.showModal === "function") sheet.showModal();
    else sheet.setAttribute("open", "");
    var first = sheetBody.querySelector("button");
    if (first) first.focus();
  }

  screen.addEventListener("click", function (e) {
    var target = e.target.closest("button");
    if (!target || !screen.contains(target)) return;
    if (target.classList.contains("sim-list-open")) openSheet(target);
    else if (target.classList.contains("sim-reply")) tap(target);
  });
  if (sheet) {
    sheetBody.addEventListener("click", function (e) {
      var target = e.target.closest("button.sim-reply");
      if (target) tap(target);
    });
    document.getElementById("sim-sheet-close").addEventListener("click", function () { sheet.close(); });
    // A click on the backdrop (outside the sheet's box) closes it, as on a phone.
    sheet.addEventListener("click", function (e) {
      if (e.target === sheet) sheet.close();
    });
    sheet.addEventListener("close", function () { textBox.focus(); });
  }

  /* ---- Start --------------------------------------------------------------- */

  // The page came with the thread already rendered.
  formatAll(screen);
  noteNewMessages();
  scrollToEnd();
  firstRender = false;

  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") schedule(0);
  });
  // Admins receive every event: anything that moves makes us look at once.
  var live = window.ISP && window.ISP.live;
  if (live) {
    live.on("message.update", function () { schedule(100); });
    live.on("conversation.update", function () { schedule(100); });
    live.onReconnect(function () { schedule(0); });
  }
  schedule(0);
})();
