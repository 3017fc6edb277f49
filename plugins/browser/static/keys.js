// Key management through the REST routes (/api/keys), with the session: the
// same scopes, validation and audit trail as any other client.
"use strict";
(function () {
  var error = document.getElementById("keys-error");

  function call(method, path, body) {
    return fetch(path, {
      method: method,
      credentials: "same-origin",
      headers: {"Content-Type": "application/json", "Accept": "application/json"},
      body: body === undefined ? undefined : JSON.stringify(body)
    }).then(function (response) {
      return response.json().then(function (data) {
        if (!response.ok) {
          var detail = data.detail;
          throw new Error(typeof detail === "string" ? detail : JSON.stringify(detail));
        }
        return data;
      });
    });
  }

  function showSecret(created) {
    document.getElementById("secret-value").textContent = created.key;
    document.getElementById("secret").hidden = false;
  }

  function fail(failure) {
    error.textContent = failure.message;
    error.hidden = false;
  }

  document.getElementById("create-key").addEventListener("submit", function (event) {
    event.preventDefault();
    error.hidden = true;
    var form = event.target;
    var body = {name: form.name.value, scopes: form.scopes.value.split(",")};
    if (form.owner.value) { body.owner = form.owner.value; }
    if (form.expires_in_days.value) { body.expires_in_days = Number(form.expires_in_days.value); }
    call("POST", "/api/keys", body).then(showSecret).catch(fail);
  });

  document.querySelectorAll("button.revoke").forEach(function (button) {
    button.addEventListener("click", function () {
      if (!window.confirm("Revoke key " + button.dataset.keyId + "? Its sessions end too.")) {
        return;
      }
      call("DELETE", "/api/keys/" + button.dataset.keyId).then(function () {
        window.location.reload();
      }).catch(fail);
    });
  });

  document.querySelectorAll("button.rotate").forEach(function (button) {
    button.addEventListener("click", function () {
      call("POST", "/api/keys/" + button.dataset.keyId + "/rotate", {grace_period_hours: 0})
        .then(showSecret).catch(fail);
    });
  });
})();
