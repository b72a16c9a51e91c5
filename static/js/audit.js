// The audit trail page: while a queued chain check runs on a worker, ask the API for the
// latest stored result every few seconds and reload the page once that check has finished.
(function () {
  "use strict";
  const config = document.getElementById("pending-check");
  if (!config) return;
  const pending = JSON.parse(config.textContent);
  let tries = 0;
  function poll() {
    tries += 1;
    fetch(pending.verifyUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (latest) {
        if (latest && latest.id >= pending.id) {
          window.location.reload();
        } else if (tries < 60) {
          window.setTimeout(poll, 3000);
        }
      })
      .catch(function () { if (tries < 60) window.setTimeout(poll, 5000); });
  }
  window.setTimeout(poll, 2000);
})();
