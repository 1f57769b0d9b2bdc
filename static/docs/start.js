// Starts the vendored Swagger UI on /docs. A file, not an inline script: the page's policy is
// `script-src 'self'`. The schema's URL comes from the page (data-spec-url).
(() => {
  "use strict";
  const root = document.getElementById("swagger-ui");
  if (!root || !window.SwaggerUIBundle) return;
  window.ui = window.SwaggerUIBundle({
    url: root.dataset.specUrl,
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    validatorUrl: null,   // the default badge asks a foreign validator about our schema
    presets: [window.SwaggerUIBundle.presets.apis],
  });
})();
