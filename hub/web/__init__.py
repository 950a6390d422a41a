"""Dashboard, REST API, health and metrics endpoints.

``create_app(WebContext(...))`` builds the FastAPI app; ``WebServer`` runs it in a background thread.
"""

from hub.web.application import create_app
from hub.web.context import WebContext
from hub.web.server import WebServer, WebServerError

__all__ = ["WebContext", "WebServer", "WebServerError", "create_app"]
