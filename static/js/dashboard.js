/* The supervisor dashboard stays current without a reload: it refetches its
   body (?part=body, the same server-rendered HTML) when a live event arrives
   (at most once every 5 s, however busy the queues are), every 60 s, after the
   socket reconnects, and when the tab becomes visible again after a while.
   The HTML comes from our server, escaped by Django templates; event data
   never goes into the page. */
(function () {
  "use strict";

  var wrapper = document.getElementById("dashboard-body");
  if (!wrapper || !window.ISP) return;

  var url = wrapper.getAttribute("data-url");
  var MIN_GAP = 5000;
  var PERIOD = 60000;
  // Events that say nothing about conversations.
  var IGNORED = { pong: true, watching: true, error: true };

  var lastRefresh = Date.now(); // the page itself was just rendered
  var timer = null;
  var inFlight = false;
  var pending = false;
  var stopped = false;

  // The wrapper holds no form field; what may have focus is a scrollable
  // region (or a future link): put the focus and scroll back where they were.
  function swap(html) {
    var active = document.activeElement;
    var focusId = active && active !== wrapper && wrapper.contains(active) ? active.id : "";
    var scrolls = {};
    wrapper.querySelectorAll("[data-keep-scroll][id]").forEach(function (el) {
      scrolls[el.id] = [el.scrollLeft, el.scrollTop];
    });
    wrapper.innerHTML = html;
    Object.keys(scrolls).forEach(function (id) {
      var el = document.getElementById(id);
      if (el) {
        el.scrollLeft = scrolls[id][0];
        el.scrollTop = scrolls[id][1];
      }
    });
    if (focusId) {
      var again = document.getElementById(focusId);
      if (again) again.focus({ preventScroll: true });
    }
    window.ISP.refreshTimes(wrapper);
  }

  function refresh() {
    if (stopped) return;
    if (inFlight) {
      pending = true;
      return;
    }
    inFlight = true;
    lastRefresh = Date.now();
    window.ISP.html(url)
      .then(
        function (html) {
          if (html !== null) swap(html);
        },
        function (error) {
          if (error && error.status === 403) {
            // No longer a supervisor: stop asking; a reload shows why.
            stopped = true;
          }
          // Otherwise keep the figures on screen; the next tick tries again.
        }
      )
      .then(function () {
        inFlight = false;
        if (pending) {
          pending = false;
          schedule();
        }
      });
  }

  // Throttle: run now if the last refresh is MIN_GAP old, else once when it is.
  function schedule() {
    if (timer !== null || stopped) return;
    var wait = Math.max(0, lastRefresh + MIN_GAP - Date.now());
    timer = setTimeout(function () {
      timer = null;
      refresh();
    }, wait);
  }

  setInterval(function () {
    if (!document.hidden) schedule();
  }, PERIOD);

  document.addEventListener("visibilitychange", function () {
    if (!document.hidden && Date.now() - lastRefresh >= PERIOD) schedule();
  });

  if (window.ISP.live) {
    window.ISP.live.on("*", function (event) {
      if (!event || IGNORED[event.type]) return;
      schedule();
    });
    window.ISP.live.onReconnect(schedule);
  }
})();
