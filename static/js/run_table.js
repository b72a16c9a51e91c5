// Run table: changing the page size applies it at once (the Apply button still works without JS),
// and the column picker's state only goes into the URL once the user has opened the picker, so
// a plain filter keeps short, shareable links that show every column.
(function () {
  "use strict";
  document.querySelectorAll("select.js-autosubmit").forEach(function (select) {
    select.addEventListener("change", function () {
      if (select.form) {
        select.form.requestSubmit ? select.form.requestSubmit() : select.form.submit();
      }
    });
  });
  var picker = document.querySelector("details.column-picker");
  if (picker) {
    var form = picker.closest("form");
    var pickedBefore = new URLSearchParams(window.location.search).has("columns_set");
    var touched = false;
    picker.addEventListener("change", function () { touched = true; });
    form.addEventListener("submit", function () {
      if (!pickedBefore && !touched) {
        picker.querySelectorAll("input").forEach(function (input) { input.disabled = true; });
      }
    });
  }
})();
