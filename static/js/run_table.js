// Run table: the selection of runs lives in the URL (`selected=<run id>`, repeatable), so it
// survives paging, sorting and filtering, and a copied link reproduces it. Checking a box
// rewrites the address, every link of the page that keeps the view, the filter form's hidden
// fields, the saved-view form and the "Compare N runs" button. Shift-clicking a column header
// (or Shift+Enter on it) adds it as the next sort key. Changing the page size or the "hide" switch applies at once,
// and the column picker's state only goes into the URL once the user has opened the picker; its
// "Find a column" box and the Group picker's "Find" search the experiments' keys as the user types.
// The number of matching runs, when the page does not know it, is fetched once it is shown.
(function () {
  "use strict";
  var stateNode = document.getElementById("run-table-state");
  var state = stateNode ? JSON.parse(stateNode.textContent) : { selected: [], compare_url: "" };
  var selected = state.selected.slice();
  var form = document.getElementById("run-filter-form");

  document.querySelectorAll(".js-autosubmit").forEach(function (input) {
    input.addEventListener("change", function () {
      if (input.form) {
        input.form.requestSubmit ? input.form.requestSubmit() : input.form.submit();
      }
    });
  });

  var picker = document.querySelector("details.column-picker");
  var findBox = document.getElementById("column-find");
  if (picker && form) {
    var pickedBefore = new URLSearchParams(window.location.search).has("columns_set");
    var touched = false;
    picker.addEventListener("change", function (event) {
      if (event.target !== findBox) {  // searching is not choosing
        touched = true;
      }
    });
    form.addEventListener("submit", function (event) {
      // The Find button shows only when a search failed here: then the server searches.
      var finding = event.submitter && event.submitter.id === "column-find-button";
      if (!pickedBefore && !touched && !finding) {
        picker.querySelectorAll("input").forEach(function (input) { input.disabled = true; });
      }
    });
  }

  // What the Columns and Group pickers share (dashboard/key_lists.py writes the same notes).
  var contains = function (text, needle) { return text.toLowerCase().indexOf(needle) >= 0; };
  var listsNote = function (limit) {
    return "Each list shows its first " + limit + " keys and the chosen ones: type to find the others.";
  };
  var moreText = function (more, needle, noun) {
    return needle
      ? "and " + more.toLocaleString("en-US") + " more matching — type more to narrow them"
      : "and " + more.toLocaleString("en-US") + " more " + noun + " — type to find them";
  };
  var showMore = function (node, more, needle, noun) {
    node.hidden = more === 0;
    node.textContent = more === 0 ? "" : moreText(more, needle, noun);
  };

  // Searches runs/columns.json (the box's data-url plus `q`) as the user types into `box`:
  // debounced, an answer older than the last question dropped, `show(answer, text)` lays it out.
  // The Find button is for pages without this script (it submits the form: the server searches)
  // and comes back when a search fails here.
  function searchAsTyped(box, button, status, show) {
    var timer = null;
    var lastAsked = 0;
    if (button) {
      button.hidden = true;
    }
    var ask = function () {
      var text = box.value.trim();
      var asked = ++lastAsked;
      var params = new URLSearchParams();
      params.set("q", text);
      fetch(box.getAttribute("data-url") + "&" + params.toString(), { headers: { Accept: "application/json" } })
        .then(function (response) { return response.ok ? response.json() : Promise.reject(response.status); })
        .then(function (answer) {
          if (asked === lastAsked) {  // an older, slower answer is dropped
            show(answer, text);
          }
        })
        .catch(function () {
          status.textContent = "The search failed: press Find to ask again.";
          if (button) {
            button.hidden = false;
          }
        });
    };
    box.addEventListener("input", function () {
      window.clearTimeout(timer);
      timer = window.setTimeout(ask, 250);
    });
    box.addEventListener("keydown", function (event) {
      if (event.key === "Enter") {  // search now, rather than submit the whole form
        event.preventDefault();
        window.clearTimeout(timer);
        ask();
      }
    });
  }

  // "Find a column": each group of the picker lists the answer's first matching keys plus every
  // checked box. A checked box that does not match is only hidden, so the form still sends it:
  // no chosen column is lost. Keys are text nodes, never HTML.
  if (picker && findBox && window.fetch) {
    var findStatus = document.getElementById("column-find-status");
    var keyOf = function (box) { return box.value.slice(box.value.indexOf(":") + 1); };

    var newChoice = function (kind, key) {
      var label = document.createElement("label");
      label.className = "column-choice " + kind;
      var box = document.createElement("input");
      box.type = "checkbox";
      box.name = "columns";
      box.value = kind + ":" + key;
      label.append(box, " " + key);
      return label;
    };

    // One group: the run's attributes are filtered by their headers; a key group is rebuilt from
    // its checked boxes and the answer's keys, in key order. Returns [visible, hidden] counts.
    var showGroup = function (fieldset, answer, needle) {
      var labels = Array.prototype.slice.call(fieldset.querySelectorAll("label.column-choice"));
      var kind = fieldset.getAttribute("data-kind");
      var moreNode = fieldset.querySelector(".key-more");
      var visible = 0;
      var outOfSight = 0;
      if (kind === "attr") {
        labels.forEach(function (label) {
          label.hidden = !contains(label.textContent, needle);
          visible += label.hidden ? 0 : 1;
          outOfSight += label.hidden && label.querySelector("input").checked ? 1 : 0;
        });
        fieldset.hidden = visible === 0;
        return [visible, outOfSight];
      }
      var found = answer.kinds[fieldset.getAttribute("data-keys")] || { keys: [], total: 0 };
      var first = new Set(found.keys);
      var byKey = new Map();
      labels.forEach(function (label) {
        var box = label.querySelector("input");
        var key = keyOf(box);
        if (box.checked || first.has(key)) {
          label.hidden = !first.has(key) && !contains(key, needle);
          byKey.set(key, label);
        } else {
          label.remove();
        }
      });
      found.keys.forEach(function (key) {
        if (!byKey.has(key)) {
          byKey.set(key, newChoice(kind, key));
        }
      });
      Array.from(byKey.keys()).sort().forEach(function (key) {
        var label = byKey.get(key);
        fieldset.insertBefore(label, moreNode);
        visible += label.hidden ? 0 : 1;
        outOfSight += label.hidden ? 1 : 0;
      });
      var more = Math.max(0, found.total - visible);
      showMore(moreNode, more, needle, fieldset.getAttribute("data-noun"));
      fieldset.hidden = visible === 0 && more === 0;
      return [visible, outOfSight];
    };

    searchAsTyped(findBox, document.getElementById("column-find-button"), findStatus, function (answer, text) {
      var needle = text.toLowerCase();
      var visible = 0;
      var outOfSight = 0;
      picker.querySelectorAll("fieldset[data-kind]").forEach(function (fieldset) {
        var counts = showGroup(fieldset, answer, needle);
        visible += counts[0];
        outOfSight += counts[1];
      });
      var words = [];
      if (!text && picker.querySelector(".key-more:not([hidden])")) {
        words.push(listsNote(answer.limit));
      }
      if (text && visible === 0) {
        words.push("No column matches “" + text + "”.");
      }
      if (outOfSight) {
        words.push(outOfSight + " chosen column" + (outOfSight === 1 ? " not matching stays" : "s not matching stay") + " chosen.");
      }
      findStatus.textContent = words.join(" ");
    });
  }

  // The Group picker's "Find": each select keeps its chosen options, first, and lists the
  // answer's other keys after them, so a search never drops the grouping; a select's options
  // are text, never HTML.
  var groupFind = document.getElementById("group-find");
  var groupPicker = document.querySelector("details.group-picker");
  if (groupPicker && groupFind && window.fetch) {
    var groupStatus = document.getElementById("group-find-status");

    // Returns how many of the options listed match.
    var showSelect = function (select, answer, needle) {
      var found = answer.kinds[select.getAttribute("data-keys")] || { keys: [], total: 0 };
      var first = new Set(found.keys);
      var none = [];  // the metric's "(none)" stays first
      var kept = [];
      Array.prototype.slice.call(select.options).forEach(function (option) {
        if (option.value === "") {
          none.push(option);
        } else if (option.selected) {
          kept.push(option);
        }
      });
      var keptKeys = new Set(kept.map(function (option) { return option.value; }));
      var added = found.keys.filter(function (key) { return !keptKeys.has(key); }).map(function (key) {
        var option = document.createElement("option");
        option.value = key;
        option.textContent = key;
        return option;
      });
      var matching = found.keys.length + kept.filter(function (option) {
        return !first.has(option.value) && contains(option.value, needle);
      }).length;
      var chosenNone = none.length && none[0].selected;
      select.replaceChildren.apply(select, none.concat(kept, added));
      // Moving options may reset a single select's choice: set it again.
      kept.forEach(function (option) { option.selected = true; });
      if (chosenNone && !kept.length) {
        none[0].selected = true;
      }
      var note = document.getElementById(select.getAttribute("aria-describedby"));
      if (note) {
        showMore(note, Math.max(0, found.total - matching), needle, select.getAttribute("data-noun"));
      }
      return matching;
    };

    var groupButton = document.getElementById("group-find-button");
    searchAsTyped(groupFind, groupButton, groupStatus, function (answer, text) {
      var needle = text.toLowerCase();
      var matching = 0;
      groupPicker.querySelectorAll("select[data-keys]").forEach(function (select) {
        matching += showSelect(select, answer, needle);
      });
      var words = [];
      if (!text && groupPicker.querySelector(".key-more:not([hidden])")) {
        words.push(listsNote(answer.limit));
      }
      if (text && matching === 0) {
        words.push("No param or metric matches “" + text + "”.");
      }
      groupStatus.textContent = words.join(" ");
    });
    if (form) {
      form.addEventListener("submit", function () {
        if (!groupFind.value.trim()) {
          groupFind.disabled = true;  // no empty find_group in the address
        }
      });
    }
  }

  function withSelection(search) {
    var params = new URLSearchParams(search);
    params.delete("selected");
    selected.forEach(function (runId) { params.append("selected", runId); });
    return params;
  }

  function sync() {
    var url = new URL(window.location.href);
    url.search = withSelection(url.search).toString();
    window.history.replaceState(null, "", url);
    // Links that keep the view (sort headers, pager, group toggles) start with "?".
    document.querySelectorAll("main a[href^='?']").forEach(function (link) {
      link.setAttribute("href", "?" + withSelection(link.getAttribute("href").slice(1)).toString());
    });
    var exportLink = document.querySelector("a[download]");
    if (exportLink) {
      var parts = exportLink.getAttribute("href").split("?");
      exportLink.setAttribute("href", parts[0] + "?" + withSelection(parts[1] || "").toString());
    }
    if (form) {
      form.querySelectorAll("input.selected-input").forEach(function (input) { input.remove(); });
      selected.forEach(function (runId) {
        var input = document.createElement("input");
        input.type = "hidden";
        input.name = "selected";
        input.value = runId;
        input.className = "selected-input";
        form.appendChild(input);
      });
    }
    var query = document.querySelector("#save-view-form input[name=query]");
    if (query) {
      query.value = url.search.slice(1);
    }
    var compare = document.getElementById("compare-button");
    if (compare) {
      var runs = new URLSearchParams();
      selected.forEach(function (runId) { runs.append("runs", runId); });
      compare.setAttribute("href", state.compare_url + "?" + runs.toString());
      compare.textContent = "Compare " + selected.length + " run" + (selected.length === 1 ? "" : "s");
      if (selected.length < 2 || selected.length > state.compare_max) {
        compare.setAttribute("aria-disabled", "true");
      } else {
        compare.removeAttribute("aria-disabled");
      }
    }
    var count = document.getElementById("selection-count");
    if (count) {
      count.textContent = selected.length + " selected";
    }
    var clear = document.getElementById("clear-selection");
    if (clear) {
      clear.hidden = selected.length === 0;
    }
    document.querySelectorAll("input.run-select").forEach(function (box) {
      box.checked = selected.indexOf(box.value) >= 0;
    });
    document.querySelectorAll("input.select-page").forEach(function (box) {
      var table = box.closest("table");
      var boxes = Array.prototype.slice.call(table.querySelectorAll("input.run-select"));
      var on = boxes.filter(function (b) { return b.checked; }).length;
      box.checked = boxes.length > 0 && on === boxes.length;
      box.indeterminate = on > 0 && on < boxes.length;
    });
  }

  function toggle(runId, on) {
    var index = selected.indexOf(runId);
    if (on && index < 0) {
      selected.push(runId);
    } else if (!on && index >= 0) {
      selected.splice(index, 1);
    }
  }

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.matches("input.run-select")) {
      toggle(target.value, target.checked);
      sync();
    } else if (target.matches("input.select-page")) {
      target.closest("table").querySelectorAll("input.run-select").forEach(function (box) {
        toggle(box.value, target.checked);
      });
      sync();
    }
  });

  var clearLink = document.getElementById("clear-selection");
  if (clearLink) {
    clearLink.addEventListener("click", function (event) {
      event.preventDefault();
      selected = [];
      sync();
    });
  }

  var compareButton = document.getElementById("compare-button");
  if (compareButton) {
    compareButton.addEventListener("click", function (event) {
      var count = document.getElementById("selection-count");
      if (selected.length < 2) {
        event.preventDefault();
        if (count) {
          count.textContent = "Select at least two runs to compare";
        }
      } else if (selected.length > state.compare_max) {
        event.preventDefault();
        if (count) {
          count.textContent = selected.length + " selected: compare at most " + state.compare_max + " at once";
        }
      }
    });
  }

  if (stateNode) {
    sync();  // the "select every run on this page" boxes show the selection the URL carries
  }

  // The total of a page that does not hold every match comes after the page (run_count):
  // counting a selective filter costs more than the page. The next page's link carries it on.
  var totalNode = document.getElementById("run-total");
  if (totalNode && window.fetch) {
    fetch(totalNode.getAttribute("data-count-url"), { headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (answer) {
        if (!answer) {
          return;
        }
        var strong = document.createElement("strong");
        strong.textContent = answer.text;
        totalNode.replaceChildren(strong, " matching run" + (answer.total === 1 ? "" : "s"));
        totalNode.removeAttribute("data-count-url");
        var next = document.querySelector("a[rel=next]");
        if (next) {
          var params = new URLSearchParams(next.getAttribute("href").slice(1));
          params.set("total", String(answer.total));
          next.setAttribute("href", "?" + params.toString());
        }
      })
      .catch(function () { /* the "Counting…" link still leads to the number */ });
  }

  // Shift-click, or Shift+Enter on a focused header, on a sortable header: keep the current sort
  // keys and add this one after them. The hint saying so is shown (and read with each header)
  // only here, since without this script a header replaces the sort.
  function addSortKey(link) {
    var params = new URLSearchParams(window.location.search);
    var key = link.getAttribute("data-sort-key");
    var keys = params.getAll("order_by").filter(function (item) {
      return item.replace(/\s+(asc|desc)\s*$/i, "").trim() !== key;
    });
    var firstDescending = link.getAttribute("data-descending-first") === "1";
    keys.push(key + (firstDescending ? " DESC" : " ASC"));
    params.delete("order_by");
    params.delete("page_token");
    keys.forEach(function (item) { params.append("order_by", item); });
    window.location.search = params.toString();
  }

  var sortHint = document.getElementById("sort-hint");
  var sortLinks = document.querySelectorAll("a.sort-link[data-sort-key]");
  if (sortHint && sortLinks.length) {
    sortHint.hidden = false;
  }
  sortLinks.forEach(function (link) {
    if (sortHint) {
      link.setAttribute("aria-describedby", "sort-hint");
    }
    link.addEventListener("click", function (event) {
      if (event.shiftKey) {
        event.preventDefault();
        addSortKey(link);
      }
    });
    // Shift+Enter on a link would open it in a new window: taken here instead.
    link.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && event.shiftKey && !event.altKey && !event.ctrlKey && !event.metaKey) {
        event.preventDefault();
        addSortKey(link);
      }
    });
  });
})();
