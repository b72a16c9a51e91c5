// What the run page's and the compare page's charts share: escaping, fetching series, the
// layout (mode bar above the plot area, integer step ticks), x values, EMA smoothing and polling
// for the new points of running runs.
(function () {
  "use strict";

  // Plotly renders names, titles and hover labels as HTML-like text, so user text (run names,
  // metric keys, param values) is escaped before it reaches Plotly.
  function escapeText(text) {
    return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }

  function fetchJson(url, signal) {
    return fetch(url, {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
      signal: signal,
    }).then(function (response) {
      if (response.redirected) {
        throw new Error("You are no longer logged in."); // sent to the login page
      }
      return response.json().catch(function () { return null; }).then(function (body) {
        if (!response.ok) {
          throw new Error(body && body.message ? body.message : "HTTP " + response.status);
        }
        if (body === null) {
          throw new Error("The answer was not JSON.");
        }
        return body;
      });
    });
  }

  // One request for many runs × keys: ?runs=…&runs=…&keys=…
  function seriesUrl(base, runIds, keys, options) {
    var url = new URL(base, window.location.href);
    runIds.forEach(function (id) {
      url.searchParams.append("runs", id);
    });
    keys.forEach(function (key) {
      url.searchParams.append("keys", key);
    });
    Object.keys(options || {}).forEach(function (name) {
      var value = options[name];
      if (value !== null && value !== undefined && value !== "") {
        url.searchParams.set(name, String(value));
      }
    });
    return url.toString();
  }

  function pointsFor(element) {
    // About one point per horizontal pixel, as the server's reduction expects.
    var width = element.clientWidth || 800;
    return Math.max(100, Math.min(5000, Math.round(width)));
  }

  // How many decades the positive y values of these traces span (0 without any).
  function logDecades(traces) {
    var low = Infinity;
    var high = 0;
    (traces || []).forEach(function (trace) {
      (trace.y || []).forEach(function (value) {
        if (value > 0 && isFinite(value)) {
          low = Math.min(low, value);
          high = Math.max(high, value);
        }
      });
    });
    return high > 0 ? Math.log10(high / low) : 0;
  }

  // How many steps the x values of these traces span (Infinity when unknown).
  function stepSpan(traces) {
    var low = Infinity;
    var high = -Infinity;
    (traces || []).forEach(function (trace) {
      (trace.x || []).forEach(function (value) {
        low = Math.min(low, value);
        high = Math.max(high, value);
      });
    });
    return high >= low ? high - low : Infinity;
  }

  function layout(options) {
    var xaxis = { title: { text: options.xTitle || "step" }, zeroline: false, automargin: true };
    if (options.xType === "date") {
      xaxis.type = "date";
    } else if (options.integerX) {
      // Steps are whole numbers: never a tick at 2.5, and one tick per step when zoomed close.
      xaxis.tickformat = ",d";
      var span = options.range ? options.range[1] - options.range[0] : stepSpan(options.traces);
      if (span <= 10) {
        xaxis.dtick = 1; // else Plotly ticks at halves, which ",d" prints as repeated integers
      }
    }
    if (options.range) {
      xaxis.range = options.range;
      xaxis.autorange = false;
    } else {
      xaxis.autorange = true;
    }
    return {
      // The top margin leaves room for Plotly's mode bar, so it never covers the data.
      margin: { l: 60, r: 16, t: 34, b: 44 },
      height: options.height || 300,
      showlegend: options.showlegend !== false,
      legend: { orientation: "h", y: -0.25, font: { size: 11 } },
      hovermode: "closest",
      hoverlabel: { namelength: -1 },
      uirevision: options.uirevision,
      xaxis: xaxis,
      yaxis: {
        title: { text: escapeText(options.yTitle || "") },
        type: options.log ? "log" : "linear",
        // On a log axis spanning decades, one label per decade (all nine digits crowd a short
        // chart); within one decade, a few labels written out ("0.5", not a bare "5").
        dtick: options.log && logDecades(options.traces) >= 1 ? 1 : undefined,
        tickformat: options.log ? ".2~g" : undefined,
        nticks: options.log ? 6 : undefined,
        zeroline: false,
        automargin: true,
      },
      font: { family: "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif", size: 12 },
      paper_bgcolor: "rgba(0,0,0,0)",
      plot_bgcolor: "rgba(0,0,0,0)",
    };
  }

  var plotConfig = {
    responsive: true,
    displaylogo: false,
    typesetMath: false,
    modeBarButtonsToRemove: ["lasso2d", "select2d", "toImage"],
  };

  // x values of a series on the chosen axis: step, wall time, or seconds since the run started.
  function xValues(series, axis, startTime) {
    if (axis === "wall") {
      return series.timestamps.map(function (ms) {
        return new Date(ms).toISOString();
      });
    }
    if (axis === "relative") {
      return series.timestamps.map(function (ms) {
        return (ms - startTime) / 1000;
      });
    }
    return series.steps.slice();
  }

  // Every line's hover: the run, its step, the value and when it was logged (hoverData).
  var HOVER =
    "<b>%{fullData.name}</b><br>step %{customdata[0]}<br>value %{y:.6g}<br>%{customdata[1]}<extra></extra>";

  function hoverData(series) {
    return series.steps.map(function (step, index) {
      return [step, new Date(series.timestamps[index]).toISOString().replace("T", " ").replace(".000Z", " UTC")];
    });
  }

  // Debiased exponential moving average (as TensorBoard draws it); gaps stay gaps. `state`
  // carries it across calls, so a live chart smooths new points where it left off.
  function ema(values, weight, state) {
    state = state || { last: 0, count: 0 };
    var out = values.map(function (value) {
      if (value === null || !isFinite(value)) {
        return null;
      }
      state.last = state.last * weight + (1 - weight) * value;
      state.count += 1;
      return state.last / (1 - Math.pow(weight, state.count));
    });
    return { values: out, state: state };
  }

  function describe(series, range) {
    var drawable = series.values.some(function (value) { return value !== null; });
    if (series.steps.length && !drawable) {
      // NaN and ±Infinity reach the page as null: a line has nothing to join.
      return "Nothing to draw: " + (series.steps.length === 1 ? "the point is" : "every point shown is") +
        " NaN or ±Infinity.";
    }
    var shown = series.steps.length.toLocaleString();
    var total = series.totalPoints.toLocaleString();
    var where = range ? " in steps " + Math.floor(range[0]) + "–" + Math.ceil(range[1]) : "";
    if (series.downsampled) {
      return "Showing " + shown + " of " + total + " points" + where + " (downsampled; zoom in for detail).";
    }
    if (series.totalPoints === 1) {
      return "Showing the only point" + where + ".";
    }
    return "Showing all " + total + " points" + where + ".";
  }

  // The step window a relayout event zoomed to, null for "all", undefined when it was no zoom.
  function zoomWindow(event) {
    if (event["xaxis.autorange"]) {
      return null;
    }
    var lo = event["xaxis.range[0]"];
    var hi = event["xaxis.range[1]"];
    if (Array.isArray(event["xaxis.range"])) {
      lo = event["xaxis.range"][0];
      hi = event["xaxis.range"][1];
    }
    if (typeof lo === "number" && typeof hi === "number" && isFinite(lo) && isFinite(hi)) {
      return [Math.min(lo, hi), Math.max(lo, hi)];
    }
    return undefined;
  }

  var POLL_MS = 3000;

  function setLiveStatus(text, state) {
    var status = document.getElementById("live-status");
    if (status) {
      status.textContent = text;
      status.hidden = false;
    }
    document.body.setAttribute("data-polling", state);
  }

  // Live charts, on the run page and the compare page alike: `tick` fetches the new points and
  // resolves to whether anything shown still runs. The next poll is asked for POLL_MS after the
  // last one answered, so a slow answer never stacks requests. One failed poll is retried by the
  // next; three in a row stop polling and say why. #live-status says what goes on, and
  // <body data-polling> is "on" or "stopped".
  function pollWhileRunning(tick, texts) {
    var failures = 0;
    function next() {
      window.setTimeout(function () {
        tick()
          .then(function (running) {
            failures = 0;
            if (running) {
              next();
            } else {
              setLiveStatus(texts.ended, "stopped");
            }
          })
          .catch(function (error) {
            failures += 1;
            if (failures < 3) {
              next();
            } else {
              setLiveStatus("Live updates stopped: " + error.message + " Reload the page to try again.", "stopped");
            }
          });
      }, POLL_MS);
    }
    next();
    setLiveStatus("Live: new points are added every " + POLL_MS / 1000 + " s while " + texts.running + ".", "on");
  }

  window.LabLedgerCharts = {
    escapeText: escapeText,
    fetchJson: fetchJson,
    seriesUrl: seriesUrl,
    pointsFor: pointsFor,
    layout: layout,
    plotConfig: plotConfig,
    xValues: xValues,
    HOVER: HOVER,
    hoverData: hoverData,
    ema: ema,
    describe: describe,
    zoomWindow: zoomWindow,
    pollWhileRunning: pollWhileRunning,
  };
})();
