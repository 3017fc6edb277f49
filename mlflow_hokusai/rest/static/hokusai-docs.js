// Swagger UI on the server's own OpenAPI document; "Authorize" takes an API key.
window.addEventListener("load", function () {
  var element = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({url: element.dataset.spec, dom_id: "#swagger-ui",
                               deepLinking: true});
});
