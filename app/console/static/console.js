// The staff console's only script (no inline script: the CSP allows none). htmx sends the CSRF token of the
// page's <meta name="csrf-token"> with every request it makes.
document.addEventListener("htmx:configRequest", function (event) {
  var meta = document.querySelector('meta[name="csrf-token"]');
  if (meta) {
    event.detail.headers["X-CSRFToken"] = meta.content;
  }
});

// Irreversible actions ask first: a form (or a button in it) with data-confirm="…" is submitted only when the
// person agrees. (htmx requests use htmx's own hx-confirm, which asks the same way.)
document.addEventListener("submit", function (event) {
  var form = event.target;
  var button = event.submitter;
  var question = (button && button.getAttribute("data-confirm")) || form.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    event.preventDefault();
    event.stopImmediatePropagation();
  }
}, true);

// A button with data-copy="#id" copies that element's text (a secret shown once) to the clipboard, and says so.
document.addEventListener("click", function (event) {
  var button = event.target.closest("[data-copy]");
  if (!button) {
    return;
  }
  var source = document.querySelector(button.getAttribute("data-copy"));
  if (!source || !navigator.clipboard) {
    return;
  }
  navigator.clipboard.writeText(source.textContent.trim()).then(function () {
    var done = button.getAttribute("data-copied") || "已复制";
    button.setAttribute("aria-live", "polite");
    button.textContent = done;
  });
});
