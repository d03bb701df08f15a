"""The HTTP/JSON service (``virtuned serve``): the Python API's operations for
management applications in any language. The application is app.py; its logs and
metrics are observe.py."""

from virtuned.server.app import (Limits, app_from_environment, create_app,  # noqa: F401
                                 serve)
