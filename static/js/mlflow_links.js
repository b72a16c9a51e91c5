// The mlflow client prints links in MLflow's UI form, which this server receives as "/" with a
// fragment (/#/experiments/1/runs/<run id>). Follow them to the matching Lab Ledger page.
(function () {
  "use strict";
  function followMlflowLink() {
    const match = /^#\/experiments\/(\d+)(?:\/runs\/([0-9a-f]{32}))?/.exec(window.location.hash);
    if (!match) {
      return;
    }
    const urls = JSON.parse(document.getElementById("mlflow-link-targets").textContent);
    const [, experimentId, runId] = match;
    const target = runId
      ? urls.run.replace("RUN_ID", runId)
      : urls.experiment.replace("/0/runs/", `/${experimentId}/runs/`);
    window.location.replace(target);
  }
  followMlflowLink();
  window.addEventListener("hashchange", followMlflowLink);
})();
