"""The HTTP/JSON service (``virtuned serve``): the Python API's operations for
management applications in any language. The operations are app.py's, their HTTP
http.py's; requests and answers are the types of contract.py (read by validation.py,
documented by documents.py); logs and metrics are observe.py's."""

from virtuned.server.access import Access, TokenFileError, read_tokens  # noqa: F401
from virtuned.server.app import (Limits, Tls, app_from_environment, create_app,  # noqa: F401
                                 serve)
