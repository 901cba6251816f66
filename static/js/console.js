/* Shared by every console page: the API helper (session + CSRF), HTML
   fragments, toasts, the one live websocket per tab, the unread count in the
   tab title with its optional sound, and the availability switch.

   Pages use window.ISP:
     ISP.api(method, url, body)   -> parsed JSON (or null); throws ISP.ApiError
     ISP.html(url)                -> HTML text, or null for 204 (nothing to show)
     ISP.announce(text, kind)     -> a toast read out by screen readers
     ISP.live.on(type, fn)        -> fn(event) for "message.update", "conversation.update",
                                     "note.created", "conversation.removed", "*"
     ISP.live.onReconnect(fn)     -> fn() after the socket came back: fetch what was missed
     ISP.live.watch(id) / unwatch(id)
     ISP.refreshUnread()          -> re-count the unread messages behind the title
     ISP.setTitle(text)           -> the page's own title (the unread count is prefixed)
   Nothing here ever puts event data into innerHTML: events only say *what*
   changed; the HTML comes from the server, escaped by Django templates. */
(function () {
  "use strict";

  var gettext = window.gettext || function (s) { return s; };
  var body = document.body;

  function cookie(name) {
    var match = document.cookie.match(new RegExp("(?:^|; )" + name + "=([^;]*)"));
    return match ? decodeURIComponent(match[1]) : "";
  }

  // The CSRF cookie is HttpOnly (settings): the token comes from the page.
  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : cookie("csrftoken");
  }

  function ApiError(status, message, fields) {
    this.name = "ApiError";
    this.status = status;
    this.message = message;
    this.fields = fields || {};
  }
  ApiError.prototype = Object.create(Error.prototype);

  // DRF answers errors as {"detail": "..."} or {"field": ["..."]}: one readable line.
  function errorText(status, data) {
    if (data && typeof data === "object") {
      if (typeof data.detail === "string") return data.detail;
      var parts = [];
      Object.keys(data).forEach(function (key) {
        var value = data[key];
        var text = Array.isArray(value) ? value.join(" ") : String(value);
        parts.push(key === "non_field_errors" ? text : text);
      });
      if (parts.length) return parts.join(" ");
    }
    if (status === 0) return gettext("The server could not be reached. Check your connection and try again.");
    if (status === 403) return gettext("You are not allowed to do that.");
    if (status === 404) return gettext("This conversation is no longer available to you.");
    return gettext("Something went wrong. Try again in a moment.");
  }

  function api(method, url, data) {
    var options = {
      method: method,
      credentials: "same-origin",
      headers: { "Accept": "application/json", "X-CSRFToken": csrfToken() },
    };
    if (data !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(data);
    }
    return fetch(url, options).then(
      function (response) {
        if (response.status === 204) return null;
        return response.text().then(function (text) {
          var parsed = null;
          try { parsed = text ? JSON.parse(text) : null; } catch (e) { parsed = null; }
          if (!response.ok) throw new ApiError(response.status, errorText(response.status, parsed), parsed);
          return parsed;
        });
      },
      function () { throw new ApiError(0, errorText(0, null)); }
    );
  }

  function html(url) {
    return fetch(url, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } }).then(
      function (response) {
        if (response.status === 204) return null;
        if (response.status === 401 || response.redirected && /\/login\//.test(response.url)) {
          window.location.reload();
          return null;
        }
        if (!response.ok) throw new ApiError(response.status, errorText(response.status, null));
        return response.text();
      },
      function () { throw new ApiError(0, errorText(0, null)); }
    );
  }

  var toasts = document.getElementById("toasts");
  function announce(text, kind) {
    if (!toasts) return;
    var toast = document.createElement("div");
    toast.className = "toast" + (kind === "error" ? " error" : "");
    toast.textContent = text;
    if (kind === "error") toast.setAttribute("role", "alert");
    toasts.appendChild(toast);
    setTimeout(function () { toast.remove(); }, kind === "error" ? 8000 : 4000);
  }

  /* ---- The live socket ------------------------------------------------ */

  function Live(path) {
    this.path = path;
    this.handlers = {};
    this.reconnectHandlers = [];
    this.watching = {};
    this.attempt = 0;
    this.everOpened = false;
    this.socket = null;
    this.pingTimer = null;
    this.indicator = document.getElementById("live-status");
  }

  Live.prototype.on = function (type, fn) {
    (this.handlers[type] = this.handlers[type] || []).push(fn);
  };
  Live.prototype.onReconnect = function (fn) { this.reconnectHandlers.push(fn); };

  Live.prototype.send = function (message) {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) {
      this.socket.send(JSON.stringify(message));
    }
  };
  Live.prototype.watch = function (id) {
    this.watching[id] = true;
    this.send({ type: "watch", conversation: id });
  };
  Live.prototype.unwatch = function (id) {
    delete this.watching[id];
    this.send({ type: "unwatch", conversation: id });
  };

  Live.prototype.setState = function (state) {
    if (!this.indicator) return;
    this.indicator.setAttribute("data-state", state);
    var label = this.indicator.getAttribute("data-label-" + state) || "";
    this.indicator.title = label;
    var text = this.indicator.querySelector(".visually-hidden");
    if (text) text.textContent = label;
  };

  Live.prototype.dispatch = function (event) {
    var list = (this.handlers[event.type] || []).concat(this.handlers["*"] || []);
    list.forEach(function (fn) {
      try { fn(event); } catch (e) { if (window.console) console.warn("live handler failed", e); }
    });
  };

  Live.prototype.connect = function () {
    var self = this;
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var socket;
    try {
      socket = new WebSocket(scheme + window.location.host + this.path);
    } catch (e) {
      this.retry();
      return;
    }
    this.socket = socket;
    this.setState("connecting");
    socket.onopen = function () {
      var wasReconnect = self.everOpened;
      self.everOpened = true;
      self.attempt = 0;
      self.setState("open");
      Object.keys(self.watching).forEach(function (id) { self.send({ type: "watch", conversation: Number(id) }); });
      clearInterval(self.pingTimer);
      // Proxies drop idle sockets; a ping every 25 s keeps ours alive.
      self.pingTimer = setInterval(function () { self.send({ type: "ping" }); }, 25000);
      if (wasReconnect) {
        self.reconnectHandlers.forEach(function (fn) {
          try { fn(); } catch (e) { if (window.console) console.warn("catch-up failed", e); }
        });
      }
    };
    socket.onmessage = function (message) {
      var event;
      try { event = JSON.parse(message.data); } catch (e) { return; }
      if (event && typeof event.type === "string") self.dispatch(event);
    };
    socket.onclose = function (close) {
      clearInterval(self.pingTimer);
      self.socket = null;
      if (close.code === 4401 || close.code === 4403) {
        // Logged out (or the session expired) elsewhere: the login page says so.
        window.location.reload();
        return;
      }
      self.setState("closed");
      self.retry();
    };
  };

  // Backoff with jitter: 0.5 s, 1 s, 2 s … up to 15 s, so a restarted server
  // is not hit by every tab at the same instant.
  Live.prototype.retry = function () {
    var self = this;
    var delay = Math.min(15000, 500 * Math.pow(2, this.attempt));
    this.attempt += 1;
    delay = delay / 2 + Math.random() * delay / 2;
    setTimeout(function () { self.connect(); }, delay);
  };

  /* ---- Tab title, unread count, sound --------------------------------- */

  var baseTitle = document.title;
  var unread = 0;
  var soundKey = "isp.sound";
  var soundButton = document.getElementById("sound-toggle");
  var soundOn = false;
  try { soundOn = window.localStorage.getItem(soundKey) === "1"; } catch (e) { soundOn = false; }

  function renderTitle() {
    document.title = (unread > 0 ? "(" + unread + ") " : "") + baseTitle;
  }
  function setTitle(text) {
    baseTitle = text;
    renderTitle();
  }

  var audio = null;
  function beep() {
    if (!soundOn) return;
    var Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) return;
    try {
      audio = audio || new Context();
      var osc = audio.createOscillator();
      var gain = audio.createGain();
      osc.type = "sine";
      osc.frequency.value = 880;
      gain.gain.setValueAtTime(0.0001, audio.currentTime);
      gain.gain.exponentialRampToValueAtTime(0.2, audio.currentTime + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, audio.currentTime + 0.35);
      osc.connect(gain).connect(audio.destination);
      osc.start();
      osc.stop(audio.currentTime + 0.4);
    } catch (e) { /* no sound is not an error */ }
  }

  function renderSound() {
    if (soundButton) soundButton.setAttribute("aria-pressed", soundOn ? "true" : "false");
  }
  if (soundButton) {
    renderSound();
    soundButton.addEventListener("click", function () {
      soundOn = !soundOn;
      try { window.localStorage.setItem(soundKey, soundOn ? "1" : "0"); } catch (e) { /* private mode */ }
      renderSound();
      if (soundOn) beep();
    });
  }

  var unreadTimer = null;
  function refreshUnread() {
    var url = body.getAttribute("data-unread-url");
    if (!url) return;
    clearTimeout(unreadTimer);
    unreadTimer = setTimeout(function () {
      api("GET", url).then(function (data) {
        var next = data && typeof data.mine === "number" ? data.mine : 0;
        if (next > unread) beep();
        unread = next;
        renderTitle();
      }, function () { /* the title can wait for the next event */ });
    }, 150);
  }

  /* ---- Availability switch -------------------------------------------- */

  var availability = document.getElementById("availability");
  if (availability) {
    var form = document.getElementById("availability-form");
    form.addEventListener("submit", function (e) { e.preventDefault(); });
    availability.addEventListener("change", function () {
      var previous = availability.getAttribute("data-state");
      var value = availability.value;
      api("PATCH", form.getAttribute("data-url"), { availability: value }).then(
        function () {
          availability.setAttribute("data-state", value);
          announce(availability.options[availability.selectedIndex].text);
        },
        function (error) {
          availability.value = previous;
          announce(error.message, "error");
        }
      );
    });
  }

  /* ---- Relative times ("há 5 min") ------------------------------------ */

  // Elements with data-since="<ISO time>" show how long ago that was,
  // refreshed every 30 s, so waiting times grow without a reload.
  function ago(iso) {
    var then = Date.parse(iso);
    if (isNaN(then)) return "";
    var seconds = Math.max(0, Math.round((Date.now() - then) / 1000));
    if (seconds < 60) return gettext("now");
    var minutes = Math.floor(seconds / 60);
    if (minutes < 60) return interpolate(gettext("%s min"), [minutes]);
    var hours = Math.floor(minutes / 60);
    if (hours < 24) return interpolate(gettext("%s h"), [hours]) + (minutes % 60 ? " " + (minutes % 60) + " min" : "");
    return interpolate(gettext("%s d"), [Math.floor(hours / 24)]);
  }
  function interpolate(fmt, args) {
    return window.interpolate ? window.interpolate(fmt, args) : fmt.replace("%s", args[0]);
  }
  function refreshTimes(root) {
    (root || document).querySelectorAll("[data-since]").forEach(function (el) {
      el.textContent = ago(el.getAttribute("data-since"));
    });
  }
  setInterval(refreshTimes, 30000);

  /* ---- Start ---------------------------------------------------------- */

  var live = null;
  var livePath = body.getAttribute("data-live-url");
  if (livePath && "WebSocket" in window) {
    live = new Live(livePath);
    live.on("message.update", function (event) {
      if (event.direction === "in") refreshUnread();
    });
    live.on("conversation.update", refreshUnread);
    live.on("conversation.removed", refreshUnread);
    live.onReconnect(refreshUnread);
  }

  window.ISP = {
    api: api,
    html: html,
    announce: announce,
    ApiError: ApiError,
    live: live,
    refreshUnread: refreshUnread,
    refreshTimes: refreshTimes,
    setTitle: setTitle,
    gettext: gettext,
    interpolate: interpolate,
  };

  // Pages register their handlers first (their scripts run after this one
  // but before DOMContentLoaded); the socket opens once they have.
  document.addEventListener("DOMContentLoaded", function () {
    refreshTimes();
    if (live) {
      refreshUnread();
      live.connect();
    }
  });
})();
