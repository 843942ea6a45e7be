// The staff console's only script (no inline script: the CSP allows none). htmx sends the CSRF token of the
// page's <meta name="csrf-token"> with every request it makes.
document.addEventListener("htmx:configRequest", function (event) {
  var meta = document.querySelector('meta[name="csrf-token"]');
  if (meta) {
    event.detail.headers["X-CSRFToken"] = meta.content;
  }
});
