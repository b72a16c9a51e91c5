// Uploads: while an upload is queued or running, ask for its status every second and move its
// progress bar; when it finishes, reload once so the page shows its counts or its error.
(function () {
  "use strict";
  var config = document.getElementById("upload-polls");
  if (!config) {
    return;
  }
  var polls = JSON.parse(config.textContent);

  function formatBytes(count) {
    var units = ["bytes", "KB", "MB", "GB", "TB"];
    var index = 0;
    while (count >= 1024 && index < units.length - 1) {
      count /= 1024;
      index += 1;
    }
    return (index ? count.toFixed(1) : String(count)) + " " + units[index];
  }

  function show(row, status) {
    var badge = row.querySelector("[data-field=status]");
    var bar = row.querySelector("[data-field=progress]");
    var counts = row.querySelector("[data-field=counts]");
    if (badge) {
      badge.textContent = status.status;
      badge.className = "badge upload-" + status.status;
    }
    if (bar) {
      bar.max = status.size_bytes;
      bar.value = status.bytes_done;
    }
    if (counts) {
      // Once every byte is read, the final transaction stores the points: say so, not "100%".
      var stored = status.status === "running" && status.bytes_done >= status.size_bytes;
      counts.textContent = status.rows_done.toLocaleString("en") + (status.rows_done === 1 ? " row, " : " rows, ") +
        (stored ? "all read; storing them…" : formatBytes(status.bytes_done) + " of " + formatBytes(status.size_bytes));
    }
  }

  function poll(item) {
    var row = document.getElementById("upload-" + item.id);
    if (!row) {
      return;
    }
    fetch(item.url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) {
        return response.ok ? response.json() : Promise.reject(response.status);
      })
      .then(function (status) {
        show(row, status);
        if (status.status === "done" || status.status === "failed") {
          window.location.reload();
        } else {
          window.setTimeout(function () { poll(item); }, 1000);
        }
      })
      .catch(function () {
        window.setTimeout(function () { poll(item); }, 5000);
      });
  }

  polls.forEach(function (item) {
    window.setTimeout(function () { poll(item); }, 1000);
  });
})();
