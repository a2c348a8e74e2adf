"""The OpenAPI schema and its Swagger UI: for signed-in staff only (docs/api.md).

Who may read them is ``SPECTACULAR_SETTINGS["SERVE_PERMISSIONS"]`` (any signed-in
staff user, by console session or API token): the schema lists every operation,
field and error code of the API, which is no business of anyone outside.
"""

from __future__ import annotations

from django.contrib.auth.views import redirect_to_login
from drf_spectacular.views import SpectacularSwaggerSplitView
from rest_framework.exceptions import NotAuthenticated


class ApiDocsView(SpectacularSwaggerSplitView):
    """``/api/docs/``: the self-hosted Swagger UI, with the schema's access rule.

    A request without any credential (a browser not signed in) is sent to the
    console's sign-in page and back here, rather than shown a JSON 401; a wrong
    token is still a 401, and the schema itself answers 401 to an anonymous client.
    """

    def handle_exception(self, exc: Exception):
        """A redirect to sign in for a request without a credential; DRF's answer otherwise."""
        if isinstance(exc, NotAuthenticated):
            return redirect_to_login(self.request.get_full_path())
        return super().handle_exception(exc)
