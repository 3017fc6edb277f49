// Sends the pasted key once, as Authorization: Bearer, to POST /login; the
// server answers with a session cookie (HttpOnly: this script never sees it).
"use strict";
(function () {
  var form = document.getElementById("login-form");
  var error = document.getElementById("login-error");
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    error.hidden = true;
    var key = document.getElementById("api-key").value.trim();
    // The UI routes after "#", which never reaches the server: keep it here.
    var next = form.dataset.next + (form.dataset.next === "/" ? window.location.hash : "");
    fetch("/login", {
      method: "POST",
      credentials: "same-origin",
      headers: {"Authorization": "Bearer " + key, "Content-Type": "application/json",
                "Accept": "application/json"},
      body: JSON.stringify({next: next})
    }).then(function (response) {
      return response.json().then(function (body) {
        if (!response.ok) {
          throw new Error(body.message || body.detail || ("HTTP " + response.status));
        }
        window.location.assign(body.next);
      });
    }).catch(function (failure) {
      error.textContent = failure.message;
      error.hidden = false;
    });
  });
})();
