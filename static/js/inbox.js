/* The inbox: "Take next", "Load more", and the live list.

   A live event only says *which* conversation changed. The page then asks the
   server for that conversation's row under the current tab and filters
   (row/<id>/?<same query>): HTML to put in place, or 204 when the row no
   longer belongs here. Both fragments carry the tab counts in the
   X-Inbox-Counts header; rows/ says the next page in X-Inbox-Next-Page.
   Row HTML comes from Django templates (escaped there); event data is never
   put into the page. */
(function () {
  "use strict";

  var ISP = window.ISP;
  var gettext = window.gettext || function (s) { return s; };
  var section = document.querySelector(".inbox");
  if (!ISP || !section) return;

  var list = document.getElementById("inbox-rows");
  var empty = document.getElementById("inbox-empty");
  var loadMore = document.getElementById("load-more");
  var takeNext = document.getElementById("take-next");
  var order = section.getAttribute("data-order") === "asc" ? 1 : -1;
  var rowsUrl = section.getAttribute("data-rows-url");
  var rowUrlTemplate = section.getAttribute("data-row-url");
  var DEBOUNCE_MS = 100;

  ISP.setTitle(document.title);

  /* ---- Fetching fragments -------------------------------------------- */

  // The page's own query without its page number: the fragments answer for
  // the same tab and filters.
  function query(extra) {
    var params = new URLSearchParams(window.location.search);
    params.delete("page");
    Object.keys(extra || {}).forEach(function (key) { params.set(key, extra[key]); });
    var text = params.toString();
    return text ? "?" + text : "";
  }

  function rowUrl(id) {
    return rowUrlTemplate.replace(/\/0\/$/, "/" + encodeURIComponent(id) + "/") + query();
  }

  // Like ISP.html, plus the response headers (counts, next page).
  function fragment(url) {
    return fetch(url, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } }).then(
      function (response) {
        if (response.redirected && /\/login\//.test(response.url)) {
          window.location.reload();
          return null;
        }
        if (!response.ok) throw new ISP.ApiError(response.status, gettext("The list could not be updated. Reload the page."));
        var result = { headers: response.headers, html: null };
        if (response.status === 204) return result;
        return response.text().then(function (text) { result.html = text; return result; });
      },
      function () { throw new ISP.ApiError(0, gettext("The server could not be reached. Check your connection and try again.")); }
    );
  }

  // Server-rendered, escaped HTML -> the <li> rows it holds.
  function parseRows(html) {
    var template = document.createElement("template");
    template.innerHTML = html || "";
    return Array.prototype.slice.call(template.content.querySelectorAll("li.inbox-row"));
  }

  /* ---- Counts, empty state, load more --------------------------------- */

  function applyCounts(headers) {
    var raw = headers && headers.get("X-Inbox-Counts");
    if (!raw) return;
    var counts;
    try { counts = JSON.parse(raw); } catch (e) { return; }
    Object.keys(counts).forEach(function (key) {
      var el = section.querySelector('[data-count="' + key + '"]');
      if (el && typeof counts[key] === "number") el.textContent = String(counts[key]);
    });
  }

  function nextPage() {
    if (!loadMore || loadMore.hidden) return null;
    var input = loadMore.querySelector('input[name="page"]');
    return input ? input.value : null;
  }

  function setNextPage(page) {
    if (!loadMore) return;
    var input = loadMore.querySelector('input[name="page"]');
    if (page) {
      if (!input) {
        input = document.createElement("input");
        input.type = "hidden";
        input.name = "page";
        loadMore.insertBefore(input, loadMore.firstChild);
      }
      input.value = page;
    }
    loadMore.hidden = !page;
  }

  function renderEmpty() {
    var any = list.querySelector("li.inbox-row") !== null;
    list.hidden = !any;
    if (empty) empty.hidden = any;
  }

  /* ---- Placing rows ---------------------------------------------------- */

  function key(row) {
    return { sort: Number(row.getAttribute("data-sort")) || 0, id: Number(row.getAttribute("data-id")) || 0 };
  }

  // True when a belongs above b in this tab's order (queue: oldest first;
  // mine/all: latest activity first), ties broken by id like the server.
  function before(a, b) {
    var ka = key(a), kb = key(b);
    if (ka.sort !== kb.sort) return order * (ka.sort - kb.sort) < 0;
    return order * (ka.id - kb.id) < 0;
  }

  function focusedIn(row) {
    return row && document.activeElement && row.contains(document.activeElement);
  }

  function highlight(row) {
    row.classList.add("is-new");
    row.addEventListener("animationend", function () { row.classList.remove("is-new"); }, { once: true });
    // Without animations (reduced motion) the class still goes.
    setTimeout(function () { row.classList.remove("is-new"); }, 2500);
  }

  function place(row) {
    var id = row.getAttribute("data-id");
    var existing = document.getElementById("row-" + id);
    var hadFocus = focusedIn(existing);
    if (existing) existing.remove();
    var rows = list.querySelectorAll("li.inbox-row");
    var anchor = null;
    for (var i = 0; i < rows.length; i++) {
      if (before(row, rows[i])) { anchor = rows[i]; break; }
    }
    if (!anchor && nextPage()) {
      // It sorts after everything shown while more pages wait on the server:
      // "Load more" brings it in its place.
      renderEmpty();
      return;
    }
    list.insertBefore(row, anchor);
    ISP.refreshTimes(row);
    if (!existing) highlight(row);
    if (hadFocus) {
      var link = row.querySelector("a");
      if (link) link.focus({ preventScroll: true });
    }
    renderEmpty();
  }

  function remove(id) {
    var existing = document.getElementById("row-" + id);
    if (!existing) return;
    var hadFocus = focusedIn(existing);
    var next = existing.nextElementSibling || existing.previousElementSibling;
    existing.remove();
    if (hadFocus) {
      var link = next && next.querySelector("a");
      if (link) link.focus({ preventScroll: true });
      else document.getElementById("main").focus({ preventScroll: true });
    }
    renderEmpty();
  }

  /* ---- One row, debounced --------------------------------------------- */

  var timers = {};
  var generation = {};

  function refreshRow(id) {
    // The latest request for a row wins, whatever order the answers arrive in.
    var mine = (generation[id] = (generation[id] || 0) + 1);
    fragment(rowUrl(id)).then(
      function (result) {
        if (!result || generation[id] !== mine) return;
        applyCounts(result.headers);
        var rows = parseRows(result.html);
        if (rows.length) place(rows[0]);
        else remove(id);
      },
      function () { /* the next event or the reconnect catch-up brings it */ }
    );
  }

  function schedule(id) {
    if (!id) return;
    clearTimeout(timers[id]);
    timers[id] = setTimeout(function () {
      delete timers[id];
      refreshRow(id);
    }, DEBOUNCE_MS);
  }

  /* ---- The whole first page (after a reconnect) ----------------------- */

  function reloadFirstPage() {
    return fragment(rowsUrl + query()).then(function (result) {
      if (!result) return;
      applyCounts(result.headers);
      var rows = parseRows(result.html);
      var focusedId = null;
      var focused = document.activeElement && document.activeElement.closest && document.activeElement.closest("li.inbox-row");
      if (focused && list.contains(focused)) focusedId = focused.getAttribute("data-id");
      list.replaceChildren.apply(list, rows);
      ISP.refreshTimes(list);
      setNextPage(result.headers.get("X-Inbox-Next-Page"));
      renderEmpty();
      if (focusedId) {
        var again = document.getElementById("row-" + focusedId);
        if (again) again.querySelector("a").focus({ preventScroll: true });
      }
    });
  }

  /* ---- Load more ------------------------------------------------------- */

  if (loadMore) {
    loadMore.addEventListener("submit", function (e) {
      e.preventDefault();
      var page = nextPage();
      if (!page) return;
      var button = loadMore.querySelector("button");
      button.disabled = true;
      button.setAttribute("aria-busy", "true");
      fragment(rowsUrl + query({ page: page })).then(
        function (result) {
          if (!result) return;
          applyCounts(result.headers);
          var first = null;
          parseRows(result.html).forEach(function (row) {
            // A row that moved up meanwhile is already shown: keep that one.
            if (document.getElementById(row.id)) return;
            list.appendChild(row);
            first = first || row;
          });
          ISP.refreshTimes(list);
          setNextPage(result.headers.get("X-Inbox-Next-Page"));
          renderEmpty();
          // Keyboard users carry on from the first new row rather than the vanished button.
          if (first && loadMore.hidden) first.querySelector("a").focus({ preventScroll: true });
        },
        function (error) { ISP.announce(error.message, "error"); }
      ).then(function () {
        button.disabled = false;
        button.removeAttribute("aria-busy");
      });
    });
  }

  /* ---- Take next ------------------------------------------------------- */

  if (takeNext && !takeNext.disabled) {
    takeNext.addEventListener("click", function () {
      takeNext.disabled = true;
      ISP.api("POST", takeNext.getAttribute("data-url")).then(
        function (conversation) {
          if (conversation && conversation.id) {
            window.location.href = takeNext.getAttribute("data-thread-url").replace(/\/0\/$/, "/" + conversation.id + "/");
            return;
          }
          takeNext.disabled = false;
          ISP.announce(gettext("No one is waiting in your teams' queues."));
        },
        function (error) {
          takeNext.disabled = false;
          ISP.announce(error.message, "error");
        }
      );
    });
  }

  /* ---- First response overdue, as time passes ------------------------- */

  function refreshOverdue() {
    var now = Date.now();
    list.querySelectorAll("[data-due]").forEach(function (el) {
      var due = Date.parse(el.getAttribute("data-due"));
      if (!isNaN(due) && due <= now && el.hidden) {
        el.hidden = false;
        var row = el.closest("li.inbox-row");
        if (row) row.classList.add("is-overdue");
      }
    });
  }
  setInterval(refreshOverdue, 30000);

  /* ---- Live ------------------------------------------------------------ */

  var live = ISP.live;
  if (!live) return;

  live.on("conversation.update", function (event) { schedule(event.id); });
  live.on("message.update", function (event) {
    var id = event.conversation_id;
    var row = document.getElementById("row-" + id);
    // Status ticks and reactions on older messages change nothing in a row;
    // the conversation.update of a new message refreshes it anyway.
    if (row) {
      var shown = Date.parse(row.getAttribute("data-last"));
      var created = Date.parse(event.created_at);
      if (!isNaN(shown) && !isNaN(created) && created <= shown) return;
    }
    schedule(id);
  });
  live.on("conversation.removed", function (event) {
    clearTimeout(timers[event.id]);
    generation[event.id] = (generation[event.id] || 0) + 1;
    remove(event.id);
    // The counts change too: the row endpoint answers 204 with them.
    schedule(event.id);
  });
  live.onReconnect(function () {
    reloadFirstPage().catch(function () { /* the next reconnect tries again */ });
  });
})();
