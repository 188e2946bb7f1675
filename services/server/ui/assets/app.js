// Gantry's web UI: the live parts (run logs, the audit trail) and
// confirmation of destructive forms. Every page works without it.
"use strict";

(function () {
  function segmentsInto(el, segments) {
    for (const s of segments || []) {
      if (s.c) {
        const span = document.createElement("span");
        span.className = s.c;
        span.textContent = s.t;
        el.appendChild(span);
      } else {
        el.appendChild(document.createTextNode(s.t));
      }
    }
  }

  // live keeps a server-sent event stream open at the URL start() returns
  // (called for each connection, reconnections included): after a failure
  // it reconnects in 2 s, and after
  // five failures in a row it gives up, saying so in status. listeners
  // maps event names to handlers, each given the event and the source.
  function live(start, status, what, listeners) {
    let failures = 0;
    function open() {
      const source = new EventSource(start());
      source.onopen = function () {
        failures = 0;
      };
      for (const [name, handle] of Object.entries(listeners)) {
        source.addEventListener(name, function (e) {
          handle(e, source);
        });
      }
      source.onerror = function () {
        source.close();
        failures++;
        if (failures > 5) {
          // Signed out, or the server is gone: a reload says which.
          if (status) {
            status.textContent = "The " + what + " stopped; reload the page.";
          }
          return;
        }
        if (status) {
          status.textContent = "The " + what + " was interrupted; reconnecting…";
        }
        window.setTimeout(open, 2000);
      };
    }
    open();
  }

  function followLogs(logs) {
    const status = document.getElementById("live-status");
    const state = document.getElementById("run-state");
    // Lines the page has: a reconnection asks only for the ones after them.
    let after = Number(logs.dataset.after) || 0;
    live(function () {
      return logs.dataset.liveLogs + "?after=" + after;
    }, status, "live log", {
      line: function (e) {
        const l = JSON.parse(e.data);
        after++;
        const div = document.createElement("div");
        div.className = "line";
        div.dataset.phase = l.phase;
        segmentsInto(div, l.segments);
        const atBottom = logs.scrollTop + logs.clientHeight >= logs.scrollHeight - 4;
        logs.appendChild(div);
        if (atBottom) {
          logs.scrollTop = logs.scrollHeight;
        }
      },
      state: function (e) {
        if (state && state.textContent !== e.data) {
          state.textContent = e.data;
          state.className = "state state-active";
        }
      },
      end: function (e, source) {
        source.close();
        if (status) {
          status.textContent = "The run is " + e.data + "; reloading the page.";
        }
        // Reload without ?done=…: the notice of the last action is stale now.
        window.location.replace(window.location.pathname);
      },
    });
  }

  function followEvents(table) {
    const body = table.tBodies[0];
    const status = document.getElementById("live-status");
    const url = new URL(table.dataset.liveEvents, window.location.href);
    live(function () {
      if (status) {
        status.textContent = "Following new events live.";
      }
      return url.pathname + url.search;
    }, status, "live stream", {
      event: function (e) {
        const ev = JSON.parse(e.data);
        // A reconnection starts after the last event shown.
        url.searchParams.set("from", String(ev.position + 1));
        const none = document.getElementById("no-events");
        if (none) {
          none.remove();
        }
        const tr = document.createElement("tr");
        tr.className = "new";
        const cells = [String(ev.position), ev.time, ev.stream_type + " " + ev.stream_id, ev.type, ev.actor, ""];
        for (const text of cells) {
          const td = document.createElement("td");
          td.textContent = text;
          tr.appendChild(td);
        }
        body.appendChild(tr);
      },
      end: function (e, source) {
        source.close();
        if (status) {
          status.textContent = "The live stream ended; reload to resume.";
        }
      },
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    const logs = document.querySelector("[data-live-logs]");
    if (logs) {
      followLogs(logs);
    }
    const events = document.querySelector("[data-live-events]");
    if (events) {
      followEvents(events);
    }
    for (const form of document.querySelectorAll("form[data-confirm]")) {
      form.addEventListener("submit", function (e) {
        if (!window.confirm(form.dataset.confirm)) {
          e.preventDefault();
        }
      });
    }
  });
})();
