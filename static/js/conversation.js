/* The conversation view (/console/c/<id>/): the thread kept live, the reply
   box (Enter sends, canned replies with "/", internal notes), the actions of
   the header and the side panel with its lazily loaded sections.

   Contract with the server (conversations/views/thread.py):
     #conv-header          the header fragment (GET data-header-url); its data-*
                           say the state, the assignee and why the reply is closed
     #conv-side            the side fragment (GET data-side-url); sections with
                           data-panel-url are filled from that URL
     #thread > li.item     one message (#m-<id>, GET data-message-url with its id)
                           or note (#n-<id>, GET data-note-url); data-ts/data-id
                           order them, data-day/data-day-label the day lines
     messages/?before=<id> older items; ?after=<id>&after_note=<id> newer ones
   Every change goes through the REST API (data-api); the HTML always comes
   from the server, so no customer text is ever put into the page as markup. */
(function () {
  "use strict";

  var root = document.getElementById("conversation");
  if (!root || !window.ISP) return;

  var ISP = window.ISP;
  var gettext = ISP.gettext;
  var id = Number(root.getAttribute("data-id"));
  var me = Number(document.body.getAttribute("data-user-id"));
  var apiBase = root.getAttribute("data-api");
  var urls = {
    messages: root.getAttribute("data-messages-url"),
    message: root.getAttribute("data-message-url"),
    note: root.getAttribute("data-note-url"),
    header: root.getAttribute("data-header-url"),
    side: root.getAttribute("data-side-url"),
    canned: root.getAttribute("data-canned-url"),
  };
  var thread = document.getElementById("thread");
  var scroller = document.getElementById("thread-scroll");
  var newPill = document.getElementById("new-pill");
  var loadEarlier = document.getElementById("load-earlier");
  var composer = document.getElementById("composer");
  var textarea = document.getElementById("composer-text");
  var sendButton = document.getElementById("composer-send");
  var label = document.getElementById("composer-label");
  var cannedList = document.getElementById("canned-list");
  var windowBanner = document.getElementById("window-banner");
  var replyBlocked = document.getElementById("reply-blocked");
  var removedBanner = document.getElementById("removed-banner");
  var sideWrap = document.getElementById("conv-side-wrap");
  var sideToggle = document.getElementById("side-toggle");

  var CATCH_UP_LIMIT = 200; // conversations/views/thread.py
  var mode = "reply";
  var sending = false;
  var removed = false;

  function header() { return document.getElementById("conv-header"); }
  function itemUrl(template, itemId) { return template.replace(/0\/$/, itemId + "/"); }

  function fragment(html) {
    var holder = document.createElement("template");
    holder.innerHTML = html; // server-rendered, autoescaped HTML
    return holder.content;
  }

  function failed(error) {
    if (error && error.status === 404) {
      showRemoved();
      return;
    }
    ISP.announce((error && error.message) || gettext("Something went wrong. Try again in a moment."), "error");
  }

  /* ---- Thread: ordering, day lines, scrolling ------------------------- */

  function key(el) {
    return [Number(el.getAttribute("data-ts")), el.getAttribute("data-type") === "n" ? 1 : 0, Number(el.getAttribute("data-id"))];
  }
  function compare(a, b) {
    for (var i = 0; i < 3; i++) { if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1; }
    return 0;
  }
  function items() { return thread.querySelectorAll("li.item"); }

  function atBottom() {
    return scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 48;
  }
  function scrollToBottom() {
    scroller.scrollTop = scroller.scrollHeight;
    newPill.hidden = true;
  }

  // Puts a server-rendered item where it belongs; true when it is new.
  function place(el) {
    var existing = document.getElementById(el.id);
    if (existing) {
      existing.replaceWith(el);
      return false;
    }
    var list = items();
    var k = key(el);
    for (var i = list.length - 1; i >= 0; i--) {
      if (compare(key(list[i]), k) <= 0) {
        list[i].after(el);
        return true;
      }
    }
    thread.prepend(el);
    return true;
  }

  function separator(day, text) {
    var li = document.createElement("li");
    li.className = "day-separator";
    li.setAttribute("data-day", day);
    var span = document.createElement("span");
    span.textContent = text;
    li.appendChild(span);
    return li;
  }

  // One day line before the first item of each day, none elsewhere.
  function fixDays() {
    var lastDay = null;
    Array.prototype.forEach.call(items(), function (el) {
      var day = el.getAttribute("data-day");
      if (day !== lastDay) {
        var prev = el.previousElementSibling;
        if (!(prev && prev.classList.contains("day-separator") && prev.getAttribute("data-day") === day)) {
          el.before(separator(day, el.getAttribute("data-day-label") || day));
        }
      }
      lastDay = day;
    });
    Array.prototype.forEach.call(thread.querySelectorAll("li.day-separator"), function (sep) {
      var next = sep.nextElementSibling;
      var prev = sep.previousElementSibling;
      while (prev && !prev.classList.contains("item")) prev = prev.previousElementSibling;
      var day = sep.getAttribute("data-day");
      var keep = next && next.classList.contains("item") && next.getAttribute("data-day") === day &&
        !(prev && prev.getAttribute("data-day") === day);
      if (!keep) sep.remove();
    });
    var empty = document.getElementById("thread-empty");
    if (empty && items().length) empty.remove();
  }

  // Inserts the items of a fragment; returns how many were new at the end.
  function insert(html, options) {
    options = options || {};
    var wasAtBottom = atBottom();
    var content = fragment(html);
    var meta = content.querySelector("li.thread-meta");
    if (meta) meta.remove();
    var last = items()[items().length - 1];
    var lastKey = last ? key(last) : null;
    var added = 0;
    Array.prototype.slice.call(content.querySelectorAll("li.item")).forEach(function (el) {
      var isNew = place(el);
      if (isNew && (!lastKey || compare(key(el), lastKey) > 0)) added += 1;
    });
    fixDays();
    ISP.refreshTimes(thread);
    if (options.keepPosition) return meta;
    if (added && (wasAtBottom || options.scroll)) scrollToBottom();
    else if (added) newPill.hidden = false;
    return meta;
  }

  // One fetch at a time per item: a status tick that arrives while the last
  // one is being fetched is fetched again after it, never out of order.
  var inFlight = {};
  function refreshItem(url, itemKey, options) {
    if (inFlight[itemKey]) {
      inFlight[itemKey].again = true;
      return inFlight[itemKey].promise;
    }
    var state = { again: false };
    state.promise = ISP.html(url).then(function (html) {
      if (html) insert(html, options);
    }).catch(failed).then(function () {
      delete inFlight[itemKey];
      if (state.again) refreshItem(url, itemKey, options);
    });
    inFlight[itemKey] = state;
    return state.promise;
  }
  function loadMessage(messageId, options) {
    return refreshItem(itemUrl(urls.message, messageId), "m" + messageId, options);
  }
  function loadNote(noteId, options) {
    return refreshItem(itemUrl(urls.note, noteId), "n" + noteId, options);
  }

  function maxId(type) {
    var best = 0;
    Array.prototype.forEach.call(thread.querySelectorAll('li.item[data-type="' + type + '"]'), function (el) {
      best = Math.max(best, Number(el.getAttribute("data-id")));
    });
    return best;
  }

  // After a reconnect: everything newer than what we have, plus our recent
  // messages whose ticks may have moved meanwhile.
  function catchUp() {
    var after = maxId("m");
    var recent = Array.prototype.slice.call(thread.querySelectorAll('li.item[data-type="m"][data-direction="out"]'), -30);
    recent.forEach(function (el) {
      var status = el.getAttribute("data-status");
      if (status === "pending" || status === "sent" || status === "delivered") {
        after = Math.min(after, Number(el.getAttribute("data-id")) - 1);
      }
    });
    var url = urls.messages + "?after=" + after + "&after_note=" + maxId("n");
    ISP.html(url).then(function (html) {
      if (!html) return;
      var missed = fragment(html).querySelectorAll('li.item[data-type="m"]').length;
      // Away too long for a catch-up: start again from the latest messages.
      if (missed >= CATCH_UP_LIMIT) return ISP.html(urls.messages).then(resetThread);
      insert(html);
    }).catch(failed);
    refreshHeader();
    refreshSide();
  }

  function resetThread(html) {
    if (html === null) return;
    thread.textContent = "";
    var meta = insert(html, { scroll: true });
    loadEarlier.setAttribute("data-before", (meta && meta.getAttribute("data-oldest")) || "");
    loadEarlier.hidden = !(meta && meta.getAttribute("data-has-more") === "true");
  }

  newPill.addEventListener("click", function () {
    scrollToBottom();
    textarea.focus();
  });
  scroller.addEventListener("scroll", function () {
    if (atBottom()) newPill.hidden = true;
  });

  loadEarlier.addEventListener("click", function () {
    var before = loadEarlier.getAttribute("data-before");
    if (!before) return;
    loadEarlier.disabled = true;
    loadEarlier.setAttribute("aria-busy", "true");
    var height = scroller.scrollHeight;
    var top = scroller.scrollTop;
    ISP.html(urls.messages + "?before=" + encodeURIComponent(before)).then(function (html) {
      var meta = insert(html || "", { keepPosition: true });
      // The messages the agent was reading stay where they were.
      scroller.scrollTop = top + (scroller.scrollHeight - height);
      var more = meta && meta.getAttribute("data-has-more") === "true";
      loadEarlier.setAttribute("data-before", (meta && meta.getAttribute("data-oldest")) || "");
      loadEarlier.hidden = !more;
    }).catch(failed).then(function () {
      loadEarlier.disabled = false;
      loadEarlier.removeAttribute("aria-busy");
    });
  });

  /* ---- Read marks ------------------------------------------------------ */

  var readTimer = null;
  function iAmAssignee() {
    var h = header();
    return h && Number(h.getAttribute("data-assignee-id")) === me;
  }
  function markRead() {
    if (removed || !iAmAssignee() || document.visibilityState !== "visible") return;
    clearTimeout(readTimer);
    readTimer = setTimeout(function () {
      ISP.api("POST", apiBase + "read/").then(ISP.refreshUnread, function () { /* next message retries */ });
    }, 400);
  }
  document.addEventListener("visibilitychange", markRead);

  /* ---- Header: state, actions ----------------------------------------- */

  var windowTimer = null;

  function applyHeader() {
    var h = header();
    if (!h) return;
    ISP.setTitle(h.getAttribute("data-title"));
    clearTimeout(windowTimer);
    var closes = Date.parse(h.getAttribute("data-window-closes-at") || "");
    if (!isNaN(closes) && h.getAttribute("data-window-open") === "true") {
      var wait = closes - Date.now() + 1000;
      // The window closes while the page is open: the header says so then.
      if (wait > 0 && wait < 2147483647) windowTimer = setTimeout(refreshHeader, wait);
    }
    applyComposer();
  }

  function refreshHeader() {
    if (removed) return Promise.resolve();
    return ISP.html(urls.header).then(function (html) {
      if (!html) return;
      var next = fragment(html).firstElementChild;
      var current = header();
      var dialog = current.querySelector("dialog[open]");
      if (dialog) return; // never pull the dialog from under the agent; refreshed when it closes
      var focused = document.activeElement && current.contains(document.activeElement) ? document.activeElement : null;
      var focusKey = focused && (focused.id || focused.getAttribute("data-action"));
      current.replaceWith(next);
      applyHeader();
      if (focused) {
        var again = (focused.id && document.getElementById(focused.id)) ||
          (focusKey && next.querySelector('[data-action="' + focusKey + '"]'));
        (again || document.getElementById("conv-title")).focus();
      }
    }).catch(failed);
  }

  function showRemoved() {
    if (removed) return;
    removed = true;
    removedBanner.hidden = false;
    var h = header();
    if (h) {
      h.inert = true;
      h.classList.add("is-removed");
    }
    composer.inert = true;
    textarea.disabled = true;
    sendButton.disabled = true;
    if (ISP.live) ISP.live.unwatch(id);
  }

  function act(method, path, body, done) {
    return ISP.api(method, apiBase + path, body).then(function () {
      if (done) ISP.announce(done);
      return refreshHeader();
    }, failed);
  }

  function busy(button, promise) {
    if (!button) return promise;
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
    return Promise.resolve(promise).then(function () {
      if (document.body.contains(button)) {
        button.disabled = false;
        button.removeAttribute("aria-busy");
      }
    });
  }

  function currentTags() {
    return Array.prototype.map.call(header().querySelectorAll("#tag-chips li[data-tag]"), function (li) {
      return li.getAttribute("data-tag");
    });
  }

  root.addEventListener("click", function (event) {
    var button = event.target.closest("[data-action]");
    if (!button || !root.contains(button) || button.tagName !== "BUTTON") return;
    var action = button.getAttribute("data-action");
    if (action === "take") {
      busy(button, act("POST", "assign/", { agent: me }, gettext("The conversation is yours.")));
    } else if (action === "pending" || action === "resolve" || action === "reopen") {
      var done = {
        pending: gettext("Waiting on the customer."),
        resolve: gettext("Conversation resolved."),
        reopen: gettext("Conversation reopened."),
      }[action];
      busy(button, act("POST", action + "/", undefined, done));
    } else if (action === "open-transfer") {
      var dialog = document.getElementById("transfer-dialog");
      if (dialog && dialog.showModal) {
        dialog.showModal();
        document.getElementById("transfer-team").focus();
      }
    } else if (action === "close-dialog") {
      var open = button.closest("dialog");
      if (open) open.close();
    } else if (action === "remove-tag") {
      var name = button.getAttribute("data-tag");
      var tags = currentTags().filter(function (t) { return t !== name; });
      busy(button, act("PUT", "tags/", { tags: tags }, gettext("Tag removed.")));
    }
  });

  root.addEventListener("close", function (event) {
    // A header update that waited for the dialog is applied now.
    if (event.target.id === "transfer-dialog") refreshHeader();
  }, true);

  root.addEventListener("change", function (event) {
    var target = event.target;
    if (target.getAttribute("data-change") === "priority") {
      busy(target, act("PATCH", "", { priority: Number(target.value) }, gettext("Priority changed.")));
    } else if (target.id === "transfer-team") {
      // Agents of the chosen team first: the others' groups are disabled.
      var team = target.value;
      Array.prototype.forEach.call(document.querySelectorAll("#transfer-agent optgroup"), function (group) {
        group.disabled = Boolean(team) && group.getAttribute("data-team") !== team;
      });
      var agent = document.getElementById("transfer-agent");
      var chosen = agent.options[agent.selectedIndex];
      if (chosen && chosen.parentNode.disabled) agent.value = "";
    }
  });

  root.addEventListener("submit", function (event) {
    var form = event.target;
    var kind = form.getAttribute("data-form");
    if (!kind) return;
    event.preventDefault();
    var submit = form.querySelector('[type="submit"]');
    if (kind === "assign") {
      var agent = form.querySelector("select").value;
      if (!agent) return;
      busy(submit, act("POST", "assign/", { agent: Number(agent) }, gettext("Conversation assigned.")));
    } else if (kind === "add-tag") {
      var input = form.querySelector("input");
      var tag = input.value.trim();
      if (!tag) return;
      var tags = currentTags();
      if (tags.indexOf(tag) < 0) tags.push(tag);
      busy(submit, act("PUT", "tags/", { tags: tags }, gettext("Tag added.")));
    } else if (kind === "transfer") {
      var body = { note: form.querySelector("textarea").value };
      var teamValue = form.querySelector("#transfer-team").value;
      var agentValue = form.querySelector("#transfer-agent").value;
      if (!teamValue && !agentValue) {
        ISP.announce(gettext("Choose a team or an agent."), "error");
        form.querySelector("#transfer-team").focus();
        return;
      }
      if (teamValue) body.team = Number(teamValue);
      if (agentValue) body.agent = Number(agentValue);
      var dialog = form.closest("dialog");
      busy(submit, ISP.api("POST", apiBase + "transfer/", body).then(function () {
        ISP.announce(gettext("Conversation transferred."));
        dialog.close();
      }, failed));
    } else if (kind === "template") {
      sendTemplate(form, submit);
    }
  });

  /* ---- Composer -------------------------------------------------------- */

  function newKey() {
    if (window.crypto && window.crypto.randomUUID) return window.crypto.randomUUID();
    return Date.now().toString(36) + "-" + Math.random().toString(36).slice(2) + Math.random().toString(36).slice(2);
  }

  // The key travels with one text: a retry of the same text (after a timeout,
  // a double click) reuses it, so the server stores and sends it only once.
  var pending = { text: null, key: null };
  function keyFor(text) {
    if (pending.text !== text) pending = { text: text, key: newKey() };
    return pending.key;
  }

  function applyComposer() {
    var h = header();
    var block = h ? h.getAttribute("data-reply-block") : "";
    var closed = removed || (mode === "reply" && Boolean(block));
    textarea.disabled = closed;
    sendButton.disabled = closed || sending;
    windowBanner.hidden = !(mode === "reply" && block === "window") || removed;
    var blockText = h ? h.getAttribute("data-reply-block-text") : "";
    replyBlocked.hidden = !(mode === "reply" && block && block !== "window") || removed;
    replyBlocked.textContent = blockText || "";
    composer.setAttribute("data-mode", mode);
    label.textContent = label.getAttribute("data-label-" + mode);
    if (!sending) sendButton.textContent = sendButton.getAttribute("data-label-" + mode);
    if (closed) closeCanned();
  }

  function setMode(next, focus) {
    mode = next;
    Array.prototype.forEach.call(composer.querySelectorAll('[role="tab"]'), function (tab) {
      var selected = tab.getAttribute("data-mode") === mode;
      tab.setAttribute("aria-selected", selected ? "true" : "false");
      tab.tabIndex = selected ? 0 : -1;
      if (selected) document.getElementById("composer-body").setAttribute("aria-labelledby", tab.id);
      if (selected && focus) tab.focus();
    });
    applyComposer();
  }

  composer.querySelector('[role="tablist"]').addEventListener("click", function (event) {
    var tab = event.target.closest('[role="tab"]');
    if (!tab) return;
    setMode(tab.getAttribute("data-mode"));
    if (!textarea.disabled) textarea.focus();
  });
  composer.querySelector('[role="tablist"]').addEventListener("keydown", function (event) {
    if (event.key !== "ArrowLeft" && event.key !== "ArrowRight") return;
    event.preventDefault();
    setMode(mode === "reply" ? "note" : "reply", true);
  });

  function setSending(on) {
    sending = on;
    sendButton.setAttribute("aria-busy", on ? "true" : "false");
    textarea.readOnly = on;
    sendButton.textContent = on ? sendButton.getAttribute("data-label-busy") : sendButton.getAttribute("data-label-" + mode);
    applyComposer();
  }

  function send() {
    if (sending || removed || textarea.disabled) return;
    var text = textarea.value.trim();
    if (!text) {
      textarea.focus();
      return;
    }
    var asNote = mode === "note";
    setSending(true);
    var request = asNote
      ? ISP.api("POST", apiBase + "notes/", { text: text, client_key: keyFor(text) })
      : ISP.api("POST", apiBase + "messages/", { text: text, client_key: keyFor(text) });
    request.then(function (created) {
      // Only what was sent leaves the box; anything typed meanwhile stays.
      if (textarea.value.trim() === text) textarea.value = "";
      pending = { text: null, key: null };
      setSending(false);
      textarea.focus();
      if (created && created.id) {
        return asNote ? loadNote(created.id, { scroll: true }) : loadMessage(created.id, { scroll: true });
      }
    }, function (error) {
      setSending(false);
      failed(error);
      textarea.focus();
    });
  }

  composer.addEventListener("submit", function (event) {
    event.preventDefault();
    closeCanned();
    send();
  });

  textarea.addEventListener("keydown", function (event) {
    if (cannedOpen()) {
      if (cannedKey(event)) return;
    }
    // An IME composing a word uses Enter to confirm it, not to send.
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
      event.preventDefault();
      send();
    }
  });

  /* ---- Canned replies -------------------------------------------------- */

  var canned = null; // [{id, shortcut, title, text}] rendered for this conversation
  var cannedLoading = null;
  var shown = [];
  var active = -1;

  function cannedOpen() { return !cannedList.hidden; }

  function loadCanned() {
    if (canned) return Promise.resolve(canned);
    if (!cannedLoading) {
      cannedLoading = ISP.api("GET", urls.canned).then(function (data) {
        canned = (data && data.results) || [];
        return canned;
      }, function (error) {
        cannedLoading = null;
        failed(error);
        return [];
      });
    }
    return cannedLoading;
  }

  function closeCanned() {
    cannedList.hidden = true;
    textarea.setAttribute("aria-expanded", "false");
    textarea.removeAttribute("aria-activedescendant");
    active = -1;
  }

  function highlight(index) {
    active = index;
    Array.prototype.forEach.call(cannedList.querySelectorAll('[role="option"]'), function (option, i) {
      option.setAttribute("aria-selected", i === index ? "true" : "false");
      if (i === index) {
        textarea.setAttribute("aria-activedescendant", option.id);
        option.scrollIntoView({ block: "nearest" });
      }
    });
  }

  function renderCanned(query) {
    query = query.toLowerCase();
    shown = (canned || []).filter(function (reply) {
      return !query || reply.shortcut.toLowerCase().indexOf(query) >= 0 || reply.title.toLowerCase().indexOf(query) >= 0;
    }).slice(0, 30);
    cannedList.textContent = "";
    if (!shown.length) {
      var none = document.createElement("li");
      none.className = "canned-none";
      none.textContent = canned && canned.length ? gettext("No canned reply matches.") : gettext("There are no canned replies yet.");
      cannedList.appendChild(none);
    }
    shown.forEach(function (reply, i) {
      var li = document.createElement("li");
      li.id = "canned-" + reply.id;
      li.setAttribute("role", "option");
      li.setAttribute("data-index", String(i));
      var head = document.createElement("span");
      head.className = "canned-head";
      head.textContent = "/" + reply.shortcut + " — " + reply.title;
      var preview = document.createElement("span");
      preview.className = "canned-preview";
      preview.textContent = reply.text;
      li.appendChild(head);
      li.appendChild(preview);
      cannedList.appendChild(li);
    });
    cannedList.hidden = false;
    textarea.setAttribute("aria-expanded", "true");
    highlight(shown.length ? 0 : -1);
  }

  function choose(index) {
    var reply = shown[index];
    if (!reply) return;
    textarea.value = reply.text;
    closeCanned();
    textarea.focus();
    textarea.setSelectionRange(textarea.value.length, textarea.value.length);
  }

  function cannedKey(event) {
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      if (!shown.length) return true;
      var step = event.key === "ArrowDown" ? 1 : -1;
      highlight((active + step + shown.length) % shown.length);
      return true;
    }
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      // Enter picks; with nothing to pick it does not send "/something" by mistake
      // (Esc closes the list, then Enter sends the text as typed).
      event.preventDefault();
      if (active >= 0) choose(active);
      return true;
    }
    if (event.key === "Tab" && !event.shiftKey && active >= 0) {
      event.preventDefault();
      choose(active);
      return true;
    }
    if (event.key === "Escape") {
      event.preventDefault();
      closeCanned();
      return true;
    }
    return false;
  }

  textarea.addEventListener("input", function () {
    var value = textarea.value;
    if (mode === "reply" && value.charAt(0) === "/" && value.indexOf("\n") < 0 && value.indexOf(" ") < 0) {
      loadCanned().then(function () {
        // The agent may have typed on while the list loaded.
        if (textarea.value.charAt(0) === "/" && textarea.value.indexOf(" ") < 0) renderCanned(textarea.value.slice(1));
      });
    } else if (cannedOpen()) {
      closeCanned();
    }
  });
  textarea.addEventListener("blur", function () {
    setTimeout(function () { if (document.activeElement !== textarea) closeCanned(); }, 150);
  });
  cannedList.addEventListener("mousedown", function (event) {
    var option = event.target.closest('[role="option"]');
    if (!option) return;
    event.preventDefault(); // keep the focus in the textarea
    choose(Number(option.getAttribute("data-index")));
  });

  /* ---- Templates (24-hour window closed) ------------------------------ */

  function templateValues(form) {
    var values = {};
    Array.prototype.forEach.call(form.querySelectorAll("input[data-part='body']"), function (input) {
      values[input.getAttribute("data-variable")] = input.value;
    });
    return values;
  }
  function textParameters(form, part) {
    return Array.prototype.map.call(form.querySelectorAll("input[data-part='" + part + "']"), function (input) {
      return { type: "text", text: input.value };
    });
  }
  function fillTemplate(body, values) {
    return body.replace(/\{\{\s*([A-Za-z0-9_]+)\s*\}\}/g, function (whole, name) {
      return values[name] ? values[name] : whole;
    });
  }

  // Many templates: a filter over their names and texts.
  var templateFilter = document.getElementById("template-filter");
  if (templateFilter) {
    templateFilter.addEventListener("input", function () {
      var words = templateFilter.value.toLowerCase().split(/\s+/).filter(Boolean);
      var shown = 0;
      Array.prototype.forEach.call(windowBanner.querySelectorAll(".template-list > li"), function (item) {
        var text = item.getAttribute("data-search") || "";
        var match = words.every(function (word) { return text.indexOf(word) >= 0; });
        item.hidden = !match;
        if (match) shown += 1;
      });
      document.getElementById("template-filter-empty").hidden = shown > 0;
    });
  }

  windowBanner.addEventListener("input", function (event) {
    var form = event.target.closest("form[data-form='template']");
    if (!form) return;
    var preview = form.querySelector("[data-preview]");
    preview.textContent = fillTemplate(form.getAttribute("data-body"), templateValues(form));
  });

  var templateKeys = {};
  function sendTemplate(form, submit) {
    var values = templateValues(form);
    var inputs = form.querySelectorAll("input[required]");
    for (var i = 0; i < inputs.length; i++) {
      if (!inputs[i].value.trim()) {
        ISP.announce(gettext("Fill in every parameter of the template."), "error");
        inputs[i].focus();
        return;
      }
    }
    var name = form.getAttribute("data-name");
    var language = form.getAttribute("data-language");
    var template = { name: name, language: language, parameters: textParameters(form, "body") };
    var header = { parameters: textParameters(form, "header") };
    var link = form.querySelector("input[data-part='link']");
    var filename = form.querySelector("input[data-part='filename']");
    if (link) header.link = link.value.trim();
    if (filename && filename.value.trim()) header.filename = filename.value.trim();
    if (link || header.parameters.length) template.header = header;
    template.buttons = Array.prototype.map.call(form.querySelectorAll("input[data-part='button']"), function (input) {
      return { index: Number(input.getAttribute("data-index")), text: input.value.trim() };
    });
    var text = fillTemplate(form.getAttribute("data-body"), values);
    // One key per filled-in form: a retry of the same form sends it once.
    var formKey = JSON.stringify(template);
    templateKeys[formKey] = templateKeys[formKey] || newKey();
    var body = {
      kind: "template",
      text: text,
      client_key: templateKeys[formKey],
      template: template,
    };
    busy(submit, ISP.api("POST", apiBase + "messages/", body).then(function (created) {
      delete templateKeys[formKey];
      ISP.announce(gettext("Template sent."));
      if (created && created.id) return loadMessage(created.id, { scroll: true });
    }, failed));
  }

  /* ---- Side panel ------------------------------------------------------ */

  function loadPanels(scope) {
    Array.prototype.forEach.call(scope.querySelectorAll("[data-panel-url]"), function (section) {
      var body = section.querySelector("[data-panel-body]");
      section.setAttribute("aria-busy", "true");
      ISP.html(section.getAttribute("data-panel-url")).then(function (html) {
        body.innerHTML = html || ""; // a server-rendered fragment
        ISP.refreshTimes(body);
      }).catch(function (error) {
        if (error && error.status === 404) return showRemoved();
        body.textContent = "";
        var p = document.createElement("p");
        p.className = "panel-error";
        p.textContent = gettext("This section could not be loaded.") + " ";
        var retry = document.createElement("button");
        retry.type = "button";
        retry.className = "secondary inline";
        retry.textContent = gettext("Try again");
        retry.addEventListener("click", function () { loadPanels(section.parentNode); });
        p.appendChild(retry);
        body.appendChild(p);
      }).then(function () {
        section.removeAttribute("aria-busy");
      });
    });
  }

  function refreshSide() {
    if (removed) return;
    ISP.html(urls.side).then(function (html) {
      if (!html) return;
      var next = fragment(html).firstElementChild;
      var current = document.getElementById("conv-side");
      if (current.contains(document.activeElement)) return; // do not yank what the agent is on
      current.replaceWith(next);
      loadPanels(next);
    }).catch(failed);
  }

  var wide = window.matchMedia("(min-width: 1200px)");
  var sideKey = "isp.conversation.side";
  function setSide(open, remember) {
    root.setAttribute("data-side", open ? "open" : "closed");
    sideToggle.setAttribute("aria-expanded", open ? "true" : "false");
    sideToggle.textContent = sideToggle.getAttribute(open ? "data-label-open" : "data-label-closed");
    if (remember && wide.matches) {
      try { window.localStorage.setItem(sideKey, open ? "open" : "closed"); } catch (e) { /* private mode */ }
    }
  }
  function initialSide() {
    if (!wide.matches) return false;
    try { return window.localStorage.getItem(sideKey) !== "closed"; } catch (e) { return true; }
  }
  sideToggle.addEventListener("click", function () {
    var open = root.getAttribute("data-side") !== "open";
    setSide(open, true);
    if (open && !wide.matches) sideWrap.focus();
  });
  sideWrap.tabIndex = -1;
  document.addEventListener("keydown", function (event) {
    // On a tablet the panel covers the thread: Esc puts it away.
    if (event.key === "Escape" && !wide.matches && root.getAttribute("data-side") === "open" && sideWrap.contains(document.activeElement)) {
      setSide(false, false);
      sideToggle.focus();
    }
  });
  function onWidthChange() { setSide(initialSide(), false); }
  if (wide.addEventListener) wide.addEventListener("change", onWidthChange);
  else wide.addListener(onWidthChange);

  /* ---- Live ------------------------------------------------------------ */

  if (ISP.live) {
    ISP.live.watch(id);
    ISP.live.on("message.update", function (event) {
      if (event.conversation_id !== id || removed) return;
      loadMessage(event.id);
      if (event.direction === "in") markRead();
    });
    ISP.live.on("note.created", function (event) {
      if (event.conversation_id !== id || removed) return;
      loadNote(event.id);
    });
    ISP.live.on("conversation.update", function (event) {
      if (event.id !== id) return;
      refreshHeader();
    });
    ISP.live.on("conversation.removed", function (event) {
      if (event.id === id) showRemoved();
    });
    ISP.live.onReconnect(function () {
      if (!removed) catchUp();
    });
  }

  /* ---- Start ----------------------------------------------------------- */

  setSide(initialSide(), false);
  applyHeader();
  loadPanels(document.getElementById("conv-side"));
  scrollToBottom();
  if (!textarea.disabled) textarea.focus({ preventScroll: true });
})();
